"""Real OS users for the tests: a Unix group with users in it, and provtui run as one of them.

Each command runs in a forked child that really switches to the user's uid and groups (so the kernel
enforces the store's file modes), then calls the CLI's main(); a fork needs no exec permission on the venv.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import provtui.cli.admins  # noqa: F401  (imported before the fork: the child may not read the venv)
import provtui.service  # noqa: F401
from provtui.cli.main import main

needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd"), reason="needs root and useradd to create OS users")


@contextmanager
def os_users(prefix: str, members: dict[str, str], outsiders: dict[str, str] | None = None) -> Iterator[tuple[str, dict[str, str]]]:
    """A Unix group ``pt<prefix><suffix>`` with ``members`` (role -> name stem) in it and ``outsiders`` not;
    yields (group, role -> user name); removed afterwards."""
    suffix = uuid.uuid4().hex[:6]
    group = f"pt{prefix}{suffix}"
    names = {role: f"pt{stem}{suffix}" for role, stem in {**members, **(outsiders or {})}.items()}
    subprocess.run(["groupadd", group], check=True)
    try:
        for role, name in names.items():
            in_group = ["-g", group] if role in members else []
            subprocess.run(["useradd", "-M", "-N", *in_group, name], check=True)
        yield group, names
    finally:
        for name in names.values():
            subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", group], capture_output=True)


def run_as_capturing(user: str | None, *args: str) -> tuple[int, str, str]:
    """`provtui ARGS` as ``user`` (None: root) in a forked child: (exit code, stdout, stderr). $USER and $LOGNAME
    say root in the child, a lie the actor check must not believe; a traceback reaches stderr (exit 70)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        pid = os.fork()
        if pid == 0:  # the child
            code = 70
            try:
                sys.stdout, sys.stderr = out, err  # opened by root: still writable once the child is not
                if user is not None:
                    entry = pwd.getpwnam(user)
                    os.setgroups([g.gr_gid for g in grp.getgrall() if user in g.gr_mem] + [entry.pw_gid])
                    os.setgid(entry.pw_gid)
                    os.setuid(entry.pw_uid)
                    os.environ["USER"] = os.environ["LOGNAME"] = "root"
                os.umask(0o022)
                code = main(list(args))
            except SystemExit as exit:  # --help, and argparse's own exits
                code = exit.code if isinstance(exit.code, int) else 0
            except BaseException:
                traceback.print_exc()
            finally:
                out.flush()
                err.flush()
                os._exit(code)
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        out.seek(0)
        err.seek(0)
        return code, out.read(), err.read()


def run_as(user: str | None, *args: str) -> int:
    """As run_as_capturing, the exit code alone."""
    return run_as_capturing(user, *args)[0]
