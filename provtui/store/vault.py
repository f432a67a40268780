"""The server's secrets: a file beside the store (``secrets.json``, 0600) that only the server's user reads.

Never in the journal, the audit trail, a snapshot or an export: the store records who set which secret
when, this file alone holds values.  Each write replaces the whole file atomically (a 0600 temporary
file, fsynced, renamed over it, the directory fsynced), so a crash leaves the old secrets or the new.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import orjson

from provtui.store.errors import StoreError

VAULT_FILE = "secrets.json"


class VaultError(StoreError):
    """The secrets file cannot be trusted or read (others may read it, or it is not what this writes)."""


class SecretVault:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._entries: dict[str, dict[str, Any]] = self._read()

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise VaultError(f"{self.path}: {error.strerror}") from None
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077 or info.st_uid != os.geteuid():
                raise VaultError(
                    f"{self.path} may be read by others (mode {stat.S_IMODE(info.st_mode):o}): it must be 0600 and this user's"
                )
            data = file.read()
        try:
            entries = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise VaultError(f"{self.path} is not a secrets file provtui wrote") from None
        if not isinstance(entries, dict) or not all(isinstance(e, dict) and isinstance(e.get("value"), str) for e in entries.values()):
            raise VaultError(f"{self.path} is not a secrets file provtui wrote")
        return entries

    def _write(self) -> None:
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(orjson.dumps(self._entries, option=orjson.OPT_SORT_KEYS))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        directory = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def set(self, name: str, value: str, *, by: str, at: str) -> None:
        self._entries[name] = {"value": value, "set_by": by, "set_at": at}
        self._write()

    def delete(self, name: str) -> bool:
        if self._entries.pop(name, None) is None:
            return False
        self._write()
        return True

    def entries(self) -> list[dict[str, Any]]:
        """Every secret's name, who set it and when: never a value."""
        return [{"name": name, "set_by": e["set_by"], "set_at": e["set_at"]} for name, e in sorted(self._entries.items())]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def lookup(self, name: str) -> str | None:
        entry = self._entries.get(name)
        return entry["value"] if entry else None
