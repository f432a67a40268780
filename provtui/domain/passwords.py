"""Passwords: the policy a new one must meet, and random ones for apps.

provtui never stores a password: it is pushed to the apps that sync passwords
while it is in memory, and only the fact of the change is recorded.
"""

from __future__ import annotations

import secrets
import string

from provtui.domain.errors import InvalidInput
from provtui.domain.text import MAX_PASSWORD, unsafe_character

RANDOM_LENGTH = 16
_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits, "!#$%&()*+,-.:;<=>?@[]^_{|}~")


def validate_password(password: str, *, min_length: int = 8, min_classes: int = 1) -> str:
    """The password if it meets the policy; InvalidInput (field "password") saying why if not."""
    if len(password) < min_length:
        raise InvalidInput("password", f"must be at least {min_length} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput("password", f"too long (max {MAX_PASSWORD})")
    bad = unsafe_character(password)
    if bad is not None:  # the character itself is not shown: it is part of a secret
        raise InvalidInput("password", f"must not contain line breaks or other control characters (one at position {bad[0]})")
    classes = sum(1 for chars in _CLASSES if any(c in chars for c in password))
    if classes < min_classes:
        raise InvalidInput("password", f"must mix at least {min_classes} of: lower case, upper case, digits, symbols")
    return password


def random_password(length: int = RANDOM_LENGTH) -> str:
    """A random password with every character class, from the OS's CSPRNG."""
    alphabet = "".join(_CLASSES)
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(c in chars for c in password) for chars in _CLASSES):
            return password
