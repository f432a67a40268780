"""Applications: their kinds and what each can do downstream."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from provtui.domain import numbers
from provtui.domain.errors import InvalidInput
from provtui.domain.secrets import refuse_url_credentials, shown_url, validate_env_name
from provtui.domain.text import MAX_DN, MAX_ENV_NAME, MAX_URL, check_text


class AppKind(StrEnum):
    SCIM = "scim"
    LDAP = "ldap"  # an LDAP or Active Directory directory as a downstream target
    MANUAL = "manual"


class Capability(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"
    DELETE = "delete"
    PUSH_GROUPS = "push_groups"
    SYNC_PASSWORD = "sync_password"
    IMPORT = "import"


DEFAULT_CAPABILITIES: dict[AppKind, tuple[Capability, ...]] = {
    AppKind.SCIM: (Capability.CREATE, Capability.UPDATE, Capability.DEACTIVATE, Capability.REACTIVATE, Capability.IMPORT),
    AppKind.LDAP: (Capability.CREATE, Capability.UPDATE, Capability.DEACTIVATE, Capability.REACTIVATE),
    # A manual app has no API: its "calls" are tasks for an admin.
    AppKind.MANUAL: (Capability.CREATE, Capability.DEACTIVATE, Capability.REACTIVATE),
}

DEFAULT_SETTINGS = {
    "concurrency": 4,  # calls in flight at once
    "rate": None,  # calls per second, None = unlimited
    "push_groups": False,
    "sync_password": False,
    "delete_after_days": None,  # None: deactivate only, never delete
}

# Settings an app has only once they are set (absent: not tracked).
OPTIONAL_SETTINGS = (
    "licenses",  # licenses bought: `report apps` compares the accounts active downstream with it
)


def validate_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """A checked copy of an app's settings; raises InvalidInput naming the option."""
    clean = dict(settings)
    unknown = set(clean) - set(DEFAULT_SETTINGS) - set(OPTIONAL_SETTINGS)
    if unknown:
        raise InvalidInput(f"--{sorted(unknown)[0].replace('_', '-')}", "unknown app setting")
    numbers.CONCURRENCY.check("--concurrency", clean["concurrency"])
    if clean["rate"] is not None:
        numbers.RATE.check("--rate", clean["rate"])
    if clean["delete_after_days"] is not None:
        numbers.RETENTION_DAYS.check("--delete-after-days", clean["delete_after_days"])
    if clean.get("licenses") is None:
        clean.pop("licenses", None)
    else:
        numbers.LICENSES.check("--licenses", clean["licenses"])
    clean["push_groups"] = bool(clean["push_groups"])
    clean["sync_password"] = bool(clean["sync_password"])
    return clean


LDAP_FLAVORS = ("openldap", "ad")
# Optional keys of app["ldap"] (see provtui.connectors.ldap_app); absent means the flavour's default.
LDAP_OPTIONS = (
    "groups_dn",
    "external_id_attribute",
    "naming_attribute",
    "uuid_attribute",
    "user_filter",
    "group_filter",
    "user_object_classes",
    "group_object_classes",
    "empty_member",
    "timeout",
    "tls",
    "ca_file",
    "ca_certificates",
)


def validate_ldap_target(
    uri: str,
    bind_dn: str,
    password_env: str | None,
    base_dn: str,
    *,
    password_secret: str | None = None,
    flavor: str = "openldap",
    rdn_attr: str | None = None,
    disable_method: str | None = None,
    password_named: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """An LDAP/AD app's connection: checked, with defaults per flavour; the password stays in the environment.
    ``password_named=False``: an app whose new endpoint dropped its password reference (none is required)."""
    unknown = sorted(set(options) - set(LDAP_OPTIONS))
    if unknown:
        raise InvalidInput(f"--{unknown[0].replace('_', '-')}", "is not an LDAP app option")
    options = {k: v for k, v in options.items() if v not in (None, "", [], ())}
    if "=" not in options.get("groups_dn", "="):
        raise InvalidInput("--groups-dn", f"{options['groups_dn']!r} is not a DN")
    if options.get("tls") not in (None, "ldaps", "starttls", "none"):
        raise InvalidInput("--tls", "is ldaps, starttls or none")
    if "timeout" in options:
        numbers.LDAP_TIMEOUT.check("--timeout", options["timeout"])
    for option, value, limit in (
        ("--ldap-uri", uri, MAX_URL),
        ("--bind-dn", bind_dn, MAX_DN),
        ("--base-dn", base_dn, MAX_DN),
        ("--password-env", password_env, MAX_ENV_NAME),
        ("--rdn-attr", rdn_attr, MAX_ENV_NAME),
        ("--disable-method", disable_method, MAX_DN),
        *((f"--{k.replace('_', '-')}", v, MAX_DN) for k, v in options.items() if isinstance(v, str) and k != "ca_certificates"),
    ):
        if isinstance(value, str):
            check_text(option, value, limit)
    validate_ldap_uri(uri)
    for option, value in (("--bind-dn", bind_dn), ("--base-dn", base_dn)):
        validate_dn(option, value)
    if password_env and password_secret:
        raise InvalidInput("--password-secret", "give --password-env or --password-secret, not both")
    if not password_secret and (password_named or password_env):
        validate_env_name("--password-env", password_env, "the bind password")
    if flavor not in LDAP_FLAVORS:
        raise InvalidInput("--flavor", "is openldap or ad")
    if flavor == "ad" and not sends_encrypted(uri, options.get("tls")) and not on_loopback(uri):
        # every AD account is created with a password (unicodePwd), which AD takes over an encrypted connection only
        raise InvalidInput("--tls", f"an AD app over plain {shown_url(uri)} would send passwords in clear: use ldaps:// or --tls starttls")
    rdn_attr = rdn_attr or ("cn" if flavor == "ad" else "uid")
    if flavor == "ad":
        disable_method = disable_method or "uac"  # the ACCOUNTDISABLE bit of userAccountControl
    elif (
        not disable_method
        or not disable_method.startswith(("ou:", "attr:"))
        or (disable_method.startswith("attr:") and "=" not in disable_method)
    ):
        raise InvalidInput("--disable-method", "OpenLDAP needs ou:DN (move disabled entries there) or attr:NAME=VALUE")
    return {
        "uri": uri,
        "bind_dn": bind_dn,
        "password_env": password_env or None,
        **({"password_secret": password_secret} if password_secret else {}),
        "base_dn": base_dn,
        "flavor": flavor,
        "rdn_attr": rdn_attr,
        "disable_method": disable_method,
        **options,
    }


def validate_scim_url(url: object) -> str:
    """A SCIM base URL: http(s), with no credentials in it (the token is named by --token-env)."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidInput("--scim-url", f"{shown_url(str(url))} is not an http(s) URL")
    refuse_url_credentials("--scim-url", url, "--token-env")
    return url


def validate_ldap_uri(uri: object) -> str:
    """An LDAP app's URI: ldap:// or ldaps://, with no credentials in it (--bind-dn and --password-env say who binds)."""
    if not isinstance(uri, str) or not uri.startswith(("ldap://", "ldaps://")):
        raise InvalidInput("--ldap-uri", f"{shown_url(str(uri))} is not an ldap:// or ldaps:// URI")
    refuse_url_credentials("--ldap-uri", uri, "--bind-dn and --password-env")
    return uri


def sends_encrypted(uri: str, tls: str | None) -> bool:
    """Whether a connection to ``uri`` with ``tls`` (ldaps, starttls, none; None: as the URI says) is encrypted."""
    return tls in ("ldaps", "starttls") or (tls is None and uri.lower().startswith("ldaps://"))


def on_loopback(uri: str) -> bool:
    """Whether the URI's host is this machine (where plain LDAP crosses no network: as smtp.host allows)."""
    netloc = uri.split("://", 1)[-1].split("/", 1)[0].lower()
    host = netloc[1:].split("]", 1)[0] if netloc.startswith("[") else netloc.rsplit(":", 1)[0]
    return host in ("localhost", "::1") or host.startswith("127.")


def validate_dn(option: str, value: object) -> str:
    if not isinstance(value, str) or "=" not in value:
        raise InvalidInput(option, f"{value!r} is not a DN")
    return value
