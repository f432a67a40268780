"""A live session to Active Directory: DirSync (LDAP_SERVER_DIRSYNC, ldap3's ``extend.microsoft.dir_sync``), polled.

DirSync hands back, for a naming context, the objects changed since a cookie — deletions among them, as
tombstones (``isDeleted``) — and a new cookie; the cookie names the domain controller's database (its
invocationID and USN), so a restored or another DC is read from the start rather than trusted.  A changed
object comes with its changed attributes only, so each is read again whole by its objectGUID (``<GUID=...>``),
with the source's user filter: found under the base, it is a person's new state; a group (the group filter) marks
the groups changed (the service reads them whole); neither — a tombstone, or an entry moved out of the base or
the filter — is a person gone.  The first session (no cookie) takes the current cookie, then reads everyone: a
full read (``present_done``), as a syncrepl refresh is.  Each round's changes are one :class:`LiveBatch`.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from typing import Any

from provtui.connectors.ldap.entries import dn_within, first_raw, format_uuid, normalise_dn
from provtui.connectors.ldap.session import Session
from provtui.connectors.ldap.settings import MEMBER_ATTRIBUTES, PRIMARY_GROUP_ID, LdapSettings
from provtui.connectors.ldap.syncrepl import LiveBatch

POLL_SECONDS = 0.5  # a round that finds nothing costs the DC one empty search: twice a second keeps p95 under 1 s
_EXTENDED_DN = re.compile(r"^<GUID=([0-9a-fA-F-]{36})>;(?:<SID=[^>]*>;)?(.*)$")


def naming_context(base_dn: str) -> str:
    """The domain a DN lies in (its DC= components): DirSync reads a whole naming context, never a subtree."""
    parts = [part.strip() for part in re.split(r"(?<!\\),", base_dn) if part.strip().lower().startswith("dc=")]
    return ",".join(parts) or base_dn


def extended_dn(value: str) -> tuple[str | None, str]:
    """(objectGUID, DN) of an extended DN (``<GUID=...>;<SID=...>;CN=...``); (None, value) for a plain one."""
    found = _EXTENDED_DN.match(value)
    return (found.group(1).lower(), found.group(2)) if found else (None, value)


class DirSyncStream:
    """``run(deliver, stopped)``: a DirSync round every ``POLL_SECONDS`` until ``stopped()`` or a failure."""

    stream = "dirsync"

    def __init__(self, settings: LdapSettings, *, cookie: str | None) -> None:
        self.settings = settings
        self.cookie = cookie

    def run(self, deliver: Callable[[LiveBatch], None], stopped: Callable[[], bool], on_live: Callable[[], None] = lambda: None) -> None:
        from provtui.connectors.ldap.source import user_attributes

        settings = self.settings
        attributes = user_attributes(settings)
        context = naming_context(settings.base_dn)
        # What DirSync is asked for decides what it reports: an object whose asked-for attributes changed, matched
        # against those attributes (Samba's and AD's) — so a plain class filter, and every attribute a run reads.
        watched = "(|(objectClass=user)(objectClass=group))"
        asked = list(dict.fromkeys([*attributes, *MEMBER_ATTRIBUTES, PRIMARY_GROUP_ID, "cn", "description", "isDeleted"]))
        with Session(settings) as session:
            cookie = base64.b64decode(self.cookie) if self.cookie else None
            if cookie is None:
                cookie = self._everyone(session, context, watched, attributes, deliver)
            on_live()
            while not stopped():
                started = time.monotonic()
                changed: list[dict[str, Any]] = []
                more = True
                while more:
                    entries, cookie, more = session.dir_sync(context, watched, asked, cookie)
                    changed += entries
                if changed:
                    batch = self._batch(session, changed, attributes)
                    batch.cookie = base64.b64encode(cookie).decode()
                    deliver(batch)
                    self.cookie = batch.cookie
                time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - started)))

    def _everyone(self, session: Session, context: str, watched: str, attributes: list[str], deliver: Callable[[LiveBatch], None]) -> bytes:
        """The first session: the cookie of now, then everyone read as a full run reads them (changes made between
        are read again by the next round: applying a state twice changes nothing)."""
        cookie: bytes | None = None
        more = True
        while more:
            _, cookie, more = session.dir_sync(context, watched, ["objectGUID"], cookie)
        assert cookie is not None
        settings = self.settings
        batch = LiveBatch(self.stream, full=True, present_done=True, refreshing=True, received=time.time(), groups_changed=True)
        for dn, raw in session.paged_search(settings.base_dn, settings.effective_user_filter, attributes):
            batch.changed.append((dn, raw))
            uuid = format_uuid(first_raw(raw, settings.uuid_attribute))
            if uuid:
                batch.presented.add(uuid.lower())
        batch.cookie = base64.b64encode(cookie).decode()
        deliver(batch)
        self.cookie = batch.cookie
        return cookie

    def _batch(self, session: Session, changed: list[dict[str, Any]], attributes: list[str]) -> LiveBatch:
        settings = self.settings
        batch = LiveBatch(self.stream, received=time.time())
        for entry in changed:
            guid, _ = extended_dn(str(entry.get("dn") or ""))
            raw = entry.get("raw_attributes") or {}
            guid = guid or format_uuid(first_raw(raw, "objectGUID"))
            if guid is None:
                continue
            if first_raw(raw, "isDeleted") in (b"TRUE", "TRUE"):
                batch.deleted.add(guid)
                batch.groups_changed = True  # a group's tombstone looks like a person's: the groups are read again
                continue
            found = session.find_entry(f"<GUID={guid}>", settings.effective_user_filter, attributes)
            dn = extended_dn(found[0])[1] if found is not None else None
            if found is not None and dn is not None and dn_within(dn, settings.base_dn):
                batch.changed.append((dn, found[1]))
                continue
            if session.find_entry(f"<GUID={guid}>", settings.effective_group_filter, ["cn"]) is not None:
                batch.groups_changed = True
                continue
            batch.deleted.add(guid)  # moved out of the base or the filter: gone, as a full run would find it
        batch.changed = list({normalise_dn(dn): (dn, raw) for dn, raw in batch.changed}.values())
        return batch
