"""A directory's CA certificates, as admins hand them over (``--ca-file``): PEM text kept with the source's or app's
settings, so the server needs no access to the admin's files, checked when given and shown by a fingerprint."""

from __future__ import annotations

import hashlib
import ssl
from typing import Any

from provtui.domain.errors import InvalidInput

MAX_CA_PEM = 1024 * 1024


def check_ca_certificates(field: str, pem: str) -> str:
    """PEM text holding at least one CA certificate that the TLS library accepts."""
    if not isinstance(pem, str) or "-----BEGIN CERTIFICATE-----" not in pem:
        raise InvalidInput(field, "is not a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)")
    if len(pem) > MAX_CA_PEM:
        raise InvalidInput(field, f"too long (max {MAX_CA_PEM:,} characters)")
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as error:
        raise InvalidInput(field, f"the certificates cannot be read: {error}") from None
    return pem


def shown_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """A source's settings as the trail and views show them: a CA bundle by its fingerprint (public, but long)."""
    if settings.get("ca_certificates"):
        digest = hashlib.sha256(str(settings["ca_certificates"]).encode()).hexdigest()[:16]
        return {**settings, "ca_certificates": f"sha256:{digest}"}
    return settings


def shown_app(app: dict[str, Any]) -> dict[str, Any]:
    """An app as admins see it: an LDAP app's CA bundle by its fingerprint."""
    return {**app, "ldap": shown_settings(app["ldap"])} if app.get("ldap") else app
