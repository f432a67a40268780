"""Active Directory's rules for the accounts provtui creates, which Samba does not all enforce and Windows does.

- A sAMAccountName is at most 20 characters, without " / \\ [ ] : ; | = , + * ? < > @, and unique across the
  whole domain (users, groups and computers alike), not just under the app's OU.  A login that fits is used as
  it is; a longer one (or an email-like one) is cut to 20, and when that cut is taken, to 15 plus "-" and four
  hex digits of the login's hash: the same login always derives the same name.
- An account is created disabled with "password not required" (userAccountControl 0x222 = 546), so a
  domain's password policy cannot refuse the add; it is given a password (a random one: the person sets theirs
  through password sync or the helpdesk), and only then enabled, which clears "password not required".
- An account with no password (pwdLastSet 0) is never enabled without one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from provtui.connectors.ldap.entries import first_value

SAM_MAX = 20
ACCOUNTDISABLE = 0x2
PASSWD_NOTREQD = 0x20
NORMAL_ACCOUNT = 0x200
CREATED = NORMAL_ACCOUNT | PASSWD_NOTREQD | ACCOUNTDISABLE  # 546
NO_TLS = (
    "Active Directory enables an account only once it has a password, and takes passwords only over TLS: "
    "use an ldaps:// URI or --tls starttls"
)
_NOT_IN_SAM = re.compile(r'["/\\\[\]:;|=,+*?<>@\x00-\x1f]')


def sam_candidates(login: str) -> list[str]:
    """The sAMAccountNames ``login`` may have, preferred first (see the module docstring)."""
    local = login.split("@", 1)[0] if "@" in login else login
    clean = _NOT_IN_SAM.sub("_", local).rstrip(". ") or "user"
    if clean == login and len(clean) <= SAM_MAX:
        return [clean]
    digest = hashlib.sha256(login.encode()).hexdigest()[:4]
    return [clean[:SAM_MAX].rstrip(". ") or "user", f"{clean[: SAM_MAX - 5].rstrip('. ')}-{digest}"]


def derive_sam(login: str, holder: Callable[[str], str | None]) -> tuple[str, str | None]:
    """(the first candidate no entry of the domain holds, None), or (the login's own name, the DN holding it)
    when every candidate is taken.  ``holder(name)``: the DN of the entry with that sAMAccountName, if any."""
    candidates = sam_candidates(login)
    for name in candidates:
        if holder(name) is None:
            return name, None
    return candidates[0], holder(candidates[0])


def has_password(raw: Mapping[str, Any]) -> bool:
    """Whether the account has a password: AD's pwdLastSet is 0 (or absent) for one that never had one."""
    value = first_value(raw, "pwdLastSet")
    return value is not None and value.strip() not in ("", "0")


def domain_root(dn: str) -> str:
    """The domain's naming context of an entry: its DC= components (``OU=x,DC=example,DC=test`` -> ``DC=example,DC=test``)."""
    parts = [p for p in re.split(r"(?<!\\),", dn) if p.strip().lower().startswith("dc=")]
    return ",".join(p.strip() for p in parts) or dn
