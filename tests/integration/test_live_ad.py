"""Live Active Directory sources (#21) against a real Samba AD DC: DirSync, polled every second.

As for OpenLDAP (test_live_ldap.py): each change is seen through the live session, a killed worker resumes from
its cookie with every change applied once, a restarted directory is reconnected, a burst of disables is held.
"""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import ldap3
import pytest

from provtui.service import Service
from provtui.testing.samba import UF_ACCOUNTDISABLE, UF_NORMAL_ACCOUNT, SambaDC
from tests.helpers.ldap import add_ad_source
from tests.helpers.live import eventually, live_state, start_worker_process, worker_thread

PASSWORD_ENV = "PROVTUI_TEST_AD_LIVE_PW"


@pytest.fixture
def store(tmp_path: Path, samba_dc: SambaDC, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(PASSWORD_ENV, samba_dc.admin_password)
    return tmp_path / "store"


def new_store(store: Path, dc: SambaDC, base: str, *, threshold: str = "0.9") -> Service:
    service = Service.init(store)
    service.set_config("safeguard.threshold", threshold)
    add_ad_source(service, dc, base, password_env=PASSWORD_ENV, live=True)
    return service


def sam(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def state(service: Service, login: str) -> str:
    return service.user_view(login)["state"]


def test_each_change_is_seen_through_dirsync(store, samba_dc, ad_ou):
    ada, bob, cy = sam("ada"), sam("bob"), sam("cy")
    ada_dn, _ = samba_dc.add_user(ad_ou, ada, "Ada", "Lovelace", department="Research")
    bob_dn, _ = samba_dc.add_user(ad_ou, bob, "Bob", "Byte")
    reader = new_store(store, samba_dc, ad_ou)
    logs: list[str] = []
    with worker_thread(store, logs=logs):
        eventually(reader, lambda s: state(s, ada) == state(s, bob) == "active", timeout=30)
        assert "live source ad: dirsync" in logs
        samba_dc.modify(ada_dn, {"department": "Engines"})  # a modify
        eventually(reader, lambda s: s.user_view(ada)["profile"].get("department") == "Engines")
        cy_dn, _ = samba_dc.add_user(ad_ou, cy, "Cy", "Press")  # an add
        eventually(reader, lambda s: state(s, cy) == "active")
        samba_dc.modify(bob_dn, {"userAccountControl": UF_NORMAL_ACCOUNT | UF_ACCOUNTDISABLE})  # a disable
        eventually(reader, lambda s: state(s, bob) == "deprovisioned")
        samba_dc.modify(bob_dn, {"userAccountControl": UF_NORMAL_ACCOUNT})  # and back
        eventually(reader, lambda s: state(s, bob) == "active")
        samba_dc.delete(cy_dn)  # a delete: its tombstone
        eventually(reader, lambda s: state(s, cy) == "deprovisioned")
        renamed = sam("ada")  # a rename: the same person by objectGUID
        moved = samba_dc.rename(ada_dn, "CN=Ada King")
        samba_dc.modify(moved, {"sAMAccountName": renamed})
        eventually(reader, lambda s: state(s, renamed) == "active")
        assert not reader.store.lookup("users", "login", ada)
        group = samba_dc.add_group(ad_ou, sam("eng"), [moved])  # a group, then a membership change
        eventually(reader, lambda s: len(s.user_view(renamed)["groups"]) == 1)
        samba_dc.modify(group, {"member": [(ldap3.MODIFY_ADD, [bob_dn])]})
        eventually(reader, lambda s: len(s.user_view(bob)["groups"]) == 1)
        samba_dc.modify(group, {"member": [(ldap3.MODIFY_DELETE, [moved])]})
        eventually(reader, lambda s: s.user_view(renamed)["groups"] == [])
        assert live_state(reader, "ad")["live_state"] == "live"


def test_a_killed_worker_resumes_from_its_dirsync_cookie(store, samba_dc, ad_ou):
    logins = [sam("p") for _ in range(10)]
    dns = [samba_dc.add_user(ad_ou, login, "P", f"Erson{n}")[0] for n, login in enumerate(logins)]
    reader = new_store(store, samba_dc, ad_ou)
    env = {PASSWORD_ENV: samba_dc.admin_password}
    worker = start_worker_process(store, env)
    try:
        eventually(reader, lambda s: all(state(s, login) == "active" for login in logins), timeout=40)
        eventually(reader, lambda s: live_state(s, "ad")["live_state"] == "live")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    for n, dn in enumerate(dns):  # ten changes while no worker runs
        samba_dc.modify(dn, {"department": f"Dept {n}"})
    worker = start_worker_process(store, env)
    try:
        eventually(reader, lambda s: all(s.user_view(x)["profile"].get("department") == f"Dept {n}" for n, x in enumerate(logins)), 40)
        time.sleep(2.5)  # two more rounds: anything read twice would be applied by now
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
    reader.refresh()
    assert [sum(1 for e in reader.audit(target=x) if e["action"] == "user.import") for x in logins] == [2] * 10


def test_the_dc_restarted_under_a_live_session(store, samba_dc, ad_ou):
    ada = sam("ada")
    ada_dn, _ = samba_dc.add_user(ad_ou, ada, "Ada", "Lovelace")
    reader = new_store(store, samba_dc, ad_ou)
    with worker_thread(store):
        eventually(reader, lambda s: state(s, ada) == "active", timeout=30)
        samba_dc.pause()
        try:
            eventually(reader, lambda s: live_state(s, "ad")["live_state"] == "reconnecting")
            assert state(reader, ada) == "active"  # an unreachable directory deprovisions no one
        finally:
            samba_dc.resume()
        samba_dc.modify(ada_dn, {"department": "After the restart"})
        eventually(reader, lambda s: s.user_view(ada)["profile"].get("department") == "After the restart", timeout=60)


def test_a_burst_of_disables_is_held(store, samba_dc, ad_ou):
    logins = [sam("h") for _ in range(10)]
    dns = [samba_dc.add_user(ad_ou, login, "H", f"Eld{n}")[0] for n, login in enumerate(logins)]
    reader = new_store(store, samba_dc, ad_ou, threshold="0.2")
    with worker_thread(store):
        eventually(reader, lambda s: all(state(s, x) == "active" for x in logins), timeout=30)
        eventually(reader, lambda s: live_state(s, "ad")["live_state"] == "live")
        for dn in dns[:3]:  # 30% disabled within one DirSync round
            samba_dc.modify(dn, {"userAccountControl": UF_NORMAL_ACCOUNT | UF_ACCOUNTDISABLE})
        eventually(reader, lambda s: live_state(s, "ad")["live_state"] == "held")
        assert "--full --confirm" in live_state(reader, "ad")["live_message"]
        assert sum(state(reader, x) == "deprovisioned" for x in logins[:3]) < 3  # the excess waits for an admin
