"""LDAP / Active Directory sources as admins configure them: add, update, and the settings a run connects with.

A source's bind password is never stored: a server's secret holds it (``password_secret``), or, embedded, the
environment variable ``password_env`` names where it is, read at each run.  The directory's CA travels as PEM
text (``ca_certificates``, from ``--ca-file``), so the server needs no access to the admin's files.  A changed
endpoint (uri or bind DN) is refused unless its password reference comes with it: a password never follows a
source to another server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from provtui.domain.errors import InvalidInput
from provtui.domain.roles import Action
from provtui.domain.secrets import validate_env_name
from provtui.domain.users import ATTRIBUTE_NAME
from provtui.model.schema import SOURCES
from provtui.service.ca_bundles import check_ca_certificates, shown_settings
from provtui.service.imports.groups import GroupImports
from provtui.service.secrets import NO_VAULT
from provtui.service.validation import validate_name

if TYPE_CHECKING:
    from provtui.connectors.ldap import LdapSettings

TLS_MODES = ("ldaps", "starttls", "none")
_LDAP_OPTIONS = frozenset(
    {
        "attribute_map",
        "group_filter",
        "disabled_bases",
        "page_size",
        "timeout",
        "max_clock_skew",
        "tls",
        "ca_file",
        "ca_certificates",
        "full_every_hours",
        "external_id_attribute",
    }
)
_CONNECTION = ("uri", "bind_dn")  # where the password goes: a new one drops the password reference
_PASSWORD = ("password_env", "password_secret")
_UPDATABLE = frozenset({*_CONNECTION, *_PASSWORD, "base_dn", "user_filter", "group_base", "flavor", "interval", "live", *_LDAP_OPTIONS})
_LDAP_FIELDS = frozenset(_UPDATABLE - {"interval", "full_every_hours", "live"})


def ldap_settings(settings: dict[str, Any], secrets: Callable[[str], str | None] | None = None) -> LdapSettings:
    """A source's stored settings as the connector's LdapSettings (InvalidInput naming what is wrong); ``secrets``
    looks up the bind password when a server's secret holds it (``password_secret``)."""
    from provtui.connectors.ldap import LdapSettings

    values = {k: v for k, v in settings.items() if k in _LDAP_FIELDS}
    if values.get("password_secret"):
        values["password_env"] = ""
        if secrets is not None:
            values["password"] = secrets(values["password_secret"])
    if "disabled_bases" in values:
        values["disabled_bases"] = tuple(values["disabled_bases"])
    try:
        return LdapSettings(**values)
    except (TypeError, ValueError) as error:
        text = str(error)
        field_name = next(
            (f"--{f.replace('_', '-')}" for f in ("uri", "flavor", "password_env", "page_size", "timeout", "tls") if text.startswith(f)),
            "settings",
        )
        raise InvalidInput(field_name, text) from None


class LdapSources(GroupImports):
    def add_ldap_source(
        self,
        name: str,
        *,
        uri: str,
        bind_dn: str,
        base_dn: str,
        password_env: str | None = None,
        password_secret: str | None = None,
        user_filter: str | None = None,
        group_base: str | None = None,
        flavor: str = "openldap",
        interval: int | None = None,
        live: bool | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """An LDAP/AD source (see the module docstring).

        ``interval``: run every so many minutes (the worker runs due sources).  ``live``: the worker keeps a live
        session to the directory and applies each change as it arrives (service/imports/ldap_live.py).  ``options``: attribute_map,
        group_filter, disabled_bases, page_size, timeout, max_clock_skew, tls (ldaps, starttls, none),
        ca_certificates (PEM) or ca_file (a path the server reads), external_id_attribute (see LdapSettings)
        and full_every_hours.
        """
        unknown = sorted(set(options) - _LDAP_OPTIONS)
        if unknown:
            raise InvalidInput(unknown[0], f"not an LDAP source setting (known: {', '.join(sorted(_LDAP_OPTIONS))})")
        settings = {
            "uri": uri,
            "bind_dn": bind_dn,
            "password_env": password_env,
            "password_secret": password_secret,
            "base_dn": base_dn,
            "user_filter": user_filter,
            "group_base": group_base,
            "flavor": flavor,
            "interval": interval,
            "live": live or None,
            **options,
        }
        settings = self._checked({k: v for k, v in settings.items() if v is not None})
        return self.add_source(name, "ldap", settings)

    def update_ldap_source(self, name: str, **changes: Any) -> dict[str, Any]:
        """Change a source's settings; a value of None removes an optional one.  A new uri or bind DN must come
        with its password reference (see the module docstring).  Returns the source."""
        unknown = sorted(set(changes) - _UPDATABLE)
        if unknown:
            raise InvalidInput(unknown[0], f"not an LDAP source setting (known: {', '.join(sorted(_UPDATABLE))})")
        if not changes:
            raise InvalidInput("settings", "nothing to change")
        with self.changes(Action.MANAGE_SOURCES) as tx:
            source = self._source(name, "ldap")
            before = source["settings"]
            settings = {**before, **changes}
            moved = [k for k in _CONNECTION if k in changes and changes[k] != before.get(k)]
            if any(k in changes for k in _PASSWORD):  # one reference replaces the other
                settings = {k: v for k, v in settings.items() if k not in _PASSWORD or k in changes}
            elif moved:
                raise InvalidInput(
                    "--password-secret",
                    f"a new {' and '.join(moved).replace('_', ' ')} needs its password named with it (--password-secret or "
                    "--password-env): a password never follows a source to another server",
                )
            settings = {k: v for k, v in settings.items() if v is not None}
            settings = self._checked(settings)
            updated = {**source, "settings": settings}
            tx.put(SOURCES, name, updated)
            tx.audit("source.update", name, shown_settings(before), shown_settings(settings))
        return {**updated, "settings": shown_settings(settings)}

    def _checked(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The settings as stored, once every one is checked (InvalidInput names the option)."""
        password_env, password_secret = settings.get("password_env") or None, settings.get("password_secret")
        if (password_env is None) == (password_secret is None):
            raise InvalidInput("--password-secret", "give --password-secret (a server's secret) or --password-env, one of them")
        if password_secret is not None:
            validate_name("--password-secret", password_secret)
        else:
            validate_env_name("--password-env", password_env, "the bind password")
        interval = settings.get("interval")
        if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int) or not 1 <= interval <= 525_600):
            raise InvalidInput("--interval", "must be a whole number of minutes, 1 or more")
        if settings.get("live") is not None and not isinstance(settings["live"], bool):
            raise InvalidInput("--live", "is true or false")
        if settings.get("live") is False:
            settings = {k: v for k, v in settings.items() if k != "live"}
        hours = settings.get("full_every_hours")
        if hours is not None and (isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours <= 0):
            raise InvalidInput("full_every_hours", "must be a positive number of hours")
        for key in settings.get("attribute_map") or {}:
            if not ATTRIBUTE_NAME.match(str(key)):
                raise InvalidInput("attribute_map", f"{key!r} is not an attribute name")
        tls = settings.get("tls")
        if tls is not None and tls not in TLS_MODES:
            raise InvalidInput("--tls", f"is one of {', '.join(TLS_MODES)}, not {tls!r}")
        if tls == "none" and str(settings["uri"]).lower().startswith("ldaps://"):
            raise InvalidInput("--tls", "none does not go with an ldaps:// URI")
        if settings.get("ca_certificates") is not None:
            check_ca_certificates("--ca-file", settings["ca_certificates"])
        for option in ("external_id_attribute",):
            if settings.get(option) is not None and not ATTRIBUTE_NAME.match(str(settings[option])):
                raise InvalidInput(f"--{option.replace('_', '-')}", f"{settings[option]!r} is not an attribute name")
        settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()}
        ldap_settings(settings)  # refuse what the connector would refuse, now
        if password_secret is not None:
            self.access.authorise(None, Action.MANAGE_SOURCES)  # first: who may not configure a source learns no secret's name
            if self.secrets is None:
                raise InvalidInput("--password-secret", NO_VAULT)
            if self.secrets(password_secret) is None:
                raise InvalidInput(
                    "--password-secret", f"the server holds no secret named {password_secret!r} (`provtui secret set {password_secret}`)"
                )
        return settings
