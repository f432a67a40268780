"""The invariant checker: the demo org holds every invariant once synced, and a planted fault is found."""

import asyncio
from contextlib import ExitStack

import httpx

from provtui.compose import build_engine
from provtui.demo import DEMO_APPS, start_demo
from provtui.testing.invariants import check


def test_a_synced_organisation_holds_every_invariant_and_violations_are_found(tmp_path):
    import os

    with ExitStack() as stack:
        service = start_demo(stack, tmp_path)
        before = asyncio.run(check(service))
        assert before.ok, before.violations  # nothing provisioned yet, but all of it is queued: visible, so allowed
        assert asyncio.run(build_engine(service, notify=False).run_until_idle()).ok
        report = asyncio.run(check(service))
        assert report.ok, report.violations
        assert report.checked_accounts > 36
        for task in service.task_list(open_only=True):
            service.complete_task(task["id"])
        asyncio.run(build_engine(service, notify=False).run_until_idle())
        assert asyncio.run(check(service)).ok

        # Plant faults behind provtui's back: an account reactivated downstream for a leaver, and a duplicate.
        leaver = service.list_users("", state="active")[1][0]["login"]
        service.change_state(leaver, "deactivate")
        asyncio.run(build_engine(service, notify=False).run_until_idle())
        slack = next(a for a in service.list_apps() if a["name"] == "Slack")
        token = os.environ[DEMO_APPS[0][1]]
        remote_id = service.user_view(leaver)["apps"][0]["account"]["remote_id"]
        headers = {"Authorization": f"Bearer {token}"}
        httpx.patch(
            f"{slack['scim_url']}/Users/{remote_id}",
            headers=headers,
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": True}],
            },
        )
        httpx.post(
            f"{slack['scim_url']}/Users",
            headers=headers,
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "someone-else",
                "externalId": service.user_view(leaver)["id"],
            },
        )
        violations = asyncio.run(check(service)).violations
        assert any(f"{leaver} (deprovisioned) still has an active account" in v for v in violations), violations
        assert any("2 accounts with externalId" in v for v in violations), violations
