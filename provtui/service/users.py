"""The service's part for people: create, update, lifecycle, passwords."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provtui.clock import utc_now_iso
from provtui.domain.errors import InvalidInput
from provtui.domain.lifecycle import State, transition
from provtui.domain.passwords import validate_password
from provtui.domain.roles import Action
from provtui.domain.users import check_typed_profile, validate_profile
from provtui.ids import new_id
from provtui.model.directory import Directory, mastered
from provtui.model.schema import ACCOUNTS, APPS, CONFIG, USERS, account_key, stored
from provtui.service.change import Access, Change, Changes
from provtui.service.part import Part

if TYPE_CHECKING:
    from provtui.service.reads import Reads

# What create_user's fields are called where an admin types them (any other attribute: --set KEY).
_TYPED_LABELS = {"login": "login", "email": "--email", "firstName": "--first", "lastName": "--last"}


def lifecycle_role(action: str) -> Action:
    """What a lifecycle action needs: suspending is the helpdesk's, every other step managing users."""
    return Action.SUSPEND if action in ("suspend", "unsuspend") else Action.MANAGE_USERS


class Users(Part):
    """People: create, update, lifecycle, passwords."""

    def __init__(self, changes: Changes, directory: Directory, access: Access, *, reads: Reads):
        super().__init__(changes, directory, access)
        self.reads = reads

    def create_user(
        self, login: str, email: str, first: str, last: str, extra: dict[str, Any] | None = None, *, activate: bool = False
    ) -> dict[str, Any]:
        typed = {"login": login, "email": email, "firstName": first, "lastName": last}
        check_typed_profile({**(extra or {}), **typed}, labels=_TYPED_LABELS)
        profile = validate_profile({**(extra or {}), "login": login, "email": email, "firstName": first, "lastName": last})
        with self.changes(Action.MANAGE_USERS) as tx:
            if tx.lookup(USERS, "login", profile["login"]):
                raise InvalidInput("login", f"{profile['login']!r} is already taken")
            user_id = new_id()
            now = utc_now_iso()
            state = State.ACTIVE if activate else State.STAGED
            doc = {
                "id": user_id,
                "login": profile["login"],
                "state": state.value,
                "source": "provtui",
                "profile": profile,
                "created": now,
                "state_changed": now,
            }
            tx.put(USERS, user_id, doc)
            tx.audit("user.create", profile["login"], None, {"state": doc["state"], "profile": profile})
            tx.note_user_change(user_id, attributes=None)
        return self.reads.user_view(profile["login"])

    def update_user(self, login: str, changes: dict[str, Any]) -> dict[str, Any]:
        if not changes:
            raise InvalidInput("--set", "nothing to change")
        check_typed_profile(changes)
        with self.changes(Action.MANAGE_USERS) as tx:
            user_id = self.directory.user_id(login, tx)
            user = stored(tx, USERS, user_id)
            self._check_mastered(tx, user, changes)
            profile = {**user["profile"], **changes}
            profile = validate_profile({k: v for k, v in profile.items() if v not in ("", None)})
            if profile["login"] != user["login"] and tx.lookup(USERS, "login", profile["login"]):
                raise InvalidInput("login", f"{profile['login']!r} is already taken")
            before = {k: user["profile"].get(k) for k in changes}
            after = {k: profile.get(k) for k in changes}
            if before == after:
                return self.reads.user_view(login)  # nothing changes: no audit event, no downstream work
            tx.put(USERS, user_id, {**user, "login": profile["login"], "profile": profile})
            tx.audit("user.update", user["login"], before, after)
            tx.note_user_change(user_id, attributes={k for k in changes if before.get(k) != after.get(k)})
        return self.reads.user_view(profile["login"])

    def _check_mastered(self, tx: Change, user: dict[str, Any], changes: dict[str, Any]) -> None:
        """An attribute a source of truth supplies is changed there, not here."""
        owners = mastered(tx, user)
        for key in changes:
            if key in owners:
                raise InvalidInput(key, f"{user['login']}'s {key} is mastered by the source {owners[key]!r}: change it there")

    def change_state(self, login: str, action: str) -> dict[str, Any]:
        """Run a lifecycle action (activate, suspend, unsuspend, deactivate, reactivate, delete)."""
        with self.changes(lifecycle_role(action)) as tx:  # authorised before the login is looked up
            self.change_state_in(tx, self.directory.user_id(login, tx), action)
        return self.reads.user_view(login)

    def change_state_in(self, tx: Change, user_id: str, action: str) -> None:
        """One lifecycle step inside ``tx``, authorised here: what ``change_state`` runs, and a bulk change once a person."""
        tx.authorise(lifecycle_role(action))
        user = stored(tx, USERS, user_id)
        target = transition(user["state"], action)
        tx.put(USERS, user_id, {**user, "state": target.value, "state_changed": utc_now_iso()})
        tx.audit(f"user.{action}", user["login"], {"state": user["state"]}, {"state": target.value})
        tx.note_user_change(user_id, attributes=set())

    def password_targets(self, login: str) -> list[dict[str, Any]]:
        """The accounts a new password for ``login`` goes to: apps that sync passwords where the user has one.

        Authorised here, before anything is sent; nothing is written.
        """
        with self.store.transaction() as locked:  # the lock, so the answer is current; writes nothing
            tx = self.changes.within(locked)
            tx.authorise(Action.RESET_PASSWORD)
            user_id = self.directory.user_id(login, tx)
            user = stored(tx, USERS, user_id)
        if user["state"] != State.ACTIVE:
            raise InvalidInput("state", f"{login} is {user['state']}: only an active user's password can be set")
        targets = []
        for app_id in sorted(self.directory.apps_touching(user_id)):
            app = stored(self.store, APPS, app_id)
            account = self.store.get(ACCOUNTS, account_key(app_id, user_id)) or {}
            if app["settings"].get("sync_password") and account.get("remote_id") and account.get("active"):
                targets.append(
                    {"app_id": app_id, "app": app["name"], "remote_id": account["remote_id"], "attributes": account.get("attributes") or {}}
                )
        return targets

    def check_password(self, password: str) -> str:
        """The password if it meets the store's policy (password.min-length, .classes, .blocklist)."""
        policy = {k: e["value"] for k, e in self.store.all(CONFIG).items() if k.startswith("password.")}
        password = validate_password(
            password, min_length=int(policy.get("password.min-length", 8)), min_classes=int(policy.get("password.classes", 1))
        )
        if password.lower() in set(policy.get("password.blocklist", ())):
            raise InvalidInput("password", "is on the blocklist of common or forbidden passwords")
        return password

    def record_password_change(self, login: str, results: list[dict[str, Any]], *, random: bool) -> None:
        """Audit a password change: which apps took it (never the password)."""
        with self.changes(Action.RESET_PASSWORD) as tx:
            tx.audit(
                "user.password",
                login,
                None,
                {
                    "random": random,
                    "apps": [r["app"] for r in results if not r["error"]],
                    "failed": [r["app"] for r in results if r["error"]],
                },
            )
