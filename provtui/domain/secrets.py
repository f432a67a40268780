"""Secret references and endpoints: the store names where a secret is, never the secret.

An app's secret (a SCIM bearer token, an LDAP bind password, the SMTP password) is
read from an environment variable at the moment it is used; the store keeps the
variable's *name*.  So a value given as a name must be one — and when it is not,
it may be the secret itself, typed in the wrong place: it is refused without being
repeated (not in the message, the store or the audit trail).  For the same reason an
endpoint may not carry credentials (``https://user:pass@host``, ``?access_token=``).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from provtui.domain.errors import InvalidInput

MAX_ENV_NAME = 64
# An environment variable's name as admins write them (POSIX's portable form for the variables
# utilities use): upper-case letters, digits and underscores, not starting with a digit.
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
# A part of a name (between underscores) this long with a digit in it reads as generated, not named:
# a token, a key or a base32/hex secret (AKIAIOSFODNN7EXAMPLE, JBSWY3DPEHPK3PXP).
_RANDOM_PART = 16
# Query parameters that carry a credential in a URL.
_CREDENTIAL_PARAMS = frozenset(
    {
        "token",
        "access_token",
        "accesstoken",
        "auth",
        "authorization",
        "bearer",
        "key",
        "apikey",
        "api_key",
        "api-key",
        "secret",
        "client_secret",
        "password",
        "passwd",
        "pwd",
        "pass",
        "sig",
        "signature",
        "code",
    }
)


def env_name_problem(value: object) -> str | None:
    """Why ``value`` is not an environment variable's name (None when it is one); never quotes it."""
    if not isinstance(value, str) or not value:
        return "is empty"
    if len(value) > MAX_ENV_NAME:
        return f"is longer than a variable's name ({MAX_ENV_NAME} characters at most): it may be the secret itself"
    if not ENV_NAME.fullmatch(value):
        return "is not an environment variable's name (upper-case letters, digits and _, not starting with a digit)"
    if any(len(part) >= _RANDOM_PART and any(c.isdigit() for c in part) for part in value.split("_")):
        return "looks like a generated secret, not a variable's name"
    return None


def validate_env_name(field: str, value: object, holds: str) -> str:
    """``value`` when it names an environment variable; else InvalidInput naming ``field`` and what the
    variable ``holds`` — the value itself is not repeated, in case it is the secret."""
    problem = env_name_problem(value)
    if problem is not None:
        raise InvalidInput(
            field,
            f"the value given {problem}; name the environment variable that holds {holds} "
            f"(e.g. APP_SECRET), never the secret itself; the value is not shown, nor stored",
        )
    return value  # type: ignore[return-value]


def refuse_url_credentials(field: str, url: str, secret_option: str) -> None:
    """InvalidInput if ``url`` carries credentials (user info, or a credential in its query), without repeating it."""
    try:
        parts = urlsplit(url)
        has_userinfo = "@" in parts.netloc
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        raise InvalidInput(field, "is not a URL") from None
    if has_userinfo:
        raise InvalidInput(
            field,
            f"a URL may not carry credentials (user:password@): keep the secret in an environment "
            f"variable and name it with {secret_option}; the URL is not shown, nor stored",
        )
    if any(name.lower() in _CREDENTIAL_PARAMS for name, _ in query):
        raise InvalidInput(
            field,
            f"a URL may not carry credentials in its query: keep the secret in an environment "
            f"variable and name it with {secret_option}; the URL is not shown, nor stored",
        )


def shown_url(url: str) -> str:
    """``url`` for a message: as given when it cannot hold credentials, else with them left out."""
    if "@" not in url and "?" not in url:
        return repr(url)
    return "the URL given (not shown: it may hold credentials)"
