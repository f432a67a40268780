"""Groups a source supplies (LDAP groups, an app's groups): planned against the store, applied in the run's change."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provtui.clock import utc_now_iso
from provtui.ids import new_id
from provtui.model.schema import GROUPS, MEMBERS, USERS, Reader, group_subject, member_key, stored

if TYPE_CHECKING:
    from provtui.connectors.ldap import LdapGroup
    from provtui.service.change import Change
from provtui.service.imports.common import ImportBase

_GROUP_NAME_BAD = re.compile(r"[^A-Za-z0-9 ._-]+")


class DnIndex:
    """DN -> login: DNs as the server spells them first (a dict lookup), normalised ones when that misses."""

    def __init__(self) -> None:
        self.exact: dict[str, str] = {}
        self._normalised: dict[str, str] | None = None

    def add(self, dn: str, login: str) -> None:
        self.exact[dn] = login
        if self._normalised is not None:
            self._normalised[_normalise_dn(dn)] = login

    def get(self, dn: str) -> str | None:
        login = self.exact.get(dn)
        if login is None:
            if self._normalised is None:
                self._normalised = {_normalise_dn(d): v for d, v in self.exact.items()}
            login = self._normalised.get(_normalise_dn(dn))
        return login


def _normalise_dn(dn: str) -> str:
    from provtui.connectors.ldap import normalise_dn

    return normalise_dn(dn)


def _flatten_groups(groups: list[LdapGroup], index: DnIndex) -> dict[str, set[str]]:
    """normalised group DN -> member logins, members of member groups included (cycles are fine)."""
    from provtui.connectors.ldap import normalise_dn

    group_keys = {normalise_dn(g.dn) for g in groups}
    direct: dict[str, tuple[set[str], list[str]]] = {}
    for group in groups:
        logins: set[str] = set()
        subgroups: list[str] = []
        for dn in group.member_dns:
            login = index.get(dn)
            if login is not None:
                logins.add(login)
            else:
                key = normalise_dn(dn)
                if key in group_keys:
                    subgroups.append(key)
        direct[normalise_dn(group.dn)] = (logins, subgroups)
    flat: dict[str, set[str]] = {}
    for key in direct:
        seen, stack, members = {key}, [key], set()
        while stack:
            logins, subgroups = direct[stack.pop()]
            members |= logins
            for sub in subgroups:
                if sub not in seen and sub in direct:
                    seen.add(sub)
                    stack.append(sub)
        flat[key] = members
    return flat


def source_members(reader: Reader, group_id: str, via: str) -> dict[str, str]:
    """login -> user id of the group's members by ``via``."""
    members: dict[str, str] = {}
    for key in reader.lookup(MEMBERS, "group", group_id):
        doc = reader.get(MEMBERS, key)
        if doc and doc.get("via") == via:
            user = reader.get(USERS, doc["user"])
            if user is not None:
                members[user["login"]] = doc["user"]
    return members


@dataclass
class GroupOp:
    """One source group's change.  action: create, update, unchanged, removed (gone from the directory), skipped."""

    action: str
    dn: str
    name: str
    group_id: str | None = None
    description: str = ""
    ref: dict[str, Any] = field(default_factory=dict)
    add: list[str] = field(default_factory=list)  # logins
    remove: list[str] = field(default_factory=list)
    rename: str | None = None  # the old name, when renamed
    changed: bool = True  # update: the group doc itself changes
    reason: str = ""
    user_ids: dict[str, str] = field(default_factory=dict)  # login -> user id ("" : created by this import)

    def as_dict(self) -> dict[str, Any]:
        out = {"action": self.action, "group": self.name, "dn": self.dn, "add": self.add, "remove": self.remove}
        if self.rename:
            out["renamed_from"] = self.rename
        if self.reason:
            out["reason"] = self.reason
        return out


def group_counts(ops: list[GroupOp]) -> dict[str, Any]:
    counts = {"created": 0, "updated": 0, "unchanged": 0, "removed": 0, "skipped": 0, "members_added": 0, "members_removed": 0}
    for op in ops:
        if op.action == "update" and not op.changed:
            counts["unchanged" if not (op.add or op.remove) else "updated"] += 1
        else:
            counts[
                {"create": "created", "update": "updated", "unchanged": "unchanged", "removed": "removed", "skipped": "skipped"}[op.action]
            ] += 1
        counts["members_added"] += len(op.add)
        counts["members_removed"] += len(op.remove)
    return counts


class GroupImports(ImportBase):
    def _plan_groups(self, reader: Reader, source: str, groups: list[LdapGroup], index: DnIndex, accepted: set[str]) -> list[GroupOp]:
        """What to do to this source's provtui groups so their source membership is the directory's.

        ``reader``: the store (dry run) or the transaction applying the import (which sees its new users).
        """
        from provtui.connectors.ldap import normalise_dn

        via = f"source:{source}"
        existing = [g for g in self.store.all(GROUPS).values() if g.get("kind") == via]
        by_uuid = {g["source_ref"]["uuid"]: g for g in existing if (g.get("source_ref") or {}).get("uuid")}
        by_dn = {normalise_dn(g["source_ref"]["dn"]): g for g in existing if (g.get("source_ref") or {}).get("dn")}
        members = _flatten_groups(groups, index)
        eligible_cache: dict[str, str | None] = {}

        def user_for(login: str) -> str | None:
            """The user id (or "" for a user this import creates) a member login stands for, if it may be one."""
            if login in eligible_cache:
                return eligible_cache[login]
            ids = reader.lookup(USERS, "login", login)
            user_id = next(iter(ids)) if ids else None
            result: str | None = None
            if user_id is not None:
                user = stored(reader, USERS, user_id)
                if login in accepted or user.get("source") == source:
                    result = user_id
            elif login in accepted:
                result = ""  # created by this import (dry run: not yet)
            eligible_cache[login] = result
            return result

        ops: list[GroupOp] = []
        seen_ids: set[str] = set()
        claimed: set[str] = set()
        for group in groups:
            key = normalise_dn(group.dn)
            current = (by_uuid.get(group.uuid) if group.uuid else None) or by_dn.get(key)
            if current is not None and current["id"] in seen_ids:
                current = None  # two entries claim one group (a copy of a uuid?): the second is a new group
            if current is not None:
                seen_ids.add(current["id"])
            name = self._group_name(reader, group.name, source, current["id"] if current else None, claimed)
            if name is None:
                ops.append(GroupOp("skipped", group.dn, group.name, reason=f"no free name for {group.name!r}"))
                continue
            claimed.add(name.lower())
            wanted = {login for login in members.get(key, ()) if user_for(login) is not None}
            have = source_members(reader, current["id"], via) if current else {}
            ref = {"dn": group.dn, "uuid": group.uuid}
            op = GroupOp(
                "create" if current is None else "update",
                group.dn,
                name,
                group_id=current["id"] if current else None,
                description=group.description or "",
                ref=ref,
                add=sorted(wanted - set(have)),
                remove=sorted(set(have) - wanted),
            )
            if current is not None:
                op.rename = current["name"] if current["name"] != name else None
                op.changed = (
                    op.rename is not None
                    or current.get("description", "") != op.description
                    or current.get("source_ref") != ref
                    or bool(current.get("removed_from_source"))
                )
                if not (op.changed or op.add or op.remove):
                    op.action = "unchanged"
            op.user_ids = {login: user_for(login) or "" for login in op.add}
            op.user_ids.update({login: have[login] for login in op.remove})
            ops.append(op)
        for stale in existing:
            if stale["id"] in seen_ids:
                continue
            have = source_members(reader, stale["id"], via)
            if not have and stale.get("removed_from_source"):
                continue
            op = GroupOp("removed", stale["source_ref"]["dn"], stale["name"], group_id=stale["id"], remove=sorted(have))
            op.user_ids = dict(have)
            ops.append(op)
        return ops

    @staticmethod
    def _group_name(reader: Reader, cn: str, source: str, group_id: str | None, claimed: set[str]) -> str | None:
        base = _GROUP_NAME_BAD.sub("-", unicodedata.normalize("NFKD", cn).encode("ascii", "ignore").decode()).strip(" -")[:100]
        base = base or "group"
        for candidate in (base, f"{base[: 100 - len(source) - 3]} ({source})"):
            if candidate.lower() in claimed:
                continue
            holders = reader.lookup(GROUPS, "name", candidate)
            if not holders or holders == {group_id}:
                return candidate
        return None

    def _apply_groups(self, tx: Change, source: str, ops: list[GroupOp], *, via: str | None = None) -> dict[str, Any]:
        """Write the group changes.  A membership change queues (app, user) for the apps assigned to
        the group (the entitlements it changes), the group's pushed copies, and tells the service
        (note_user_change) so rules reading the group run again and what they change is queued.

        ``via`` is the groups' kind and membership path: ``source:<NAME>`` (default) or ``app:<APP>``."""
        directory = self.directory
        via = via or f"source:{source}"
        now = utc_now_iso()
        for op in ops:
            if op.action in ("skipped", "unchanged"):
                continue
            if op.action == "create":
                op.group_id = new_id()
            group_id = op.group_id
            assert group_id is not None, "every planned group but a created one is a stored group"
            if op.action == "create":
                doc = {
                    "id": group_id,
                    "name": op.name,
                    "description": op.description,
                    "kind": via,
                    "source": source,
                    "source_ref": op.ref,
                    "created": now,
                }
                tx.put(GROUPS, group_id, doc)
                tx.audit("group.create", op.name, None, {"description": op.description, "source": source, "dn": op.dn})
            elif op.action == "update" and op.changed:
                old = stored(tx, GROUPS, group_id)
                doc = {**old, "name": op.name, "description": op.description, "source_ref": op.ref}
                doc.pop("removed_from_source", None)
                tx.put(GROUPS, group_id, doc)
                tx.audit(
                    "group.update",
                    op.name,
                    {"name": old["name"], "description": old.get("description")},
                    {"name": op.name, "description": op.description, "source": source},
                )
            elif op.action == "removed":
                old = stored(tx, GROUPS, group_id)
                tx.put(GROUPS, group_id, {**old, "removed_from_source": now})
                tx.audit("group.source-removed", op.name, {"dn": op.dn}, {"members_removed": len(op.remove)})
            apps = sorted(directory.apps_assigned_to(group_subject(group_id), tx)) if op.action != "create" else []
            names = {op.name} | ({op.rename} if op.rename is not None else set())
            for login in op.add:
                user_id = op.user_ids.get(login) or next(iter(tx.lookup(USERS, "login", login)), None)
                if user_id is None:
                    continue  # its row was planned but not applied (cannot happen within one transaction)
                tx.put(MEMBERS, member_key(group_id, user_id, via), {"group": group_id, "user": user_id, "via": via})
                tx.mark_dirty((app_id, user_id) for app_id in apps)
                tx.note_user_change(user_id, groups=names)  # rules reading the group look again
            for login in op.remove:
                user_id = op.user_ids[login]
                tx.delete(MEMBERS, member_key(group_id, user_id, via))
                tx.mark_dirty((app_id, user_id) for app_id in apps)
                tx.note_user_change(user_id, groups=names)
            if op.rename:  # rules reading either name look again at every member
                for user_id in directory.members_of(group_id, tx):
                    tx.note_user_change(user_id, groups=names)
            if op.add or op.remove:
                tx.audit("group.source-sync", op.name, None, {"source": source, "added": op.add, "removed": op.remove})
            if op.add or op.remove or op.rename:
                tx.mark_groups(group_id)
        return group_counts(ops)
