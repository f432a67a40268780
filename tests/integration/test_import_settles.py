"""A second full run of any source with nothing changed reports and writes nothing but its own record (issue #17, 3):
HR CSV and app imports here; LDAP in test_import_ldap_identity.py (OpenLDAP) and the AD tests (Samba)."""

from __future__ import annotations

from pathlib import Path

from provtui.model.schema import USERS
from provtui.service import Service

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hr"
CHANGED = ("created", "updated", "suspended", "deactivated", "reactivated")


def test_hr_exports_read_twice_settle(tmp_path):
    service = Service.init(tmp_path / "store", actor="admin")
    for export in ("workday_export.csv", "bamboohr_export.csv"):
        data = (FIXTURES / export).read_bytes()
        source = export.split("_")[0]
        service.add_source(source, "csv", {})
        first = service.import_csv(data, source=source, confirm=True)
        assert first["created"] > 0
        users = dict(service.store.all(USERS))
        seq = service.store.seq
        again = service.import_csv(data, source=source)
        assert all(again[k] == 0 for k in CHANGED), again
        assert service.import_csv(data, source=source, dry_run=True)["actions"] == []
        assert service.store.all(USERS) == users and service.store.seq <= seq + 1  # at most the run's own record
