"""A person's history where the audit trail is read by query (PostgreSQL): the events HistoryIndex gives, found
through the database's index of whom each event concerns (``audit_about``), a page at a time, so a console
showing one person reads their events, not a trail of millions.

The index is a superset (it lowercases by Unicode's rules where the history casefolds, and names both logins
of a rename): each event found is checked here by the rules HistoryIndex follows (provtui.model.audit_trail).
Renames are followed as HistoryIndex follows them: a login's events before it was renamed away belong to the
new login; those before a rename into it, to the old login's history up to then.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from provtui.model.audit_trail import account_key, call_account, event_logins, event_rename

PAGE = 500  # events read at a time


@runtime_checkable
class AuditQueries(Protocol):
    def audit_about(
        self, logins: Collection[str] = ..., accounts: Collection[tuple[str, str]] = ..., *, before: int | None = None, limit: int = ...
    ) -> list[tuple[int, dict[str, Any]]]: ...


Found = list[tuple[int, dict[str, Any]]]


def newest_about(store: AuditQueries, login: str, accounts: list[tuple[str, str]], limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` events about ``login`` (followed through renames) or its ``accounts`` ((app name,
    remote id) pairs), newest first: what HistoryIndex.newest gives for the same keys."""
    found: dict[int, dict[str, Any]] = dict(_login_events(store, login, None, limit))
    for app, remote_id in accounts:
        found.update(_account_events(store, app, remote_id, limit))
    return [found[pos] for pos in sorted(found, reverse=True)[:limit]]


def _scan(
    store: AuditQueries, logins: Collection[str], accounts: Collection[tuple[str, str]], before: int | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    while True:
        page = store.audit_about(logins, accounts, before=before, limit=PAGE)
        yield from page
        if len(page) < PAGE:
            return
        before = page[-1][0]


def _login_events(store: AuditQueries, login: str, before: int | None, limit: int) -> Found:
    """Events of ``login``'s history below ``before``, newest first (at least the newest ``limit``)."""
    key = login.casefold()
    found: Found = []
    direct = 0  # events found about the login itself: newer than any the scan reads next
    for pos, event in _scan(store, (login, key), (), before):
        if direct >= limit:
            break  # what is older cannot make the cut (a rename's earlier history is older still)
        renamed = event_rename(event)
        if renamed is not None and renamed[0] == key and renamed[1] != key:
            break  # renamed away: what is older belongs to the new login
        if key in event_logins(event) or (renamed is not None and renamed[1] == key):
            found.append((pos, event))
            direct += 1
        if renamed is not None and renamed[1] == key and renamed[0] != key:
            found.extend(_login_events(store, str(event["before"]["login"]), pos, limit))  # renamed into: the old login's, until then
    return found


def _account_events(store: AuditQueries, app: str, remote_id: str, limit: int) -> Found:
    key = account_key(app, remote_id)
    found: Found = []
    for pos, event in _scan(store, (), [(app, remote_id), (app, quote(remote_id, safe=""))], None):  # (its path may be quoted)
        if call_account(event) == key:
            found.append((pos, event))
            if len(found) == limit:
                break
    return found
