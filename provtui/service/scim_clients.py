"""The service's part for inbound SCIM clients (#20): add, list, rotate, remove, and who a token belongs to.

Super admin only (Action.MANAGE_SCIM_CLIENTS).  Adding a client also makes its source of truth, ``scim:NAME``
(kind ``scim``): what it creates is mastered there, by the rules every source follows.  Removing a client
ends its token and keeps the source, so the people it pushed still name who mastered them until an admin
gives them another master.  A token is returned once, by ``add`` and ``rotate``: the store keeps only its
digest, and the audit trail and every listing nothing of it.
"""

from __future__ import annotations

from typing import Any

from provtui.clock import utc_now_iso
from provtui.domain.errors import InvalidInput
from provtui.domain.roles import Action
from provtui.domain.scim_clients import client_of, client_of_digest, new_token, source_of, token_digest, validate_client_name
from provtui.model.schema import SCIM_CLIENTS, SOURCES
from provtui.service.part import Part


class ScimClients(Part):
    def add(self, name: str) -> dict[str, Any]:
        name = validate_client_name(name)
        token = new_token()
        with self.changes(Action.MANAGE_SCIM_CLIENTS) as change:
            if change.get(SCIM_CLIENTS, name) is not None:
                raise InvalidInput("NAME", f"a SCIM client named {name!r} already exists")
            source = source_of(name)
            at = utc_now_iso()
            client = {"name": name, "source": source, "digest": token_digest(token), "created": at, "created_by": self.access.actor}
            change.put(SCIM_CLIENTS, name, client)
            if change.get(SOURCES, source) is None:  # (a removed client's source stays: adding it again takes it back)
                change.put(SOURCES, source, {"name": source, "kind": "scim", "settings": {"client": name}, "created": at, "attributes": []})
            change.audit("scim-client.add", name, None, {"source": source})
        return {**_shown(client), "token": token}

    def list(self) -> list[dict[str, Any]]:
        self.access.authorise(None, Action.MANAGE_SCIM_CLIENTS)
        return [_shown(client) for _, client in sorted(self.store.all(SCIM_CLIENTS).items())]

    def rotate(self, name: str) -> dict[str, Any]:
        """A new token for the client; the old one stops working with this commit."""
        token = new_token()
        with self.changes(Action.MANAGE_SCIM_CLIENTS) as change:
            client = self._client(change, name)
            rotated = {**client, "digest": token_digest(token), "rotated": utc_now_iso(), "rotated_by": self.access.actor}
            change.put(SCIM_CLIENTS, client["name"], rotated)
            change.audit("scim-client.rotate", client["name"], None, {"rotated": True})
        return {**_shown(rotated), "token": token}

    def remove(self, name: str) -> dict[str, Any]:
        with self.changes(Action.MANAGE_SCIM_CLIENTS) as change:
            client = self._client(change, name)
            change.delete(SCIM_CLIENTS, client["name"])
            change.audit("scim-client.remove", client["name"], {"source": client["source"]}, None)
        return {"name": client["name"], "removed": True, "source": client["source"]}

    def client_of_token(self, token: str) -> str | None:
        """The client a bearer token belongs to (None: no client's): what the SCIM endpoint authenticates by."""
        return client_of(token, ((name, c["digest"]) for name, c in self.store.all(SCIM_CLIENTS).items()))

    def client_of_digest(self, digest: str) -> str | None:
        """The client a token's digest (``token_digest``) belongs to: the endpoint's check of a token it has seen."""
        return client_of_digest(digest, ((name, c["digest"]) for name, c in self.store.all(SCIM_CLIENTS).items()))

    @staticmethod
    def _client(change: Any, name: str) -> dict[str, Any]:
        client: dict[str, Any] | None = change.get(SCIM_CLIENTS, name)
        if client is None:
            raise InvalidInput("NAME", f"no SCIM client named {name!r} (`provtui scim-client list`)")
        return client


def _shown(client: dict[str, Any]) -> dict[str, Any]:
    """A client as listed: never its digest (nothing of the token leaves the store)."""
    return {key: value for key, value in client.items() if key != "digest"}
