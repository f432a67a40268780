"""The audit trail, read: filters, exports and the hash-chain check.

Pure functions over lists of audit events (as ``Store.audit_events()`` returns
them, oldest first); nothing here touches the store.

Filters (all optional, combined with AND):

* ``actor``: exact.
* ``action``: exact, or a dotted prefix: ``user`` matches ``user.create`` and
  ``user.deactivate`` but not ``userx.y``; ``user.`` does the same.
* ``target``: case-insensitive, exact, or exact on the name after a ``kind:``
  prefix, so ``ada`` finds the targets ``ada`` and ``user:ada`` (an assignment)
  but not ``adam``.  A ``*`` or ``?`` in the filter makes it a shell-style glob
  over the whole target (``--target 'ad*'``).
* ``about``: a thing or a person: the target matches (as ``target``), or the subject an app is
  assigned to (``group:eng``), or the event names a person whose login matches (``event_logins``: a
  group's members added or removed, a bulk change, a task, a call made for them), so ``ada`` also
  finds ``group.add-member eng`` when it added ada.  Logins as named at the time (a user's history
  follows renames).
* ``since`` / ``until``: event time at or after / before the given instant.
* ``limit``: the newest N matches (still returned oldest first).

Exports carry every field (prev and hash included), so an exported JSON-lines
file can itself be checked with ``verify_chain(from_jsonl(data))``.  CSV cells a
spreadsheet would run as a formula are escaped (see ``csv_cell``).
"""

from __future__ import annotations

import csv
import fnmatch
import io
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import orjson

from provtui.store.chain import REPAIRED, ChainReport, verify_chain, vouch_for  # noqa: F401  (the trail's check, read here)

DOWNSTREAM_CALL = "downstream.call"
COLUMNS = ["seq", "time", "actor", "action", "target", "before", "after", "correlation", "prev", "hash"]

# OWASP "CSV Injection": a cell starting with one of these is run as a formula by
# Excel, LibreOffice or Google Sheets.  The full-width forms are read as the ASCII
# ones by some locales' spreadsheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


# -- time ------------------------------------------------------------------------------


def parse_time(text: str, option: str = "--since") -> datetime:
    """An ISO 8601 date or date-time; without an offset it is UTC.  Raises InvalidInput naming ``option``."""
    from provtui.domain.errors import InvalidInput

    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(option, f"{text!r} is not an ISO 8601 date or time (e.g. 2024-05-01 or 2024-05-01T09:30:00Z)") from None
    return _aware(moment)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def event_time(event: dict[str, Any]) -> datetime | None:
    try:
        return _aware(datetime.fromisoformat(str(event["time"])))
    except (KeyError, ValueError):
        return None


# -- filters ---------------------------------------------------------------------------


def action_matches(pattern: str, action: str | None) -> bool:
    if action is None:
        return False
    if action == pattern:
        return True
    prefix = pattern if pattern.endswith(".") else pattern + "."
    return action.startswith(prefix)


def target_matches(pattern: str, target: Any) -> bool:
    if target is None:
        return False
    target, pattern = str(target).casefold(), pattern.casefold()
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(target, pattern)
    if target == pattern:
        return True
    _, colon, name = target.partition(":")
    return bool(colon) and name == pattern and ":" not in pattern


def about_matches(pattern: str, event: dict[str, Any]) -> bool:
    """The event is about ``pattern``: its target matches, or the subject it assigns, or a person it names
    (module docstring)."""
    if target_matches(pattern, event.get("target")):
        return True
    sides = [side for side in (event.get("before"), event.get("after")) if isinstance(side, dict)]
    if any(target_matches(pattern, side.get("subject")) for side in sides):  # app.assign: user:ada, group:eng
        return True
    return any(target_matches(pattern, login) for login in event_logins(event))


def filter_events(
    events: Iterable[dict[str, Any]],
    *,
    actor: str | None = None,
    target: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
    calls: bool = True,
    about: str | None = None,
) -> list[dict[str, Any]]:
    """The events that match every filter given (see the module docstring), oldest first; ``calls``:
    False leaves out downstream calls."""
    matches = event_filter(actor=actor, target=target, action=action, since=since, until=until, calls=calls, about=about)
    matched = [event for event in events if matches(event)]
    if limit is not None:
        matched = matched[-limit:] if limit > 0 else []
    return matched


def newest_events(newest_first: Iterable[dict[str, Any]], limit: int, **filters: Any) -> list[dict[str, Any]]:
    """The newest ``limit`` events that match (filters as for filter_events), oldest first; reads
    ``newest_first`` only as far as it must."""
    matches = event_filter(**filters)
    found = []
    if limit > 0:
        for event in newest_first:
            if matches(event):
                found.append(event)
                if len(found) == limit:
                    break
    return found[::-1]


def event_filter(
    *,
    actor: str | None = None,
    target: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    calls: bool = True,
    about: str | None = None,
) -> Callable[[dict[str, Any]], bool]:
    since = _aware(since) if since is not None else None
    until = _aware(until) if until is not None else None

    def matches(event: dict[str, Any]) -> bool:
        if not calls and event.get("action") == DOWNSTREAM_CALL:
            return False
        if actor is not None and event.get("actor") != actor:
            return False
        if action is not None and not action_matches(action, event.get("action")):
            return False
        if target is not None and not target_matches(target, event.get("target")):
            return False
        if about is not None and not about_matches(about, event):
            return False
        if since is not None or until is not None:
            when = event_time(event)
            if when is None or (since is not None and when < since) or (until is not None and when >= until):
                return False
        return True

    return matches


# -- whom an event concerns (a user's history) ----------------------------------------------

USER_EVENT_ACTIONS = ("user.", "account.link")  # events whose target is a user's login
_LOGIN_LISTS = ("users", "added", "removed")  # membership events: the logins that joined or left


def event_logins(event: dict[str, Any]) -> set[str]:
    """The logins (casefolded) an event concerns: its target when it is about a user, and the users a
    membership, assignment, task or downstream failure names."""
    logins: set[str] = set()
    action = str(event.get("action") or "")
    if action.startswith(USER_EVENT_ACTIONS) and isinstance(event.get("target"), str):
        logins.add(event["target"])
    for side in (event.get("before"), event.get("after")):
        if not isinstance(side, dict):
            continue
        if isinstance(side.get("user"), str):
            logins.add(side["user"])
        for key in _LOGIN_LISTS:
            if isinstance(side.get(key), list):
                logins.update(login for login in side[key] if isinstance(login, str))
        subject = side.get("subject")
        if isinstance(subject, str) and subject.startswith("user:"):
            logins.add(subject.partition(":")[2])
    return {login.casefold() for login in logins}


def event_rename(event: dict[str, Any]) -> tuple[str, str] | None:
    """(old, new) casefolded login when the event renames a user, else None."""
    before, after = event.get("before"), event.get("after")
    if not (str(event.get("action") or "").startswith("user.") and isinstance(before, dict) and isinstance(after, dict)):
        return None
    old, new = before.get("login"), after.get("login")
    if isinstance(old, str) and isinstance(new, str) and old.casefold() != new.casefold():
        return old.casefold(), new.casefold()
    return None


def account_key(app: str, remote_id: str) -> str:
    """How a user's account in an app is named in the history index (see call_account)."""
    return f"{app}\x00{remote_id.casefold()}"


def call_account(event: dict[str, Any]) -> str | None:
    """The account a downstream call worked on, as ``account_key``: a SCIM call on ``/Users/<id>``.

    None for calls on no one account (a create, a search) and for LDAP operations: their path is
    the entry's DN, which changes, while an LDAP account's remote id is its UUID.  Calls the engine
    made for a user also name them (``after.user``), which is how those reach the user's history."""
    if event.get("action") != DOWNSTREAM_CALL or not isinstance(event.get("after"), dict):
        return None
    path, app = event["after"].get("path"), event.get("target")
    if not isinstance(path, str) or not isinstance(app, str) or not path.startswith("/Users/"):
        return None
    return account_key(app, unquote(path.removeprefix("/Users/")))


# -- exports ---------------------------------------------------------------------------


def to_jsonl(events: Iterable[dict[str, Any]]) -> bytes:
    """One JSON object per line, every field kept (so the file can be verified later)."""
    return b"".join(orjson.dumps(event) + b"\n" for event in events)


def from_jsonl(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


def compact_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def csv_cell(value: Any) -> Any:
    """A value as a safe CSV cell.

    None is empty; dicts and lists become compact JSON; a text cell that starts
    with = + - @ TAB or CR (OWASP's CSV-injection list, plus the full-width
    forms) gets a leading single quote so a spreadsheet shows it as text instead
    of running it.  Numbers and booleans are left alone (a number is not a formula).
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, (dict, list, tuple)):
        value = compact_json(value)
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def csv_text(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as CSV (RFC 4180: CRLF line ends, quoted where needed), header first, every cell escaped."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_cell(c) for c in columns])
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) for c in columns])
    return out.getvalue()


def to_csv(events: Iterable[dict[str, Any]]) -> str:
    """The events as CSV: one column per field; before and after as compact JSON."""
    return csv_text(events, COLUMNS)
