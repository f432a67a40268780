"""Snapshots of every screen, at 80x24 and 120x40, over fixture stores.

Deterministic: the clock is frozen, ids are never shown (and made sequential in the
provisioned store, so the engine's order is fixed), cursors do not blink, and every
worker has finished before the picture is taken.
"""

from __future__ import annotations

import pytest

from tests.helpers.console import FROZEN_TIME, NARROW, WIDE, lived_in_service, snap


@pytest.fixture(scope="module")
def lived(tmp_path_factory):
    """The demo after a provisioning run against fake apps: failures, a quarantine, tasks (read-only: shared)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROVTUI_FROZEN_TIME", FROZEN_TIME)
        yield lived_in_service(tmp_path_factory.mktemp("lived") / "store", patch)


# -- every screen at both sizes ------------------------------------------------------------------------

# name -> (fixture, keys, page to open).  "lived" (after an engine run) shows failures, tasks and accounts;
# the audit log is taken before any engine run, whose results in one commit come in any order.
SCREENS = {
    "directory": ("demo", (), {}),
    "help": ("demo", ("question_mark",), {}),
    "dashboard": ("lived", ("d",), {}),
    "user_detail": ("lived", (), {"user": "alovelace"}),
    "groups": ("demo", ("g",), {}),
    "group_detail": ("lived", (), {"group": "engineering"}),
    "apps": ("lived", ("a",), {}),
    "app_detail_quarantined": ("lived", (), {"app": "Slack"}),
    "activity": ("lived", ("y",), {}),
    "tasks": ("lived", ("t",), {}),
    "audit": ("demo", ("l",), {}),
    "reports": ("lived", ("r",), {}),
    "rules": ("demo", ("o",), {}),
}


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
@pytest.mark.parametrize("screen", SCREENS)
def test_screen(snap_compare, request, screen, size):
    fixture, pressed, page = SCREENS[screen]
    assert snap(snap_compare, request.getfixturevalue(fixture), size, *pressed, **page)


# -- states within screens ------------------------------------------------------------------------------


def test_directory_search(snap_compare, demo):
    assert snap(snap_compare, demo, WIDE, "slash", "=hopper")


def test_move_group_dialog(snap_compare, demo):
    assert snap(snap_compare, demo, NARROW, "m", user="ghopper")  # finance, her smallest group, offered first


def test_app_detail_payload_preview_120x40(snap_compare, lived):
    assert snap(snap_compare, lived, WIDE, "v", "=nwirth", "enter", "end", app="GitHub")


def test_dashboard_with_live_sources(snap_compare, demo, monkeypatch):
    """A live directory's session on the dashboard: one live (with the last change's lag), one reconnecting."""
    from provtui.clock import parse_iso
    from provtui.connectors.ldap.syncrepl import LiveBatch

    monkeypatch.setenv("PROVTUI_TEST_LIVE_PW", "unused")
    importer = demo.importer()
    for name, flavor in (("corp", "openldap"), ("dc1", "ad")):
        base = "ou=people,dc=example,dc=org" if flavor == "openldap" else "OU=People,DC=example,DC=test"
        importer.add_ldap_source(
            name,
            uri=f"ldap://{name}.example.test",
            bind_dn="cn=reader",
            password_env="PROVTUI_TEST_LIVE_PW",
            base_dn=base,
            flavor=flavor,
            live=True,
        )
    importer.apply_live("corp", LiveBatch("users", cookie="rid=000,csn=1", received=parse_iso(FROZEN_TIME).timestamp() - 0.042))
    importer.record_live_state("corp", "live")
    importer.record_live_state("dc1", "reconnecting", "connect to ldap://dc1.example.test: timed out")
    assert snap(snap_compare, demo, WIDE, "d")
