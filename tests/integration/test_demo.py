"""`provtui demo`: live SCIM servers, a seeded store, provisioning, and a clean stop."""

import asyncio
from contextlib import ExitStack

import httpx

from provtui.compose import build_engine
from provtui.demo import DEMO_APPS, start_demo


def test_demo_provisions_everyone_into_live_scim_servers_and_stops_them(tmp_path):
    with ExitStack() as stack:
        service = start_demo(stack, tmp_path)
        apps = {a["name"]: a for a in service.list_apps()}
        assert {name for name, _ in DEMO_APPS} | {"Payroll"} == set(apps)
        assert {(r["name"], r["state"]) for r in service.rules().list()} == {("on-call", "active"), ("payroll-users", "active")}
        assert [h["name"] for h in service.rules().held() if h["state"] == "held"] == ["payroll-users"]  # waits for an admin
        report = asyncio.run(build_engine(service, notify=False).run_until_idle())
        assert report.ok and report.done > 36
        for name, _ in DEMO_APPS:
            status = service.app_status(name)[0]
            assert status["active"] > 0 and status["failed"] == 0 and status["queued"] == 0
        slack_url = apps["Slack"]["scim_url"]
        import os

        token = os.environ[DEMO_APPS[0][1]]
        users = httpx.get(f"{slack_url}/Users", headers={"Authorization": f"Bearer {token}"}).json()
        active_people = service.list_users("", state="active")[0]
        assert users["totalResults"] == active_people  # everyone active (all-staff) has a Slack account
        assert len(service.task_list()) > 0  # the manual app's tasks
    try:
        httpx.get(f"{slack_url}/Users", headers={"Authorization": f"Bearer {token}"}, timeout=2)
        raise AssertionError("the demo's SCIM server is still running")
    except httpx.ConnectError:
        pass
