"""From an app's configuration to its connector: the one place that reads an app record's connection.

Both the engine (a reconciler builds one connector per app) and the importer (reading one app's
accounts or groups) call :func:`connector_for`.  A configuration that cannot work as it stands
(e.g. the bearer token's environment variable is unset) raises :class:`ConfigError`.
"""

from __future__ import annotations

import os

from provtui.connectors.base import Connector, DownstreamError, OnCall
from provtui.connectors.scim import ScimConnector
from provtui.domain.apps import AppKind

DEFAULT_CONCURRENCY = 4  # connections to a SCIM app when its settings name none


class ConfigError(DownstreamError):
    """The app cannot be reached as configured (e.g. its token variable is unset)."""

    def __init__(self, message: str):
        super().__init__(message, status=None, retryable=False)


def connector_for(app: dict, *, on_call: OnCall | None = None) -> Connector:
    """The connector for ``app`` (an app record: its kind, connection and settings); ``on_call`` audits its calls.

    Raises ConfigError for a SCIM app whose token variable is unset; an LDAP app's configuration is
    checked by its connector (a DownstreamError naming what is wrong).
    """
    if app["kind"] == AppKind.LDAP:
        from provtui.connectors.ldap import LdapAppConnector  # ldap3 is loaded only for LDAP apps

        return LdapAppConnector(app["ldap"], push_groups=bool(app["settings"].get("push_groups")), on_call=on_call)
    token = os.environ.get(app["token_env"] or "")
    if not token:
        raise ConfigError(f"environment variable {app['token_env']} (the app's bearer token) is not set")
    concurrency = int(app["settings"].get("concurrency") or DEFAULT_CONCURRENCY)
    return ScimConnector(app["scim_url"], token, on_call=on_call, max_connections=concurrency)
