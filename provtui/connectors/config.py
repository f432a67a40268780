"""From an app's configuration to its connector: the one place that reads an app record's connection.

Both the engine (a reconciler builds one connector per app) and the importer (reading one app's
accounts or groups) call :func:`connector_for`.  A configuration that cannot work as it stands
(e.g. the bearer token's environment variable is unset) raises :class:`ConfigError`; one whose record names
no secret at all (a super admin moved the app and gave no new one) raises :class:`MissingSecretReference`.
:func:`connection_fingerprint` says when a connector built from an earlier version of the record is stale.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable

from provtui.connectors.base import Connector, DownstreamError, OnCall
from provtui.connectors.scim import ScimConnector
from provtui.domain.apps import AppKind

DEFAULT_CONCURRENCY = 4  # connections to a SCIM app when its settings name none


class ConfigError(DownstreamError):
    """The app cannot be reached as configured (e.g. its token variable is unset)."""

    def __init__(self, message: str):
        super().__init__(message, status=None, retryable=False)


class MissingSecretReference(ConfigError):
    """The app record names no secret (its reference was cleared when its endpoint moved): the same for every
    process, until an admin names one.  Its message names the app and the command that fixes it."""


def connector_for(app: dict, *, on_call: OnCall | None = None, secrets: Callable[[str], str | None] | None = None) -> Connector:
    """The connector for ``app`` (an app record: its kind, connection and settings); ``on_call`` audits its calls.

    Raises MissingSecretReference for an app whose record names no token (SCIM) or bind password (LDAP)
    variable, ConfigError for a SCIM app whose token variable is unset; the rest of an LDAP app's
    configuration is checked by its connector (a DownstreamError naming what is wrong).  No message
    carries a secret: only the app's name and the variable's name.
    """
    if app["kind"] == AppKind.LDAP:
        from provtui.connectors.ldap import LdapAppConnector  # ldap3 is loaded only for LDAP apps

        ldap = dict(app.get("ldap") or {})
        if ldap.get("password_secret"):  # a secret the server holds: handed to the connector, never stored
            ldap["password"] = secrets(ldap["password_secret"]) if secrets is not None else None
            if not ldap["password"]:
                raise ConfigError(f"secret {ldap['password_secret']} (the app's bind password) is not held by this server")
        elif not ldap.get("password_env"):
            raise MissingSecretReference(f"app {app['name']} has no bind password: `provtui app update {app['name']} --password-env NAME`")
        # a connection for each call the app's concurrency lets run at once, at most four (a directory is one server)
        connections = min(4, int(app["settings"].get("concurrency") or 1))
        return LdapAppConnector(ldap, push_groups=bool(app["settings"].get("push_groups")), on_call=on_call, connections=connections)
    if app.get("token_secret"):  # a secret the server holds (``secrets``: its vault's lookup)
        token = secrets(app["token_secret"]) if secrets is not None else None
        if not token:
            raise ConfigError(f"secret {app['token_secret']} (the app's bearer token) is not held by this server")
    elif not app.get("token_env"):
        raise MissingSecretReference(f"app {app['name']} has no token: `provtui app update {app['name']} --token-env NAME`")
    else:
        token = os.environ.get(app["token_env"])
        if not token:
            raise ConfigError(f"environment variable {app['token_env']} (the app's bearer token) is not set")
    concurrency = int(app["settings"].get("concurrency") or DEFAULT_CONCURRENCY)
    return ScimConnector(app["scim_url"], token, on_call=on_call, max_connections=concurrency)


def connection_fingerprint(app: dict) -> str:
    """What :func:`connector_for` builds from, as a digest: a connector built from a record with another
    fingerprint uses an old endpoint, secret reference or setting, and must be built again.

    Names and URLs only (the secret's variable name, never its value); the app's name is in, as the
    connector's calls are audited under it.  Settings that only the engine's limits read (rate) are out.
    """
    settings = app.get("settings") or {}
    read = {
        "name": app.get("name"),
        "kind": app.get("kind"),
        "scim_url": app.get("scim_url"),
        "token_env": app.get("token_env"),
        "token_secret": app.get("token_secret"),
        "token_secret_set": app.get("token_secret_set"),  # when that secret was last set: a new value, a new connector
        "ldap": app.get("ldap"),
        "concurrency": settings.get("concurrency"),
        "push_groups": settings.get("push_groups"),
    }
    return hashlib.sha256(json.dumps(read, sort_keys=True, default=str).encode()).hexdigest()[:16]
