"""Inbound SCIM clients (#20): an identity provider or HR system that pushes people into provtui, each a source
of truth of its own (``scim:NAME``), known by a bearer token.

A token is shown once, when made or rotated, and kept only as its SHA-256: 256 random bits need no slow hash
(nothing can be guessed from the digest), and a stolen store holds no token.  A presented token is compared
with every client's digest in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable

from provtui.domain.errors import InvalidInput

SOURCE_PREFIX = "scim:"  # a client's people and groups are mastered by source scim:NAME
TOKEN_PREFIX = "pvscim_"  # (a token found in a log or a paste says what it is, as GitHub's do)
TOKEN_BYTES = 32
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def validate_client_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput("NAME", f"{name!r} is not a SCIM client name (letters, digits and . _ -, at most 64)")
    return name


def source_of(client: str) -> str:
    return SOURCE_PREFIX + client


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def client_of(token: str, digests: Iterable[tuple[str, str]]) -> str | None:
    """The client (name, digest) whose token this is, or None: every digest compared, in constant time."""
    return client_of_digest(token_digest(token), digests)


def client_of_digest(digest: str, digests: Iterable[tuple[str, str]]) -> str | None:
    """The client (name, digest) whose token has this digest, or None: every digest compared, in constant time."""
    presented = digest.encode()
    found = None
    for name, digest in digests:
        if hmac.compare_digest(presented, digest.encode()):
            found = name
    return found
