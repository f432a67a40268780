"""Files an admin names as input (an HR CSV, a mapping, a password blocklist): regular files only, each
kind with a size limit, so that /dev/zero, a FIFO or a directory is refused at once, never read until
memory runs out.  ``-`` (stdin, where a command takes it) is read up to the same limit."""

from __future__ import annotations

import os
import stat
import sys

from provtui.domain.errors import InvalidInput

MB = 1024 * 1024
MAX_CSV = 256 * MB  # an HR export: 50,000 people are a few MB
MAX_MAPPING = 1 * MB
MAX_BLOCKLIST = 16 * MB

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a pipe"),
    (stat.S_ISSOCK, "a socket"),
)


def _size(limit: int) -> str:
    return f"{limit // MB} MB" if limit >= MB else f"{limit} bytes"


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks, size = [], 0
    while size <= limit:
        chunk = os.read(fd, min(1 << 20, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_input(path: str, field: str, limit: int) -> bytes:
    """The bytes of the regular file ``path`` (``-``: stdin); InvalidInput naming ``field`` if it cannot be
    read, is not a regular file, or holds more than ``limit`` bytes."""
    too_big = f"{'stdin' if path == '-' else path} is too big (max {_size(limit)})"
    try:
        if path == "-":
            data = _read_at_most(sys.stdin.buffer.fileno(), limit) if _has_fd(sys.stdin) else sys.stdin.buffer.read(limit + 1)
            if len(data) > limit:
                raise InvalidInput(field, too_big)
            return data
        # O_NONBLOCK: opening a FIFO nobody writes to returns at once (and is then refused), instead of waiting
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise InvalidInput(field, f"cannot read {path}: {error.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise InvalidInput(field, f"{path} is {kind}: give a regular file")
        if os.fstat(fd).st_size > limit:
            raise InvalidInput(field, too_big)
        data = _read_at_most(fd, limit)  # it may have grown since fstat
    except OSError as error:
        raise InvalidInput(field, f"cannot read {path}: {error.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InvalidInput(field, too_big)
    return data


def _has_fd(stream) -> bool:
    try:
        stream.buffer.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True
