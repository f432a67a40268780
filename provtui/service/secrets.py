"""The service's part for secrets a provtui server holds (provtui.store.vault): set, list, delete.

Super admin only (Action.MANAGE_SECRETS).  Each change is audited by the secret's name and who changed it,
never its value.  An app uses a secret by naming it (``--token-secret NAME``): that reference is an app's
connection, which only a super admin sets, so naming a secret is the grant of it to that app.  Embedded, with
no server, there is no vault: apps name environment variables instead.
"""

from __future__ import annotations

from typing import Any

from provtui.clock import utc_now_iso
from provtui.domain.errors import InvalidInput
from provtui.domain.roles import Action
from provtui.model.schema import APPS, CONFIG, SOURCES
from provtui.service.part import Part
from provtui.service.validation import validate_name
from provtui.store.vault import SecretVault

NO_VAULT = (
    "secrets are held by a provtui server (`provtui server`; then `--server PATH`); embedded, name an "
    "environment variable instead (--token-env, --password-env, smtp.password-env)"
)
MAX_SECRET = 64 * 1024


def require_vault(vault: SecretVault | None, field: str = "secret") -> SecretVault:
    if vault is None:
        raise InvalidInput(field, NO_VAULT)
    return vault


def held_secret(vault: SecretVault | None, field: str, name: str | None) -> None:
    """Refuse a reference to a secret the server does not hold (or, embedded, to any secret)."""
    if name is not None and name not in require_vault(vault, field):
        raise InvalidInput(field, f"the server holds no secret named {name!r} (`provtui secret set {name}`)")


class Secrets(Part):
    def __init__(self, *parts: Any, vault: SecretVault | None):
        super().__init__(*parts)
        self.vault = vault

    def set_secret(self, name: str, value: str) -> dict[str, Any]:
        name = validate_name("NAME", name)
        if not isinstance(value, str) or not value:
            raise InvalidInput("value", "a secret cannot be empty")
        if len(value) > MAX_SECRET:  # any character may be in a secret (a PEM key has newlines): only its length is checked
            raise InvalidInput("value", f"too long (max {MAX_SECRET:,} characters)")
        vault = require_vault(self.vault)
        with self.changes(Action.MANAGE_SECRETS) as change:
            existed = name in vault
            at = utc_now_iso()
            change.audit("secret.set", name, {"set": True} if existed else None, {"set": True, "by": self.access.actor})
            for app in self.store.all(APPS).values():  # the apps using it: their connectors are built again
                if name in _secrets_of(app):
                    change.put(APPS, app["id"], {**app, "token_secret_set": at})
            vault.set(name, value, by=self.access.actor, at=at)  # once authorised; the audit event commits with it
        return {"name": name, "set_by": self.access.actor, "set_at": at}

    def list_secrets(self) -> list[dict[str, Any]]:
        self.access.authorise(None, Action.MANAGE_SECRETS)
        return require_vault(self.vault).entries()

    def delete_secret(self, name: str) -> dict[str, Any]:
        vault = require_vault(self.vault)
        with self.changes(Action.MANAGE_SECRETS) as change:
            if name not in vault:
                raise InvalidInput("NAME", f"no secret named {name!r}")
            users = self._users_of(name)
            if users:
                raise InvalidInput("NAME", f"secret {name} is the token or password of {', '.join(users)}: point them elsewhere first")
            change.audit("secret.delete", name, {"set": True}, None)
            vault.delete(name)
        return {"name": name, "deleted": True}

    def _users_of(self, name: str) -> list[str]:
        """What names the secret: apps (token, bind password), LDAP sources (bind password), the SMTP login."""
        apps = [f"app {app['name']}" for app in self.store.all(APPS).values() if name in _secrets_of(app)]
        sources = [
            f"source {s['name']}" for s in self.store.all(SOURCES).values() if (s.get("settings") or {}).get("password_secret") == name
        ]
        smtp = ["smtp.password-secret"] if (self.store.get(CONFIG, "smtp.password-secret") or {}).get("value") == name else []
        return sorted(apps) + sorted(sources) + smtp


def _secrets_of(app: dict[str, Any]) -> set[str]:
    """The server's secrets an app names: its bearer token, its bind password."""
    return {name for name in (app.get("token_secret"), (app.get("ldap") or {}).get("password_secret")) if name}
