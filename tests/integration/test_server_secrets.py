"""Secrets held by the server: set from stdin, used as an app's token by the server's engine, and found in no
store file, audit event, export, output or log."""

from __future__ import annotations

import io
import json
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from provtui.cli.main import main
from provtui.store.vault import SecretVault
from tests.helpers.server import thread_server


@pytest.fixture
def served(tmp_path, monkeypatch, capsys):
    store, run = tmp_path / "store", Path(tempfile.mkdtemp(prefix="pvs-"))
    assert main(["init", "--store", str(store)]) == 0
    with thread_server(store, run / "s.sock") as log:
        monkeypatch.setenv("PROVTUI_SERVER", str(run / "s.sock"))

        def cli(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
            if stdin is not None:
                monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
            code = main(list(args))
            out, err = capsys.readouterr()
            return code, out, err

        yield cli, store, log
    shutil.rmtree(run, ignore_errors=True)


def test_a_secret_set_from_stdin_is_the_apps_token_and_nowhere_else(served, scim_server):
    cli, store, log = served
    login = f"sec-{uuid.uuid4().hex[:8]}"
    assert cli("secret", "set", "scim-token", stdin=scim_server.token + "\n")[0] == 0
    code, out, _ = cli("secret", "list", "--json")
    assert code == 0 and [e["name"] for e in json.loads(out)] == ["scim-token"] and scim_server.token not in out
    assert cli("user", "create", login, "--email", f"{login}@example.com", "--first", "S", "--last", "T", "--activate")[0] == 0
    assert cli("app", "create", "Chat", "--scim-url", scim_server.url, "--token-secret", "scim-token")[0] == 0
    assert cli("app", "assign", "Chat", "--user", login)[0] == 0
    code, out, err = cli("sync", "--json")
    assert code == 0 and json.loads(out)["done"] == 1, err
    assert json.loads(cli("user", "show", login, "--json")[1])["apps"][0]["account"]["remote_id"]

    outputs = [cli(*args)[1] for args in (("audit", "--json"), ("app", "show", "Chat", "--json"), ("app", "list", "--json"))]
    code, exported, _ = cli("audit", "export", "--format", "jsonl")
    for text in [*outputs, exported, log.getvalue()]:
        assert scim_server.token not in text
    for path in store.iterdir():
        assert (scim_server.token.encode() in path.read_bytes()) == (path.name == "secrets.json"), path.name
    events = [e for e in json.loads(outputs[0]) if e["action"].startswith("secret.")]
    assert [(e["action"], e["target"]) for e in events] == [("secret.set", "scim-token")]


def test_a_secret_set_again_renews_its_apps_connectors_and_a_used_one_cannot_be_deleted(served):
    cli, store, _ = served
    cli("secret", "set", "tok", stdin="one")
    assert cli("app", "create", "Chat", "--scim-url", "http://127.0.0.1:9/v2", "--token-secret", "tok")[0] == 0
    before = json.loads(cli("app", "show", "Chat", "--json")[1])
    cli("secret", "set", "tok", stdin="two")
    assert SecretVault(store / "secrets.json").lookup("tok") == "two"
    from provtui.connectors.config import connection_fingerprint
    from provtui.service import Service

    [app] = [a for a in Service.open(store).store.all("apps").values()]
    assert app["token_secret_set"] and connection_fingerprint(app) != connection_fingerprint({**app, "token_secret_set": None})
    assert before["token_secret"] == "tok"
    code, _, err = cli("secret", "delete", "tok")
    assert code == 2 and "the token or password of app Chat" in err
    assert cli("app", "update", "Chat", "--token-env", "CHAT_TOKEN")[0] == 0  # one reference replaces the other
    assert json.loads(cli("app", "show", "Chat", "--json")[1])["token_secret"] is None
    assert cli("secret", "delete", "tok")[0] == 0 and json.loads(cli("secret", "list", "--json")[1]) == []
    code, _, err = cli("app", "update", "Chat", "--token-secret", "gone")
    assert code == 2 and "holds no secret named 'gone'" in err


def test_embedded_there_are_no_secrets_to_set(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PROVTUI_SERVER", raising=False)
    store = str(tmp_path / "store")
    assert main(["init", "--store", store]) == 0
    assert main(["--store", store, "secret", "list"]) == 2
    assert main(["--store", store, "app", "create", "X", "--scim-url", "http://127.0.0.1:9/v2", "--token-secret", "x"]) == 2
    ldap = ["--ldap-uri", "ldap://127.0.0.1:9", "--bind-dn", "cn=admin,dc=x", "--base-dn", "dc=x", "--disable-method", "ou:ou=gone,dc=x"]
    assert main(["--store", store, "app", "create", "D", *ldap, "--password-secret", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("held by a provtui server") == 3


async def test_an_ldap_apps_bind_password_can_be_a_secret_the_server_holds(tmp_path, slapd, tree, monkeypatch):
    from provtui.domain.errors import InvalidInput
    from provtui.service import Service
    from tests.helpers.ldap import LDAP_APP_PASSWORD_ENV, ldap_app_target, sync

    monkeypatch.delenv(LDAP_APP_PASSWORD_ENV)  # nothing in the environment: the vault alone holds it
    Service.init(tmp_path / "store", actor="admin")
    opened = Service.open(tmp_path / "store", actor="admin")
    service = Service(opened.store, "admin", directory=opened.directory, vault=SecretVault(tmp_path / "store" / "secrets.json"))
    with pytest.raises(InvalidInput, match="holds no secret named 'dir-pw'"):
        service.create_app("Directory", ldap=ldap_app_target(slapd, tree, password_env=None, password_secret="dir-pw"))
    service.set_secret("dir-pw", slapd.admin_password)
    service.create_app("Directory", ldap=ldap_app_target(slapd, tree, password_env=None, password_secret="dir-pw"))
    service.create_user("ldsec", "ldsec@example.org", "Lee", "Secret", activate=True)
    service.assign("Directory", login="ldsec")
    report = await sync(service)
    assert report.done == 1 and report.failed == [] and report.ok
    assert service.user_view("ldsec")["apps"][0]["account"]["remote_id"]
    with pytest.raises(InvalidInput, match="password of app Directory"):
        service.delete_secret("dir-pw")
    for path in (tmp_path / "store").iterdir():
        assert (slapd.admin_password.encode() in path.read_bytes()) == (path.name == "secrets.json"), path.name


def test_an_ldap_sources_bind_password_can_be_a_secret_the_server_holds(tmp_path, slapd, tree, monkeypatch):
    from provtui.domain.errors import InvalidInput, SourceFailed
    from provtui.service import Service
    from provtui.testing.slapd.entries import person_entry
    from tests.helpers.ldap import LDAP_APP_PASSWORD_ENV

    monkeypatch.delenv(LDAP_APP_PASSWORD_ENV)
    slapd.add_ldif([person_entry(tree.people, "srcsec", "Sam", "Secret")])
    Service.init(tmp_path / "store", actor="admin")
    opened = Service.open(tmp_path / "store", actor="admin")
    vault = SecretVault(tmp_path / "store" / "secrets.json")
    service = Service(opened.store, "admin", directory=opened.directory, vault=vault)
    source = {"uri": slapd.uri, "bind_dn": slapd.bind_dn, "base_dn": tree.people}
    with pytest.raises(InvalidInput, match="holds no secret named 'src-pw'"):
        service.add_ldap_source("corp", password_secret="src-pw", **source)
    with pytest.raises(InvalidInput, match="one of them"):
        service.add_ldap_source("corp", password_secret="src-pw", password_env="X", **source)
    service.set_secret("src-pw", "not-the-password")
    service.add_ldap_source("corp", password_secret="src-pw", **source)
    with pytest.raises(SourceFailed, match="corp"):  # a wrong password is the directory's refusal, with no value in it
        service.import_ldap("corp")
    service.set_secret("src-pw", slapd.admin_password)
    result = service.import_ldap("corp")
    assert result["created"] == 1 and service.user_view("srcsec")["login"] == "srcsec"
    with pytest.raises(InvalidInput, match="source corp"):
        service.delete_secret("src-pw")
    for path in (tmp_path / "store").iterdir():
        assert (slapd.admin_password.encode() in path.read_bytes()) == (path.name == "secrets.json"), path.name
    embedded = Service.open(tmp_path / "store", actor="admin")  # no vault: the reference cannot be resolved
    with pytest.raises(SourceFailed, match="secret src-pw .* is not held by this server"):
        embedded.import_ldap("corp")


def test_source_add_ldap_takes_a_password_secret_through_the_server(served, slapd, tree):
    from provtui.testing.slapd.entries import person_entry

    cli, _, _ = served
    slapd.add_ldif([person_entry(tree.people, "clisec", "Cli", "Secret")])
    base = ["source", "add-ldap", "corp", "--uri", slapd.uri, "--bind-dn", slapd.bind_dn, "--base-dn", tree.people]
    with pytest.raises(SystemExit) as refused:  # argparse: one of the two is required
        cli(*base)
    assert refused.value.code == 2
    assert cli("secret", "set", "src-pw", stdin=slapd.admin_password + "\n")[0] == 0
    code, out, err = cli(*base, "--password-secret", "src-pw", "--json")
    assert code == 0, err
    assert json.loads(out)["settings"]["password_secret"] == "src-pw" and slapd.admin_password not in out
    code, out, err = cli("import", "ldap", "corp", "--json")
    assert code == 0 and json.loads(out)["created"] == 1, err
