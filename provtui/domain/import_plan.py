"""Import planning, for any source: what an import does to the directory, decided before it is applied.

Pure.  ``plan_import(parsed, existing, source=..., full=...)`` compares the rows a source read
(a ``ParsedFile`` from an HR CSV or an LDAP search, or bare ``Row``s) with the users in the
directory: an ``ImportPlan`` of ``UserAction``s to apply in one transaction, plus the counts the
CLI prints (``plan.summary()``) and what the mass-deprovisioning safeguard weighs
(``deprovision_ratio``).

A row's ``Intent`` (active, suspended, deactivated, staged) becomes the lifecycle transitions of
``provtui.domain.lifecycle`` that get the user there from wherever they are.

Rules where the issue is silent:
- New users: active -> created and activated; on leave -> created, activated, suspended;
  pre-hire -> created staged; terminated -> nothing (counted unchanged).
- Existing users: an empty cell clears an optional attribute but keeps a required one; a
  pre-hire row or a file without a status column never moves a user's lifecycle; a deleted user
  cannot be changed (rejected, unless the row says terminated).  A login derived from the email
  names new users only; it never renames an existing one.
- Users mastered by another source are rejected rows ("mastered by ..."), unless ``priorities``
  let this source write some of their attributes (never their lifecycle), or ``adopt`` is set
  and they are provtui's own.
- Full import: this source's users that no row names (accepted or rejected: a rejected row's
  cells protect whoever they name) are deactivated.
- A full import that yields no valid person (no row accepted, or only terminated / disabled
  ones: an export with a header and no rows, every row rejected, an LDAP search under the wrong
  base or filter) is *refused*: its plan changes nothing (``plan.refused`` says why, the actions
  it would have taken are ``plan.withheld``), unless ``allow_empty`` is set.  A partial or
  incremental run is never refused for this: it deactivates no one for being absent, and an
  empty delta is an ordinary one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from provtui.domain.errors import InvalidInput
from provtui.domain.import_actions import ImportPlan, UserAction
from provtui.domain.import_rows import NATIVE_SOURCE, Intent, ParsedFile, Rejection, Row, cell_keys
from provtui.domain.lifecycle import State, transition
from provtui.domain.users import REQUIRED_ATTRIBUTES, normalise_login, validate_profile

UserDoc = dict[str, Any]
"""A user as the store keeps it: id, login, state, source, profile, attribute_sources..."""

# Lifecycle actions taking a user from a state to what the intent says (deleted: see _plan_existing).
_PATHS: dict[Intent | None, dict[str, tuple[str, ...]]] = {
    Intent.ACTIVE: {"staged": ("activate",), "active": (), "suspended": ("unsuspend",), "deprovisioned": ("reactivate",)},
    Intent.SUSPENDED: {
        "staged": ("activate", "suspend"),
        "active": ("suspend",),
        "suspended": (),
        "deprovisioned": ("reactivate", "suspend"),
    },
    Intent.DEACTIVATED: {"staged": ("deactivate",), "active": ("deactivate",), "suspended": ("deactivate",), "deprovisioned": ()},
    Intent.STAGED: {},  # a pre-hire row never moves an existing user (it cannot go back to staged)
    None: {},  # no status column: the lifecycle of existing users is left alone
}
_NEW_USER_LIFECYCLE = {Intent.ACTIVE: ("activate",), None: ("activate",), Intent.SUSPENDED: ("activate", "suspend"), Intent.STAGED: ()}
_REASONS = {
    Intent.ACTIVE: "active in HR",
    Intent.SUSPENDED: "on leave in HR",
    Intent.DEACTIVATED: "terminated in HR",
    Intent.STAGED: "pre-hire in HR",
    None: "",
}
_SOURCE_NAME = re.compile(r"^(scim:)?[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # (scim:NAME: an inbound SCIM client's)


def plan_import(
    parsed: ParsedFile | Iterable[Row],
    existing: Mapping[str, UserDoc] | Iterable[UserDoc],
    *,
    source: str,
    full: bool = False,
    owned_attributes: frozenset[str] | None = None,
    priorities: Mapping[str, tuple[str, ...] | list[str]] | None = None,
    adopt: bool = False,
    allow_empty: bool = False,
    identities: Mapping[str, str] | None = None,
    gone: Iterable[str] = (),
) -> ImportPlan:
    """Compare the rows with ``existing`` users (user id -> user doc, every source; or the docs).

    Rows match this source's users by employeeNumber, then any user by login (then, when logins
    are derived from emails, this source's users by email).  ``owned_attributes``: the attributes
    this source writes (None: every mapped one; a new user always gets login, email and names).
    ``priorities``: attribute -> sources, highest first, deciding who writes an attribute several
    sources supply.  ``adopt``: rows matching a user created in provtui take it over instead of
    being rejected.  ``full``: this source's users missing from the file are deactivated.
    ``identities``: external id -> login of this source's users a row's ``external_id`` names first
    (a directory entry's immutable id): a renamed entry is the same person, whose login changes.
    ``gone``: logins of this source's users the source says no longer exist (a live directory's deleted
    entries): deactivated as a full run deactivates the missing, whether or not the run is full.
    A full run that yields no valid person is refused (``plan.refused``; nothing to apply)
    unless ``allow_empty``: an empty or broken export must never deprovision everyone.
    """
    if not _SOURCE_NAME.match(source or "") or source == NATIVE_SOURCE:
        raise InvalidInput("source", f"{source!r} is not an import source name (letters, digits and . _ -; not {NATIVE_SOURCE!r})")
    planner = _Planner(parsed, existing, source, owned_attributes, priorities or {}, adopt, identities or {})
    for row in planner.rows:
        planner.plan_row(row)
    if full:
        planner.plan_missing()
    planner.plan_gone(gone)
    rejected = sorted(planner.rejected, key=lambda r: r.line)
    rejected_lines = {r.line for r in rejected}
    accepted = [row for row in planner.rows if row.line not in rejected_lines]
    people = sum(1 for row in accepted if row.intent is not Intent.DEACTIVATED)
    actions = tuple(planner.actions)
    refused = None
    if full and people == 0 and not allow_empty:
        refused = empty_reason(len(accepted), len(rejected))
    return ImportPlan(
        source=source,
        full=full,
        actions=() if refused else actions,
        unchanged=planner.unchanged,
        rejected=tuple(rejected),
        people=people,
        rows=len(accepted),
        refused=refused,
        withheld=actions if refused else (),
    )


def empty_reason(accepted: int, rejected: int) -> str:
    """Why a full run that yields no valid person is refused, with what it did read."""
    if accepted and rejected:
        what = f"{rejected} rejected, {accepted} terminated or disabled"
    elif accepted:
        what = (
            "the one it returned is terminated or disabled"
            if accepted == 1
            else f"the {accepted} it returned are all terminated or disabled"
        )
    elif rejected:
        what = "the one it returned was rejected" if rejected == 1 else f"the {rejected} it returned were all rejected"
    else:
        what = "it returned nobody"
    return f"the source returned no valid person; nothing was changed ({what})"


def _same(before: Any, after: Any) -> bool:
    if before == after:
        return True
    return isinstance(before, (int, float)) and not isinstance(before, bool) and after is not None and str(before) == after


class _Planner:
    def __init__(
        self,
        parsed: ParsedFile | Iterable[Row],
        existing: Mapping[str, UserDoc] | Iterable[UserDoc],
        source: str,
        owned: frozenset[str] | None,
        priorities: Mapping[str, tuple[str, ...] | list[str]],
        adopt: bool,
        identities: Mapping[str, str],
    ):
        self.rejected: list[Rejection]
        if isinstance(parsed, ParsedFile):
            self.parsed: ParsedFile | None = parsed
            self.rows = parsed.rows
            self.rejected = list(parsed.rejections)
            self.login_derived = parsed.login_derived
        else:
            self.parsed = None
            self.rows = tuple(parsed)
            self.rejected = []
            self.login_derived = False
        self.source, self.owned, self.priorities, self.adopt = source, owned, priorities, adopt
        self.users = list(existing.values()) if isinstance(existing, Mapping) else list(existing)
        self.by_login: dict[str, UserDoc] = {}
        self.by_number: dict[str, list[UserDoc]] = {}
        self.by_email: dict[str, list[UserDoc]] = {}
        for user in self.users:
            self.by_login[normalise_login(user["login"])] = user
            if not self._mine(user):
                continue
            profile = user.get("profile") or {}
            number = profile.get("employeeNumber")
            if number not in (None, ""):
                self.by_number.setdefault(str(number), []).append(user)
            if self.login_derived and profile.get("email"):
                self.by_email.setdefault(str(profile["email"]).lower(), []).append(user)
        # external id -> this source's user; and the ids every row and rejection names (who a full run keeps)
        self.by_identity = {key: user for key, login in identities.items() if (user := self.by_login.get(normalise_login(login)))}
        self.identity_of = {user["id"]: key for key, user in self.by_identity.items()}
        self.matched: dict[str, int] = {}  # user id -> the line that matched it
        self.new_logins: dict[str, int] = {}
        self.actions: list[UserAction] = []
        self.unchanged = 0

    # -- helpers

    def _mine(self, user: UserDoc) -> bool:
        source = user.get("source", NATIVE_SOURCE)
        return source == self.source or (self.adopt and source == NATIVE_SOURCE)

    def _column(self, attribute: str) -> str:
        return self.parsed.column_for(attribute) if self.parsed else attribute

    def _reject(self, row: Row, attribute: str | None, reason: str) -> None:
        column = self._column(attribute) if attribute else None
        self.rejected.append(Rejection(row.line, column, reason, cell_keys(v for v in row.profile.values() if v)))

    def _may_write(self, attribute: str, user: UserDoc, master: str) -> bool:
        if self.owned is not None and attribute not in self.owned:
            return False
        writer = (user.get("attribute_sources") or {}).get(attribute, master)
        if writer == self.source:
            return True
        order = self.priorities.get(attribute)
        if order:
            rank = {s: i for i, s in enumerate(order)}
            mine, theirs = rank.get(self.source, len(order)), rank.get(writer, len(order))
            if mine != theirs:
                return mine < theirs
        return master == self.source

    # -- rows

    def plan_row(self, row: Row) -> None:
        if row.external_id is not None:
            known = self.by_identity.get(row.external_id)
            if known is not None and self._mine(known):
                return self._plan_identified(row, known)
            holder = self.by_login.get(row.login)
            if holder is not None and holder["id"] in self.identity_of and self.identity_of[holder["id"]] != row.external_id:
                # the holder is not matched: their own entry may follow, renamed; the row's cells keep them from a full run
                return self._reject(
                    row, "login", f"login {row.login!r} belongs to another person of {self.source} (entry {self.identity_of[holder['id']]})"
                )
        number = row.profile.get("employeeNumber")
        by_number = self.by_number.get(number, []) if number else []
        if len(by_number) > 1:
            self._reject(
                row,
                "employeeNumber",
                f"employeeNumber {number!r} belongs to {len(by_number)} users: " + ", ".join(sorted(u["login"] for u in by_number)),
            )
            for other in by_number:
                self.matched.setdefault(other["id"], row.line)
            return
        user_by_number = by_number[0] if by_number else None
        user_by_login = self.by_login.get(row.login)
        if user_by_number is not None and user_by_login is not None and user_by_login is not user_by_number:
            self.matched.setdefault(user_by_number["id"], row.line)
            self.matched.setdefault(user_by_login["id"], row.line)
            return self._reject(
                row, "login", f"login {row.login!r} belongs to another user, not to employee {number} ({user_by_number['login']})"
            )
        user: UserDoc | None = user_by_number or user_by_login
        if user is None and self.login_derived and (email := row.profile.get("email")):
            by_email = self.by_email.get(email.lower(), [])
            if len(by_email) > 1:
                return self._reject(
                    row, "email", f"the email belongs to {len(by_email)} users: " + ", ".join(sorted(u["login"] for u in by_email))
                )
            user = by_email[0] if by_email else None
        if user is None:
            return self._plan_new(row)
        if user["id"] in self.matched:
            return self._reject(row, "login", f"{user['login']} is also matched by line {self.matched[user['id']]}")
        self.matched[user["id"]] = row.line
        if user is not user_by_number and number and self._mine(user):
            theirs = (user.get("profile") or {}).get("employeeNumber")
            if theirs not in (None, "") and str(theirs) != number:
                return self._reject(
                    row, "employeeNumber", f"{user['login']} is employee {theirs} in provtui, this row is employee {number}"
                )
        self._plan_existing(row, user)

    def _plan_identified(self, row: Row, user: UserDoc) -> None:
        """A row whose entry is one of this source's people: the same person, whatever their login is now."""
        if user["id"] in self.matched:
            return self._reject(row, "login", f"{user['login']} is also matched by line {self.matched[user['id']]}")
        self.matched[user["id"]] = row.line
        holder = self.by_login.get(row.login)
        if holder is not None and holder is not user:  # renamed to a login someone else has (until they move: a later run)
            return self._reject(row, "login", f"{user['login']} was renamed to {row.login!r}, the login of another user")
        self._plan_existing(row, user)

    def _plan_new(self, row: Row) -> None:
        if row.intent is Intent.DEACTIVATED:
            self.unchanged += 1  # terminated and never imported: nothing to do
            return
        if row.login in self.new_logins:  # only possible for rows not from parse_csv
            return self._reject(row, "login", f"login {row.login!r} is also on line {self.new_logins[row.login]}")
        owned = self.owned
        if owned is None:
            values = {a: v for a, v in row.profile.items() if v is not None}
        else:
            values = {a: v for a, v in row.profile.items() if v is not None and (a in owned or a in REQUIRED_ATTRIBUTES)}
        if self.parsed is not None:
            # parse_csv already checked names, login and email, and stripped the values: what
            # validate_profile would still do is the required check and the displayName.
            missing = next((a for a in REQUIRED_ATTRIBUTES if a not in values), None)
            if missing is not None:
                return self._reject(row, missing, "is required for a new user")
            if "displayName" not in values:
                values["displayName"] = f"{values['firstName']} {values['lastName']}"
            profile = values
        else:
            try:
                profile = validate_profile(values)
            except InvalidInput as e:
                return self._reject(row, e.field, e.message)
        lifecycle = _NEW_USER_LIFECYCLE[row.intent]
        state = _run(State.STAGED.value, lifecycle)
        self.new_logins[row.login] = row.line
        self.actions.append(
            UserAction(
                line=row.line,
                user_id=None,
                login=profile["login"],
                state_before=None,
                state_after=state,
                lifecycle=lifecycle,
                changes={},
                profile=profile,
                outcomes=("created",),
                reason=_REASONS[row.intent] or "new",
            )
        )

    def _plan_existing(self, row: Row, user: UserDoc) -> None:
        master = user.get("source", NATIVE_SOURCE)
        mine = self._mine(user)
        adopting = mine and master != self.source
        if not mine and not self.priorities:
            return self._reject(row, "login", f"{user['login']} is mastered by {master}: the {self.source} import does not change it")
        effective_master = self.source if mine else master
        state = user["state"]
        if mine and state == State.DELETED:
            if row.intent is Intent.DEACTIVATED:
                self.unchanged += 1
                return
            return self._reject(row, "status" if row.intent else "login", f"{user['login']} was deleted in provtui: it cannot be changed")

        lifecycle: tuple[str, ...] = _PATHS[row.intent].get(state, ()) if mine else ()
        try:
            state_after = _run(state, lifecycle)
        except InvalidInput as e:  # defensive: _PATHS only holds legal paths
            return self._reject(row, "status", e.message)

        current: dict[str, Any] = user.get("profile") or {}
        changes: dict[str, tuple[Any, Any]] = {}
        written = False
        # The master writing with no provenance recorded: only owned_attributes can hold it back.
        every = effective_master == self.source and not user.get("attribute_sources")
        owned = self.owned
        for attribute, value in row.profile.items():
            if attribute == "login" and self.login_derived:
                continue  # a derived login names new users; it never renames one
            if value is None and attribute in REQUIRED_ATTRIBUTES:
                continue  # an empty required cell keeps the current value
            if every:
                if owned is not None and attribute not in owned:
                    continue
            elif not self._may_write(attribute, user, effective_master):
                continue
            written = True
            before = current.get(attribute)
            if not _same(before, value):
                changes[attribute] = (before, value)
        if "displayName" not in row.profile and ("firstName" in changes or "lastName" in changes):
            old = f"{current.get('firstName')} {current.get('lastName')}"
            if current.get("displayName") == old:
                first = changes.get("firstName", (None, current.get("firstName")))[1]
                last = changes.get("lastName", (None, current.get("lastName")))[1]
                changes["displayName"] = (old, f"{first} {last}")
        if not mine and not written:
            return self._reject(row, "login", f"{user['login']} is mastered by {master}: the {self.source} import does not change it")

        profile = current
        if changes:
            merged = {**current, **{a: after for a, (_, after) in changes.items()}}
            try:
                profile = validate_profile({k: v for k, v in merged.items() if v is not None})
            except InvalidInput as e:
                return self._reject(row, e.field, e.message)

        # Provenance: who wrote an attribute, when not the user's master source.
        sources = None
        old_sources = user.get("attribute_sources") or {}
        if changes and (old_sources or self.source != effective_master):
            new_sources = dict(old_sources)
            for attribute in changes:
                if self.source == effective_master:
                    new_sources.pop(attribute, None)
                else:
                    new_sources[attribute] = self.source
            if new_sources != old_sources:
                sources = new_sources

        outcomes: list[str] = []
        if changes or adopting or (lifecycle and lifecycle[0] == "activate" and state_after == State.ACTIVE):
            outcomes.append("updated")
        if state_after != state:
            if state_after == State.DEPROVISIONED:
                outcomes.append("deactivated")
            elif state_after == State.SUSPENDED:
                outcomes.append("suspended")
            elif state_after == State.ACTIVE and state in (State.SUSPENDED, State.DEPROVISIONED):
                outcomes.append("reactivated")
        if not outcomes:
            self.unchanged += 1
            return
        login: str = user["login"]
        self.actions.append(
            UserAction(
                line=row.line,
                user_id=user["id"],
                login=profile.get("login", login),
                state_before=state,
                state_after=state_after,
                lifecycle=lifecycle,
                changes=changes,
                profile=profile,
                outcomes=tuple(outcomes),
                adopt=adopting,
                attribute_sources=sources,
                reason=_REASONS[row.intent] if mine else f"attributes only: mastered by {master}",
            )
        )

    def plan_missing(self) -> None:
        """Full import: this source's users that no row (accepted or rejected) names are deactivated."""
        protected: set[str] = set()
        for rejection in self.rejected:
            protected |= rejection.keys
        for user in self.users:
            if user.get("source", NATIVE_SOURCE) != self.source or user["id"] in self.matched:
                continue
            profile = user.get("profile") or {}
            names = {normalise_login(user["login"]), str(profile.get("email", "")).lower(), str(profile.get("employeeNumber", "")).lower()}
            if user["id"] in self.identity_of:
                names.add(self.identity_of[user["id"]].lower())
            if not names & protected:
                self._deprovision(user, "missing from the file")

    def plan_gone(self, logins: Iterable[str]) -> None:
        """The source's own word that these people are gone (a deleted entry): deactivated, unless a row of this
        same read names them (an entry deleted and added again reads as the person still there)."""
        for login in sorted({normalise_login(login) for login in logins}):
            user = self.by_login.get(login)
            if user is not None and self._mine(user) and user["id"] not in self.matched:
                self._deprovision(user, "deleted from the source")

    def _deprovision(self, user: UserDoc, reason: str) -> None:
        state = user["state"]
        if state in (State.DEPROVISIONED, State.DELETED):
            return
        self.actions.append(
            UserAction(
                line=None,
                user_id=user["id"],
                login=user["login"],
                state_before=state,
                state_after=State.DEPROVISIONED.value,
                lifecycle=("deactivate",),
                changes={},
                profile=user.get("profile") or {},
                outcomes=("deactivated",),
                reason=reason,
            )
        )


@lru_cache(maxsize=64)
def _run(state: str, lifecycle: tuple[str, ...]) -> str:
    """The state ``lifecycle`` leads to from ``state`` (InvalidInput if a step is illegal)."""
    for action in lifecycle:
        state = transition(state, action).value
    return state
