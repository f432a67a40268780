"""The store directory's files: their names, modes, atomic writes and the locks over them."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from provtui.store.errors import StoreUnreadable

SNAPSHOT = "snapshot.json"
AUDIT = "audit.jsonl"
LOCK = "store.lock"
HEAD = "store.head"  # the newest committed seq: what a journal cut at a record boundary cannot show by itself
JOURNAL = re.compile(r"journal-(\d+)\.jsonl")


def file_mode(directory: Path) -> int:
    """0600, or 0660 when the store directory is shared with a group (group-writable, as `init --group` makes it)."""
    try:
        shared = os.stat(directory).st_mode & stat.S_IWGRP
    except FileNotFoundError:
        shared = 0
    return 0o660 if shared else 0o600


def open_private(path: Path, flags: int) -> int:
    """Open (creating) a store file with the store's mode, whatever the umask: a group-shared
    store's files must stay group-writable, a private one's private."""
    mode = file_mode(path.parent)
    fd = os.open(path, flags | os.O_CREAT, mode)
    try:
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, mode)
    except OSError:
        pass
    return fd


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def journals(directory: Path) -> list[str]:
    """The journal files present, oldest first."""
    try:
        names = [n for n in os.listdir(directory) if JOURNAL.fullmatch(n)]
    except FileNotFoundError:
        return []
    return sorted(names, key=lambda n: int(JOURNAL.fullmatch(n).group(1)))  # type: ignore[union-attr]


def store_files(directory: Path) -> list[str]:
    """The store's own files present in ``directory`` (what `init` refuses to start over)."""
    try:
        present = set(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [n for n in (SNAPSHOT, AUDIT, HEAD) if n in present] + journals(directory)


def read_file(path: Path, offset: int = 0) -> bytes:
    """A store file's bytes from ``offset`` on (a reader catching up reads only what was appended); a file
    that cannot be read is StoreUnreadable (not a traceback)."""
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise StoreUnreadable(f"{path.name} in {path.parent} is not a regular file")
            if offset:
                f.seek(offset)
            return f.read()
    except IsADirectoryError:
        raise StoreUnreadable(f"{path.name} in {path.parent} is a directory, not a file: move it away") from None
    except PermissionError:
        raise StoreUnreadable(f"cannot read {path.name} in {path.parent}: permission denied") from None


def write_head(directory: Path, seq: int, audit_head: str) -> None:
    """Note the newest committed seq, after its journal record is fsync'd.  Not fsync'd itself: after a
    power cut it can only lag the journal, never lead it, and a lagging note hides nothing."""
    fd = open_private(directory / HEAD, os.O_WRONLY)
    try:
        line = f"{seq} {audit_head}\n".encode()
        os.pwrite(fd, line.ljust(96), 0)  # fixed width: one write, never a shorter line over a longer one
    finally:
        os.close(fd)


def read_head(directory: Path) -> int | None:
    """The newest committed seq as noted, or None (no note: a store from before it was kept).
    Raises ValueError when the note is not one."""
    try:
        with open(directory / HEAD, "rb") as f:
            data = f.read(96)
    except FileNotFoundError:
        return None
    except (IsADirectoryError, PermissionError):
        read_file(directory / HEAD)
        raise
    seq, _, rest = data.strip().partition(b" ")
    if not seq.isdigit() or len(rest) != 64:
        raise ValueError(f"{HEAD} does not hold a commit number")
    return int(seq)


def check_lock_file(directory: Path) -> None:
    lock = directory / LOCK
    try:
        st = os.lstat(lock)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise StoreUnreadable(
            f"{LOCK} in {directory} is not a regular file (a directory or link where the lock file "
            f"should be): move it away, and provtui makes a new one"
        )


@contextmanager
def shared_lock(directory: Path) -> Iterator[None]:
    """Hold the store's lock shared, for reading: writers (who hold it exclusive) wait, other
    readers do not.  Opened read-only, so an admin who may only read the files can take it; with no
    lock file (nobody has written yet) there is no writer to keep out."""
    check_lock_file(directory)
    try:
        fd = os.open(directory / LOCK, os.O_RDONLY)
    except FileNotFoundError:
        yield
        return
    except PermissionError:  # a lock we may not even read: read without it (the snapshot is replaced atomically)
        yield
        return
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
                break
            except OSError as error:
                if error.errno != errno.EINTR:
                    raise
        yield
    finally:
        os.close(fd)  # closing releases the lock
