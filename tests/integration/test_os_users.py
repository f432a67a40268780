"""Real OS users: the actor is the process's user, and a store shared by a Unix group.

Each provtui command runs in a forked child that really switches to the user's
uid and groups (so the kernel enforces the store's file modes), then calls the
CLI's main(); a fork needs no exec permission on the venv.
"""

import grp
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

import provtui.cli.admins  # noqa: F401  (imported before the fork: the child may not read the venv)
import provtui.service  # noqa: F401
from tests.helpers.os_users import needs_root, run_as, run_as_capturing
from tests.helpers.os_users import os_users as make_os_users

pytestmark = needs_root


@pytest.fixture(scope="module")
def os_users():
    with make_os_users("adm", {"helpdesk": "desk", "member": "mem"}, {"outsider": "out"}) as made:
        yield made


@pytest.fixture
def shared_store(os_users):
    group, names = os_users
    root = Path(tempfile.mkdtemp(prefix="provtui-shared-"))
    os.chmod(root, 0o755)
    store = root / "store"
    try:
        assert run_as(None, "init", "--store", str(store), "--group", group) == 0
        assert (
            run_as(
                None,
                "--store",
                str(store),
                "user",
                "create",
                "ada",
                "--email",
                "ada@example.com",
                "--first",
                "Ada",
                "--last",
                "L",
                "--activate",
            )
            == 0
        )
        assert run_as(None, "--store", str(store), "admin", "grant", names["helpdesk"], "helpdesk") == 0
        yield store, group, names
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_actor_is_the_os_user_and_roles_apply(shared_store):
    store, _, names = shared_store
    desk, member = names["helpdesk"], names["member"]
    assert run_as(desk, "--store", str(store), "user", "suspend", "ada") == 0  # helpdesk may
    assert run_as(desk, "--store", str(store), "user", "create", "eve", "--email", "e@example.com", "--first", "E", "--last", "V") == 4
    assert run_as(member, "--store", str(store), "user", "list") == 4  # in the group, but no role: not an admin
    from provtui.service import Service

    events = Service.open(store, actor="root").audit()
    suspend = next(e for e in events if e["action"] == "user.suspend")
    assert suspend["actor"] == desk  # the uid's name, not $USER (which said root)


def test_a_user_outside_the_group_cannot_open_the_store(shared_store):
    store, _, names = shared_store
    assert run_as(names["outsider"], "--store", str(store), "user", "list") == 4


def test_shared_store_files_stay_group_owned_and_0660(shared_store):
    store, group, names = shared_store
    assert run_as(names["helpdesk"], "--store", str(store), "user", "suspend", "ada") == 0
    gid = grp.getgrnam(group).gr_gid
    directory = os.stat(store)
    assert directory.st_gid == gid and stat.S_IMODE(directory.st_mode) == 0o2770
    for path in store.iterdir():
        info = os.stat(path)
        assert info.st_gid == gid, path
        assert stat.S_IMODE(info.st_mode) == 0o660, (path, oct(info.st_mode))


def test_a_private_store_is_0600(tmp_path):
    assert run_as(None, "init", "--store", str(tmp_path / "store")) == 0
    assert stat.S_IMODE(os.stat(tmp_path / "store").st_mode) == 0o700
    for path in (tmp_path / "store").iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


@pytest.fixture
def read_only_files(shared_store):
    """The store's files readable by its group but writable by nobody in it (dir 2750, files 0640)."""
    store, group, names = shared_store
    assert run_as(None, "--store", str(store), "admin", "grant", names["member"], "read-only") == 0
    for path in store.iterdir():
        os.chmod(path, 0o640)
    os.chmod(store, 0o2750)
    return store, names


def test_an_admin_who_may_only_read_the_files_can_read(read_only_files):
    store, names = read_only_files
    before = {p.name: p.read_bytes() for p in store.iterdir()}
    for args in (
        ("user", "list"),
        ("user", "show", "ada"),
        ("audit",),
        ("audit", "verify"),
        ("audit", "head"),
        ("report", "orphans"),
        ("store", "check"),
    ):
        code, _, err = run_as_capturing(names["member"], "--store", str(store), *args)
        assert code == 0, (args, err)
    assert {p.name: p.read_bytes() for p in store.iterdir()} == before  # reading wrote nothing, not even a lock


def test_a_write_without_write_access_is_refused_clearly(read_only_files):
    store, names = read_only_files
    code, _, err = run_as_capturing(names["helpdesk"], "--store", str(store), "user", "suspend", "ada")  # the role allows it
    assert code == 4, err
    assert "Traceback" not in err and err.count("\n") == 1 and "Permission denied" in err


def test_a_store_file_that_cannot_be_read_is_exit_5(shared_store):
    store, _, names = shared_store
    os.chmod(store / "snapshot.json", 0o600)  # root's alone
    code, _, err = run_as_capturing(names["helpdesk"], "--store", str(store), "user", "list")
    assert code == 5 and "cannot read snapshot.json" in err and "Traceback" not in err, err
