"""A canary secret (SCIM token, LDAP and SMTP passwords) never reaches the store, the audit trail,
exports, command output or the console's screens."""

import asyncio
import json
import subprocess
import sys
import uuid

from provtui.cli.main import main
from provtui.compose import build_engine
from provtui.service import Service
from provtui.tui.app import build_app


def test_canary_secrets_appear_nowhere(tmp_path, scim_server, monkeypatch, capsys):
    canary_token = scim_server.token  # the real token the server accepts...
    canary_password = "Canary-" + uuid.uuid4().hex  # ...and secrets for the SMTP and LDAP settings
    monkeypatch.setenv("PT_SCIM_TOKEN", canary_token)
    monkeypatch.setenv("PT_SMTP_PASSWORD", canary_password)
    monkeypatch.setenv("PT_LDAP_PASSWORD", canary_password)
    monkeypatch.setenv("PROVTUI_STORE", str(tmp_path / "store"))
    service = Service.init(tmp_path / "store", actor="admin")
    monkeypatch.setattr("provtui.service.facade.current_os_user", lambda: "admin")
    login = f"canary-{uuid.uuid4().hex[:6]}"
    service.create_user(login, f"{login}@example.com", "Can", "Ary", activate=True)
    service.create_app("Slack", scim_url=scim_server.url, token_env="PT_SCIM_TOKEN", sync_password=True)
    service.create_app(
        "Directory",
        ldap={
            "uri": "ldap://127.0.0.1:9",
            "bind_dn": "cn=admin,dc=example,dc=org",
            "password_env": "PT_LDAP_PASSWORD",
            "base_dn": "ou=people,dc=example,dc=org",
            "disable_method": "attr:employeeType=disabled",
        },
    )
    service.set_config("smtp.host", "127.0.0.1")
    service.set_config("smtp.user", "mailer")
    service.set_config("smtp.password-env", "PT_SMTP_PASSWORD")
    service.assign("Slack", login=login)
    assert asyncio.run(build_engine(service, notify=False).run_until_idle()).ok
    targets = service.password_targets(login)
    reconciler = build_engine(service)
    results = asyncio.run(reconciler.push_passwords(targets, {targets[0]["app_id"]: canary_password}))
    service.record_password_change(login, results, random=False)

    outputs = []
    for args in (
        ["app", "list", "--json"],
        ["app", "status", "--json"],
        ["audit", "--json"],
        ["config", "show", "--json"],
        ["audit", "export", "--format", "jsonl"],
        ["audit", "export", "--format", "csv"],
        ["user", "show", login, "--json"],
        ["report", "access", "--csv"],
        ["report", "apps", "--json"],
    ):
        assert main(args) == 0, args
        captured = capsys.readouterr()
        outputs.append(captured.out + captured.err)
    worker_log = subprocess.run([sys.executable, "-m", "provtui", "sync"], capture_output=True, text=True, env={**__import__("os").environ})
    outputs.append(worker_log.stdout + worker_log.stderr)

    async def screens():
        app = build_app(Service.open(tmp_path / "store", actor="admin"), label="canary")
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.5)
            await app.workers.wait_for_complete()
            return [app.export_screenshot()]

    outputs += asyncio.run(screens())
    files = [p.read_bytes().decode(errors="replace") for p in (tmp_path / "store").iterdir() if p.is_file()]
    for secret in (canary_token, canary_password):
        for text in outputs + files:
            assert secret not in text
    assert any("PT_SCIM_TOKEN" in text for text in outputs)  # the reference is shown, the secret never
    assert json.loads(outputs[3])["smtp.password-env"] == "PT_SMTP_PASSWORD"
