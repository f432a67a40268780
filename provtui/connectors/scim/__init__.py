"""SCIM 2.0 apps: the resources (pure, :mod:`.resources`) and the connector over httpx (:mod:`.connector`).

The contract's records and errors are re-exported here for the SCIM connector's callers; their home
is :mod:`provtui.connectors.base`.
"""

from provtui.connectors.base import AmbiguousMatch, Conflict, DownstreamError, OnCall, RemoteGroup, RemoteUser
from provtui.connectors.scim.connector import MAX_MESSAGE_CHARS, MAX_RETRY_AFTER, SCIM_JSON, ScimConnector
from provtui.connectors.scim.resources import (
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE_USER,
    MAX_DEPTH,
    PATCH_OP,
    from_resource,
    group_from_resource,
    group_patch_operations,
    group_resource,
    patch_operations,
    quote_filter_value,
    to_resource,
)

__all__ = [
    "CORE_GROUP",
    "CORE_USER",
    "ENTERPRISE_USER",
    "MAX_DEPTH",
    "MAX_MESSAGE_CHARS",
    "MAX_RETRY_AFTER",
    "PATCH_OP",
    "SCIM_JSON",
    "AmbiguousMatch",
    "Conflict",
    "DownstreamError",
    "OnCall",
    "RemoteGroup",
    "RemoteUser",
    "ScimConnector",
    "from_resource",
    "group_from_resource",
    "group_patch_operations",
    "group_resource",
    "patch_operations",
    "quote_filter_value",
    "to_resource",
]
