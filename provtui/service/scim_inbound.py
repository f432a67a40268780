"""The service's part for inbound SCIM (#20): what a client (an identity provider, an HR system) pushes in, as
its own source of truth ``scim:NAME``.

The endpoint (provtui.server.scim) runs each request as the client (actor ``scim:NAME``, holding the
scim-client role by its token: it may read, and push; nothing else) through these methods, one change each,
audited with the request's correlation id and settled as any change is (rules, then what to provision).

- A pushed User is a one-row import of the client's source (provtui.domain.import_plan): the same matching,
  mastering and per-attribute priorities as an HR or LDAP run.  ``active: false`` deprovisions, ``true``
  reactivates; a new user pushed inactive is created staged.  PUT replaces: an attribute the client wrote
  before and leaves out is removed (a required one is kept).
- DELETE deprovisions the person and hides them from the client (404 from then on); their accounts are
  deactivated and deleted only by each app's own retention (``delete_after_days``), never at once.  The
  client's next create of that userName brings the same person back.
- The client reads everyone (so a lookup before a create finds a person another source masters) and changes
  only what its source masters: anything else is NotAllowed (403).
- A pushed Group is a group of the client's source whose members are memberships by ``source:scim:NAME``:
  they feed rules and assignments as any membership does.  DELETE removes those memberships and hides it.
- The safeguard (provtui.service.scim_safeguard): a client deprovisioning more of its people in a short
  window than the import safeguard's threshold has the excess held for an admin.
"""

from __future__ import annotations

from typing import Any

from provtui.clock import utc_now_iso
from provtui.domain.errors import InvalidInput, NotAllowed, NotFound
from provtui.domain.import_plan import plan_import
from provtui.domain.import_rows import Intent, Row
from provtui.domain.roles import Action
from provtui.domain.scim_resources import group_resource, pushed_members, pushed_user, user_resource, with_meta
from provtui.domain.text import check_display_name
from provtui.domain.users import normalise_login
from provtui.model.schema import GROUPS, SOURCES, USERS, Reader, stored
from provtui.service.change import Change
from provtui.service.imports.groups import GroupImports, GroupOp, source_members
from provtui.service.scim_safeguard import Held, hold_if_over


class Conflict(InvalidInput):
    """A value another resource holds (a userName, a group's name): SCIM's 409 ``uniqueness``."""


class Stale(InvalidInput):
    """The resource is no longer the version the client named (If-Match): SCIM's 412."""


class ScimInbound(GroupImports):
    @property
    def source(self) -> str:
        return self.access.actor  # a client acts as its source: scim:NAME

    # -- reading -------------------------------------------------------------------------

    def user(self, user_id: str) -> dict[str, Any]:
        self.access.read()
        return self._user_resource(self.store, self._shown_user(self.store, user_id))

    def users(self, *, login: str | None = None, ids: list[str] | None = None) -> list[dict[str, Any]]:
        """The people shown to the client (all of them, or those of a login or ids), as User resources."""
        self.access.read()
        return [self._user_resource(self.store, doc) for doc in self._user_docs(login, ids)]

    def user_count_and_page(self, offset: int, limit: int | None) -> tuple[int, list[dict[str, Any]]]:
        """How many people are shown to the client, and a page of them in login order."""
        self.access.read()
        docs = self._user_docs(None, None)
        end = None if limit is None else offset + limit
        return len(docs), [self._user_resource(self.store, doc) for doc in docs[offset:end]]

    def group(self, group_id: str, *, members: bool = True) -> dict[str, Any]:
        self.access.read()
        return self._group_resource(self.store, self._shown_group(self.store, group_id), members=members)

    def groups(self, *, name: str | None = None, members: bool = True) -> list[dict[str, Any]]:
        self.access.read()
        if name is not None:
            found = [stored(self.store, GROUPS, gid) for gid in self.store.lookup(GROUPS, "name", name)]
        else:
            found = sorted(self.store.all(GROUPS).values(), key=lambda g: g["name"])
        return [self._group_resource(self.store, g, members=members) for g in found if not self._hidden(g)]

    # -- people --------------------------------------------------------------------------

    def create_user(self, resource: dict[str, Any], *, correlation: str | None = None) -> dict[str, Any] | Held:
        pushed = pushed_user(resource)
        login = _login_of(pushed.profile)
        with self.changes(Action.PUSH_SCIM, correlation=correlation) as tx:
            holder = self._holder(tx, login)
            if holder is not None and not (self._mine(holder) and self._hidden(holder)):
                who = "" if self._mine(holder) else f" (a person mastered by {holder.get('source', 'provtui')})"
                raise Conflict("userName", f"{login!r} is taken{who}")
            outcome = self._push_user(tx, pushed, holder, replace=True)
        return outcome if isinstance(outcome, Held) else self.user(outcome)

    def replace_user(
        self, user_id: str, resource: dict[str, Any], *, version: str | None = None, correlation: str | None = None
    ) -> dict[str, Any] | Held:
        """PUT, and PATCH as the endpoint applies it (the whole new resource)."""
        pushed = pushed_user(resource)
        with self.changes(Action.PUSH_SCIM, correlation=correlation) as tx:
            current = self._writable_user(tx, user_id, version)
            outcome = self._push_user(tx, pushed, current, replace=True)
        return outcome if isinstance(outcome, Held) else self.user(user_id)

    def delete_user(self, user_id: str, *, version: str | None = None, correlation: str | None = None) -> Held | None:
        with self.changes(Action.PUSH_SCIM, correlation=correlation) as tx:
            current = self._writable_user(tx, user_id, version)
            row = Row(1, current["login"], {"login": current["login"]}, Intent.DEACTIVATED, "deleted", external_id=user_id)
            outcome = self._apply_row(tx, row, current, deleting=True)
            if isinstance(outcome, Held):
                return outcome
            self._mark_deleted(tx, user_id, self.source)
        return None

    def _push_user(self, tx: Change, pushed: Any, current: dict[str, Any] | None, *, replace: bool) -> str | Held:
        profile: dict[str, Any] = dict(pushed.profile)
        if current is not None and replace:  # what the client wrote before and leaves out now is removed
            written = set((tx.get(SOURCES, self.source) or {}).get("attributes", ()))
            for attribute in written - set(profile) - {"login"}:
                profile[attribute] = None
            profile.setdefault("login", current["login"])
        if pushed.active is None:  # not said: a new person is active, anyone else stays as they are
            intent = Intent.ACTIVE if current is None or self._hidden(current) else None
        else:
            intent = Intent.ACTIVE if pushed.active else (Intent.DEACTIVATED if current is not None else Intent.STAGED)
        row = Row(1, normalise_login(profile["login"]), profile, intent, None if intent is None else intent.value)
        if current is not None:
            row.external_id = current["id"]
        outcome = self._apply_row(tx, row, current, deleting=False)
        if isinstance(outcome, Held):
            return outcome
        doc = stored(tx, USERS, outcome)
        scim = {"externalId": pushed.external_id} if pushed.external_id is not None else {}
        if pushed.kept:
            scim["kept"] = pushed.kept
        if doc.get("scim") != scim:
            tx.put(USERS, outcome, {**doc, "scim": scim})
        self._note_attributes(tx, [a for a, v in pushed.profile.items() if v is not None])
        return outcome

    def apply_held(self, tx: Change, held: dict[str, Any]) -> dict[str, Any]:
        """An approved held deprovision (provtui.service.scim_safeguard), applied now as its client asked: what
        `held approve` runs, as the admin who approves it, for the client's source."""
        current = tx.get(USERS, held["user"])
        if current is None:
            raise InvalidInput("ID", f"the person of {held['id']} was deleted since; reject it")
        row = Row(1, current["login"], {"login": current["login"]}, Intent.DEACTIVATED, "inactive", external_id=current["id"])
        deleting = held["operation"] == "delete"
        self._apply_row(tx, row, current, deleting=deleting, source=held["source"])
        if deleting:
            self._mark_deleted(tx, current["id"], held["source"])
        return {"held": held["id"], "state": "approved", "user": current["login"], "operation": held["operation"]}

    def _mark_deleted(self, tx: Change, user_id: str, source: str) -> None:
        doc = stored(tx, USERS, user_id)
        tx.put(USERS, user_id, {**doc, "scim": {**(doc.get("scim") or {}), "deleted": utc_now_iso()}})
        tx.audit("scim.delete-user", doc["login"], None, {"source": source, "state": doc["state"]})

    def _apply_row(self, tx: Change, row: Row, current: dict[str, Any] | None, *, deleting: bool, source: str | None = None) -> str | Held:
        """One row planned as an import of the client's source and applied in ``tx``; the person's id.  With
        ``source`` (an approval), for that client's source and past the safeguard."""
        existing = [u for u in (current, self._holder(tx, row.login)) if u is not None]
        identities = {current["id"]: current["login"]} if current is not None else {}
        plan = plan_import([row], existing, source=source or self.source, priorities=self.priorities(), identities=identities)
        if plan.rejected:
            rejection = plan.rejected[0]
            field = rejection.column or "userName"
            if "mastered by" in rejection.reason:
                raise NotAllowed(f"{self.source} may not change this person: {rejection.reason}")
            if "another" in rejection.reason or "also matched" in rejection.reason:
                raise Conflict("userName", rejection.reason)
            raise InvalidInput(_scim_name(field), rejection.reason)
        held = None if source is not None else hold_if_over(self, tx, plan, operation="delete" if deleting else "deactivate")
        if held is not None:
            return held
        ids = self.apply_actions(tx, plan, utc_now_iso())
        if ids:
            return ids[0]
        if current is not None:
            return str(current["id"])
        raise InvalidInput("active", "a person pushed inactive who is not here yet is not created")  # (a staged create is planned)

    def _note_attributes(self, tx: Change, attributes: list[str]) -> None:
        source = tx.get(SOURCES, self.source)
        if source is not None and not set(attributes) <= set(source.get("attributes", ())):
            tx.put(SOURCES, self.source, {**source, "attributes": sorted(set(source.get("attributes", ())) | set(attributes))})

    # -- groups --------------------------------------------------------------------------

    def create_group(self, resource: dict[str, Any], *, correlation: str | None = None) -> dict[str, Any]:
        name = check_display_name("displayName", str(resource.get("displayName") or ""))
        members = pushed_members(resource)
        with self.changes(Action.PUSH_SCIM, correlation=correlation) as tx:
            holder = next((stored(tx, GROUPS, gid) for gid in tx.lookup(GROUPS, "name", name)), None)
            if holder is not None and not (self._mine(holder) and self._hidden(holder)):
                raise Conflict("displayName", f"a group named {name!r} exists")
            group_id = self._push_group(tx, holder, name, members, resource.get("externalId"))
        return self.group(group_id)

    def replace_group(
        self, group_id: str, resource: dict[str, Any], *, version: str | None = None, correlation: str | None = None
    ) -> dict[str, Any]:
        name = check_display_name("displayName", str(resource.get("displayName") or ""))
        members = pushed_members(resource)
        with self.changes(Action.PUSH_SCIM, correlation=correlation) as tx:
            current = self._writable_group(tx, group_id, version)
            if name != current["name"] and tx.lookup(GROUPS, "name", name):
                raise Conflict("displayName", f"a group named {name!r} exists")
            self._push_group(tx, current, name, members, resource.get("externalId"))
        return self.group(group_id)

    def delete_group(self, group_id: str, *, version: str | None = None, correlation: str | None = None) -> None:
        with self.changes(Action.PUSH_SCIM, correlation=correlation) as tx:
            current = self._writable_group(tx, group_id, version)
            pushed = source_members(tx, group_id, self._via)
            op = GroupOp("removed", "", current["name"], group_id, remove=sorted(pushed), user_ids=pushed)
            self._apply_groups(tx, self.source, [op])

    def _push_group(self, tx: Change, current: dict[str, Any] | None, name: str, members: list[str], external_id: Any) -> str:
        logins = {}
        for user_id in members:
            user = tx.get(USERS, user_id)
            if user is None:
                raise InvalidInput("members", f"no user with id {user_id!r}")
            logins[user["login"]] = user_id
        pushed = source_members(tx, current["id"], self._via) if current is not None else {}
        add, remove = sorted(logins.keys() - pushed.keys()), sorted(pushed.keys() - logins.keys())
        ref = {"externalId": str(external_id)} if external_id not in (None, "") else {}
        if current is None:
            op = GroupOp("create", "", name, add=add, ref=ref, user_ids=logins)
        else:
            changed = current["name"] != name or current.get("source_ref") != ref or "removed_from_source" in current
            rename = current["name"] if current["name"] != name else None
            op = GroupOp("update", "", name, current["id"], current.get("description", ""), ref, add, remove, rename, changed)
            op.user_ids = {**pushed, **logins}
        self._apply_groups(tx, self.source, [op])
        assert op.group_id is not None
        return op.group_id

    # -- what the client may see and change ------------------------------------------------

    @property
    def _via(self) -> str:
        return f"source:{self.source}"

    def _mine(self, doc: dict[str, Any]) -> bool:
        return doc.get("source") == self.source

    def _hidden(self, doc: dict[str, Any]) -> bool:
        """Deleted by this client (a person or a group): no longer shown to it."""
        return self._mine(doc) and bool((doc.get("scim") or {}).get("deleted") or doc.get("removed_from_source"))

    def _holder(self, reader: Reader, login: str) -> dict[str, Any] | None:
        return next((stored(reader, USERS, uid) for uid in reader.lookup(USERS, "login", normalise_login(login))), None)

    def _user_docs(self, login: str | None, ids: list[str] | None) -> list[dict[str, Any]]:
        if login is not None:
            docs = [d for d in [self._holder(self.store, login)] if d is not None]
        elif ids is not None:
            docs = [d for d in (self.store.get(USERS, i) for i in dict.fromkeys(ids)) if d is not None]
        else:
            docs = sorted(self.store.all(USERS).values(), key=lambda d: d["login"])
        return [d for d in docs if not self._hidden(d) and d["state"] != "deleted"]

    def _shown_user(self, reader: Reader, user_id: str) -> dict[str, Any]:
        doc = reader.get(USERS, user_id)
        if doc is None or self._hidden(doc) or doc["state"] == "deleted":
            raise NotFound("user", user_id)
        return doc

    def _shown_group(self, reader: Reader, group_id: str) -> dict[str, Any]:
        doc = reader.get(GROUPS, group_id)
        if doc is None or self._hidden(doc):
            raise NotFound("group", group_id)
        return doc

    def _writable_user(self, tx: Change, user_id: str, version: str | None) -> dict[str, Any]:
        doc = self._shown_user(tx, user_id)
        if version is not None:
            self._check_version(version, self._user_resource(tx, doc))
        if not self._mine(doc):  # (per-attribute priorities may still let it write some: the plan decides)
            if not self.priorities():
                raise NotAllowed(f"{self.source} may not change {doc['login']}: mastered by {doc.get('source', 'provtui')}")
        return doc

    def _writable_group(self, tx: Change, group_id: str, version: str | None) -> dict[str, Any]:
        doc = self._shown_group(tx, group_id)
        if version is not None:
            self._check_version(version, self._group_resource(tx, doc, members=True))
        if not self._mine(doc):
            raise NotAllowed(f"{self.source} may not change group {doc['name']}: it is {doc.get('source') or 'provtui'}'s")
        return doc

    @staticmethod
    def _check_version(version: str, resource: dict[str, Any]) -> None:
        if version != "*" and version != resource["meta"]["version"]:
            raise Stale("If-Match", f"the resource is at version {resource['meta']['version']}, not {version}")

    def _user_resource(self, reader: Reader, doc: dict[str, Any]) -> dict[str, Any]:
        scim = (doc.get("scim") or {}) if self._mine(doc) else {}
        groups = self.directory.groups_of(doc["id"], reader).items()
        modified = doc.get("state_changed") or doc["created"]
        return with_meta(user_resource(doc, groups, scim.get("externalId"), scim.get("kept")), "User", doc["created"], modified)

    def _group_resource(self, reader: Reader, doc: dict[str, Any], *, members: bool) -> dict[str, Any]:
        external = (doc.get("source_ref") or {}).get("externalId") if self._mine(doc) else None
        if self._mine(doc):
            shown = [(uid, login) for login, uid in source_members(reader, doc["id"], self._via).items()]
        else:
            shown = [(uid, stored(reader, USERS, uid)["login"]) for uid in self.directory.members_of(doc["id"], reader)]
        created = doc.get("created") or ""
        resource = with_meta(group_resource(doc, shown, external), "Group", created, created)
        if not members:  # (read without its members: the version is still the whole group's)
            resource.pop("members")
        return resource


def _login_of(profile: dict[str, Any]) -> str:
    login = profile.get("login")
    if not login:
        raise InvalidInput("userName", "is required")
    return str(login)


_SCIM_NAMES = {"login": "userName", "email": "emails", "firstName": "name.givenName", "lastName": "name.familyName"}


def _scim_name(attribute: str) -> str:
    """The SCIM attribute a profile attribute came from (for an error naming it)."""
    return _SCIM_NAMES.get(attribute, attribute)
