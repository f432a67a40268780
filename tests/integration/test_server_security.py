"""The server as a hostile colleague meets it: real OS users (useradd), a real `provtui server` process run
as the store's owner, every other user a client on its socket.

Who tried what, and what happened, is the matrix in each test's name; the README's "Running a shared
server" and the closing note quote it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers.os_users import needs_root, os_users, run_as, run_as_capturing
from tests.helpers.server import ForkedServer

pytestmark = needs_root

ROLES = {"owner": "own", "helpdesk": "hd", "app_admin": "aa", "read_only": "ro"}


@pytest.fixture(scope="module")
def shared():
    with os_users("sv", ROLES, outsiders={"nobody": "nb"}) as (_group, names):
        base = Path(tempfile.mkdtemp(prefix="pvs-"))
        os.chmod(base, 0o755)
        home = base / "home"
        home.mkdir()
        shutil.chown(home, names["owner"])
        run = base / "run"  # the socket's directory: the server's, as /run/provtui is under systemd
        run.mkdir(mode=0o755)
        shutil.chown(run, names["owner"])
        store, sock = home / "store", run / "s.sock"
        owner = names["owner"]

        def seed(*args: str) -> None:
            code, _, err = run_as_capturing(owner, "--store", str(store), *args)
            assert code == 0, (args, err)

        seed("init")
        for login in ("ada", "bob"):
            seed("user", "create", login, "--email", f"{login}@example.com", "--first", login, "--last", "X", "--activate")
        seed("group", "create", "sales")
        seed("group", "create", "eng")
        seed("group", "add-member", "sales", "ada")
        seed("app", "create", "Slack", "--scim-url", "http://127.0.0.1:9/v2", "--token-env", "SLACK_TOKEN")
        seed("admin", "grant", names["helpdesk"], "helpdesk", "--group", "sales", "--group", "eng")
        seed("admin", "grant", names["app_admin"], "app-admin", "--app", "Slack")
        seed("admin", "grant", names["read_only"], "read-only")
        server = ForkedServer(owner, store, sock, env={"SLACK_TOKEN": "server-only-token"})
        try:
            yield SimpleNamespace(store=store, sock=sock, names=names, server=server, owner=owner)
        finally:
            code, log = server.stop()
            shutil.rmtree(base, ignore_errors=True)
            assert code == 0, log


def client(shared, who: str, *args: str) -> tuple[int, str, str]:
    """`provtui --server SOCK ARGS` as ``who`` (a role of ROLES, "nobody", or "root")."""
    user = None if who == "root" else shared.names[who]
    return run_as_capturing(user, "--server", str(shared.sock), *args)


def audit(shared) -> list[dict]:
    code, out, err = client(shared, "owner", "audit", "--json")
    assert code == 0, err
    return json.loads(out)


def test_the_store_is_the_servers_alone_and_a_user_with_no_role_gets_exit_4_from_everything(shared):
    assert {p.stat().st_mode & 0o777 for p in shared.store.iterdir()} == {0o600}
    assert shared.store.stat().st_mode & 0o777 == 0o700
    for who in ("nobody", "helpdesk", "app_admin", "read_only"):  # no admin can read or write a store file
        probe = f"import os\nfor name in {sorted(os.listdir(shared.store))!r}:\n"
        probe += f"    try:\n        open(os.path.join({str(shared.store)!r}, name), 'rb').read(1)\n"
        probe += "        print('READ', name)\n    except PermissionError:\n        pass\n"
        done = subprocess.run(["runuser", "-u", shared.names[who], "--", "/usr/bin/python3", "-c", probe], capture_output=True, text=True)
        assert done.returncode == 0 and "READ" not in done.stdout, (who, done.stdout, done.stderr)
    for args in (("user", "list"), ("user", "show", "ada"), ("admin", "list"), ("audit",), ("sync",), ("config", "show")):
        code, _, err = client(shared, "nobody", *args)
        assert code == 4 and "holds no role" in err, (args, code, err)
    code, _, err = client(shared, "nobody", "admin", "grant", shared.names["nobody"], "super-admin")
    assert code == 4
    assert run_as(shared.names["nobody"], "--server", str(shared.sock), "user", "--help") == 0
    assert shared.names["nobody"] not in json.dumps(json.loads(client(shared, "owner", "admin", "list", "--json")[1]))
    refused = [e for e in audit(shared) if e["action"] == "access.refused" and e["actor"] == shared.names["nobody"]]
    assert refused and refused[0]["after"]["reason"] == "not an admin of this store"


def test_the_kernel_not_the_client_says_who_calls(shared):
    # $USER and $LOGNAME say root in run_as's child: what a helpdesk admin does is still theirs, by the kernel's word
    assert client(shared, "helpdesk", "group", "add-member", "eng", "bob")[0] == 0
    event = [e for e in audit(shared) if e["action"] == "group.add-member" and e["after"] == {"users": ["bob"]}][-1]
    assert event["actor"] == shared.names["helpdesk"] and event["target"] == "eng"
    code, out, _ = client(shared, "read_only", "user", "list", "--json")
    assert code == 0 and {u["login"] for u in json.loads(out)} == {"ada", "bob"}
    code, _, err = client(shared, "root", "user", "list")  # root holds no role here either
    assert code == 4 and "root may not" in err


def test_a_helpdesk_admin_moves_people_and_may_not_grant_change_apps_read_secrets_or_approve(shared):
    helpdesk = shared.names["helpdesk"]
    assert client(shared, "helpdesk", "group", "add-member", "eng", "ada")[0] == 0
    assert client(shared, "helpdesk", "group", "remove-member", "sales", "ada")[0] == 0
    code, out, _ = client(shared, "owner", "user", "show", "ada", "--json")
    assert json.loads(out)["groups"] == ["eng"]
    before = len(audit(shared))
    refused = [
        ("admin", "grant", helpdesk, "super-admin"),
        ("app", "update", "Slack", "--scim-url", "http://127.0.0.1:10/v2"),
        ("app", "update", "Slack", "--token-env", "OTHER"),
        ("held", "approve", "h-1"),
        ("config", "set", "smtp.host", "mail.example.com"),
    ]
    for args in refused:
        code, _, err = client(shared, "helpdesk", *args)
        assert code == 4, (args, code, err)
    events = audit(shared)[before:]
    assert [e["action"] for e in events] == ["access.refused"] * len(refused)
    assert {e["actor"] for e in events} == {helpdesk}
    code, out, _ = client(shared, "owner", "admin", "list", "--json")
    assert [g["role"] for a in json.loads(out) if a["user"] == helpdesk for g in a["grants"]] == ["helpdesk"]


def test_only_the_super_admin_sets_lists_or_deletes_secrets_and_no_one_reads_a_value(shared):
    code, _, err = run_as_capturing(shared.owner, "--server", str(shared.sock), "secret", "list", "--json")
    assert code == 0, err
    for who in ("helpdesk", "app_admin", "read_only", "nobody"):
        for args in (("secret", "list"), ("secret", "delete", "x"), ("app", "update", "Slack", "--token-secret", "x")):
            assert client(shared, who, *args)[0] == 4, (who, args)
    secrets_file = shared.store / "secrets.json"
    for who in ("helpdesk", "app_admin", "read_only", "nobody"):
        done = subprocess.run(
            ["runuser", "-u", shared.names[who], "--", "/usr/bin/python3", "-c", f"open({str(secrets_file)!r}).read()"],
            capture_output=True,
            text=True,
        )
        assert done.returncode != 0 and ("PermissionError" in done.stderr or "FileNotFoundError" in done.stderr)


def test_an_app_admin_may_not_point_its_app_elsewhere_and_no_one_reads_the_token(shared):
    for args in (("app", "update", "Slack", "--scim-url", "http://attacker.example/v2"), ("app", "update", "Slack", "--token-env", "X")):
        assert client(shared, "app_admin", *args)[0] == 4
    code, out, _ = client(shared, "app_admin", "app", "list", "--json")
    assert code == 0 and "server-only-token" not in out
    [slack] = [a for a in json.loads(out) if a["name"] == "Slack"]
    assert "127.0.0.1:9" in json.dumps(slack)
    for who in ROLES:
        _, out, err = client(shared, who, "audit", "--json")
        assert "server-only-token" not in out + err


def test_no_grant_or_audit_event_can_be_added_without_the_server(shared):
    journal = next(shared.store.glob("journal-*.jsonl"))
    line = '{"seq": 999, "ops": [["put", "admins", "X", {"user": "X", "grants": [{"role": "super-admin"}]}]]}\n'
    for who in ("nobody", "helpdesk", "app_admin", "read_only"):
        for target in (journal, shared.store / "audit.jsonl", shared.store / "store.head", shared.store / "new-file"):
            script = f"open({str(target)!r}, 'a').write({line!r})"
            done = subprocess.run(
                ["runuser", "-u", shared.names[who], "--", "/usr/bin/python3", "-c", script], capture_output=True, text=True
            )
            assert done.returncode != 0 and "PermissionError" in done.stderr, (who, target)
    code, out, _ = client(shared, "owner", "audit", "verify", "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    assert len(json.loads(client(shared, "owner", "admin", "list", "--json")[1])) == 4


def _raw(shared, data: bytes, *, read: bool = True) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(20)
        sock.connect(str(shared.sock))
        sock.sendall(data)
        if not read:
            return b""
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def _still_serving(shared) -> None:
    code, out, err = client(shared, "read_only", "user", "list", "--json")
    assert code == 0 and len(json.loads(out)) == 2, err


def test_the_server_survives_garbage_huge_bodies_hangups_and_a_thousand_connections(shared):
    assert _raw(shared, b"\x00\xffnot http at all\r\n\r\n").startswith(b"HTTP/1.1 400")
    answer = _raw(shared, b"POST /v1/call HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{nope!}")
    assert b"HTTP/1.1 400" in answer and b"not a call" in answer
    huge = 100 * 1024 * 1024
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:  # 100 MB announced: refused before it is read
        sock.settimeout(20)
        sock.connect(str(shared.sock))
        sock.sendall(b"POST /v1/call HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % huge + b"x" * 65536)
        assert sock.recv(65536).startswith(b"HTTP/1.1 413")
    _raw(shared, b'POST /v1/call HTTP/1.1\r\nhost: x\r\ncontent-length: 5000\r\n\r\n{"jsonrpc"', read=False)  # hangs up mid-body
    _still_serving(shared)

    held = []
    try:
        for _ in range(1000):  # one user (root) opens a thousand: past their bound they are told so; others carry on
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(shared.sock))
            held.append(sock)
        time.sleep(0.5)
        refused = 0
        for sock in held[-10:]:
            sock.settimeout(5)
            reply = sock.recv(65536)
            refused += reply.startswith(b"HTTP/1.1 503") and b"too many connections" in reply
        assert refused == 10
        _still_serving(shared)
    finally:
        for sock in held:
            sock.close()
    _still_serving(shared)
    assert shared.server.poll() is None
