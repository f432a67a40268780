"""Checks shared by the service's parts: names, and who the actor is."""

from __future__ import annotations

import os
from pathlib import Path

from provtui.domain.errors import InvalidInput
from provtui.domain.text import MAX_NAME, check_text

_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_. ")


def share_with_group(path: Path, group: str) -> None:
    import grp

    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise InvalidInput("--group", f"no Unix group named {group!r}") from None
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chown(path, -1, gid)
    os.chmod(path, 0o2770)


def current_os_user() -> str:
    """The actor: the OS user running provtui, by effective uid.

    Not $USER or $LOGNAME (what getpass.getuser() reads first): anyone can set those.
    """
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # no passwd entry (containers): the uid itself
        return f"uid:{os.geteuid()}"


def validate_name(field: str, name: str) -> str:
    name = check_text(field, name, MAX_NAME).strip()
    if not name or not set(name) <= _NAME_OK:
        raise InvalidInput(field, f"{name!r} is not a valid name (letters, digits, space and - _ .)")
    return name
