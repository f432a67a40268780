"""The service's part for apps: connection, mappings, assignments, retries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from provtui.clock import utc_now_iso
from provtui.domain import numbers
from provtui.domain.apps import (
    DEFAULT_CAPABILITIES,
    DEFAULT_SETTINGS,
    AppKind,
    Capability,
    validate_dn,
    validate_ldap_target,
    validate_ldap_uri,
    validate_scim_url,
    validate_settings,
)
from provtui.domain.errors import InvalidInput
from provtui.domain.mapping import ALWAYS, compile_mapping, default_mappings_for
from provtui.domain.roles import Action, Scope
from provtui.domain.secrets import validate_env_name
from provtui.domain.text import (
    MAX_ATTRIBUTE_NAME,
    MAX_EMAIL,
    MAX_ENV_NAME,
    MAX_EXPRESSION,
    MAX_TARGET,
    MAX_URL,
    MAX_VALUE,
    check_display_name,
    check_text,
)
from provtui.ids import new_id
from provtui.model.directory import Directory
from provtui.model.schema import ACCOUNTS, APP_HEALTH, APPS, ASSIGNMENTS, assignment_key, group_subject, stored, user_subject
from provtui.service.ca_bundles import check_ca_certificates, shown_app, shown_settings
from provtui.service.change import Access, Change, Changes
from provtui.service.part import Part
from provtui.service.secrets import held_secret
from provtui.service.validation import validate_name
from provtui.store.vault import SecretVault

if TYPE_CHECKING:
    from provtui.service.reads import Reads

# An LDAP app's connection (where its password goes, and whom it trusts: a super admin's), and where its entries go.
_LDAP_CONNECTION = {
    "uri": "--ldap-uri",
    "bind_dn": "--bind-dn",
    "password_env": "--password-env",
    "password_secret": "--password-secret",
    "tls": "--tls",
    "ca_certificates": "--ca-file",
}
_LDAP_PLACEMENT = {
    "groups_dn": "--groups-dn",
    "user_filter": "--user-filter",
    "group_filter": "--group-filter",
    "external_id_attribute": "--external-id-attribute",
}


class Apps(Part):
    """Apps: connection, mappings, assignments, retries."""

    def __init__(self, changes: Changes, directory: Directory, access: Access, *, reads: Reads, vault: SecretVault | None = None):
        super().__init__(changes, directory, access)
        self.reads = reads
        self.vault = vault  # the server's secrets: a --token-secret must name one of them

    def _held_secret(self, name: str | None, field: str = "--token-secret") -> None:
        held_secret(self.vault, field, name)

    def create_app(
        self,
        name: str,
        *,
        scim_url: str | None = None,
        token_env: str | None = None,
        token_secret: str | None = None,
        manual: bool = False,
        notify: list[str] | None = None,
        ldap: dict[str, Any] | None = None,
        **settings: Any,
    ) -> dict[str, Any]:
        """Add a SCIM, LDAP/AD (``ldap``: validate_ldap_target's arguments) or manual app.

        ``settings``: concurrency, rate, push_groups, sync_password, delete_after_days, licenses.
        """
        name = check_display_name("name", name)
        if [bool(scim_url), manual, ldap is not None].count(True) != 1:
            raise InvalidInput("--scim-url", "give one of --scim-url (with --token-env), --ldap-uri or --manual")
        if scim_url:
            _validate_scim(scim_url, token_env, token_secret)
        elif manual and not notify:
            raise InvalidInput("--notify", "a manual app needs someone to notify of its tasks")
        if ldap is not None and ldap.get("ca_certificates") is not None:
            check_ca_certificates("--ca-file", ldap["ca_certificates"])
        target = validate_ldap_target(**ldap) if ldap is not None else None
        kind = AppKind.MANUAL if manual else AppKind.LDAP if ldap is not None else AppKind.SCIM
        settings = validate_settings({**DEFAULT_SETTINGS, **settings})
        with self.changes(Action.CREATE_APPS) as tx:
            self._held_secret(token_secret)  # once authorised
            self._held_secret((target or {}).get("password_secret"), "--password-secret")
            if tx.lookup(APPS, "name", name):
                raise InvalidInput("name", f"an app named {name!r} already exists")
            app: dict[str, Any] = {
                "id": new_id(),
                "name": name,
                "kind": kind.value,
                "scim_url": scim_url,
                "token_env": token_env,
                "token_secret": token_secret,
                "notify": _validate_emails(notify or []),
                "capabilities": _capabilities(kind, settings),
                "settings": settings,
                "created": utc_now_iso(),
            }
            if target is not None:
                app["ldap"] = target
            tx.put(APPS, app["id"], app)
            tx.audit("app.create", name, None, _app_config(app))
        return shown_app(app)

    def update_app(
        self,
        name: str,
        *,
        scim_url: str | None = None,
        token_env: str | None = None,
        token_secret: str | None = None,
        ldap: dict[str, Any] | None = None,
        notify: list[str] | None = None,
        **settings: Any,
    ) -> dict[str, Any]:
        """Change an app's connection or settings; only what is given (not None) changes.

        The connection is where the app's calls go (``scim_url``; ``ldap``'s ``uri`` and ``bind_dn``) and the
        secret they carry (``token_env``; ``ldap``'s ``password_env``): only a super admin changes it
        (Action.APP_CONNECTION), as an app admin could otherwise have the next sync send the app's secret to a
        server of their own.  A changed endpoint drops the secret reference unless one is given with it, so a
        secret never follows an app to a new endpoint.  Returns the app, with ``cleared``: the references dropped.
        """
        ldap = {k: v for k, v in (ldap or {}).items() if v is not None}
        unknown = sorted(set(ldap) - set(_LDAP_CONNECTION) - set(_LDAP_PLACEMENT))
        if unknown:
            raise InvalidInput(
                unknown[0], f"is not an LDAP setting update_app changes ({', '.join([*_LDAP_CONNECTION, *_LDAP_PLACEMENT])})"
            )
        if ldap.get("ca_certificates") is not None:
            check_ca_certificates("--ca-file", ldap["ca_certificates"])
        # The shape of what is given first, so a secret typed where its name belongs is refused before anything is read.
        if scim_url is not None:
            validate_scim_url(scim_url)
        if token_env is not None:
            validate_env_name("--token-env", token_env, "the bearer token")
        if token_env is not None and token_secret is not None:
            raise InvalidInput("--token-secret", "give --token-env or --token-secret, not both")
        if token_secret is not None:
            validate_name("--token-secret", token_secret)
        if "uri" in ldap:
            validate_ldap_uri(ldap["uri"])
        if "bind_dn" in ldap:
            validate_dn("--bind-dn", ldap["bind_dn"])
        if "password_env" in ldap:
            validate_env_name("--password-env", ldap["password_env"], "the bind password")
        if "password_env" in ldap and "password_secret" in ldap:
            raise InvalidInput("--password-secret", "give --password-env or --password-secret, not both")
        if "password_secret" in ldap:
            validate_name("--password-secret", ldap["password_secret"])
        with self.changes() as tx:
            app = self.directory.app(name, tx)
            scope = Scope(apps=frozenset({app["id"]}))
            tx.authorise(Action.MANAGE_APP, scope)
            kind = AppKind(app["kind"])
            updated = {**app, "settings": validate_settings({**app["settings"], **{k: v for k, v in settings.items() if v is not None}})}
            cleared: list[str] = []
            if (scim_url is not None or token_env is not None or token_secret is not None) and kind != AppKind.SCIM:
                raise InvalidInput(
                    "--scim-url" if scim_url is not None else "--token-env", f"{name} is a {kind.value} app: it has no SCIM endpoint"
                )
            if ldap and kind != AppKind.LDAP:
                option = {**_LDAP_CONNECTION, **_LDAP_PLACEMENT}[next(iter(ldap))]
                raise InvalidInput(option, f"{name} is a {kind.value} app: it has no LDAP connection")
            if kind == AppKind.SCIM:
                given = {
                    k: v for k, v in (("scim_url", scim_url), ("token_env", token_env), ("token_secret", token_secret)) if v is not None
                }
                current = {"scim_url": app["scim_url"], "token_env": app["token_env"], "token_secret": app.get("token_secret")}
                updated.update(self._connection(tx, scope, current, given, ("scim_url",), ("token_env", "token_secret"), cleared))
                self._held_secret(token_secret)  # once authorised: who may not name a secret learns none of their names
            elif ldap:
                connection = {k: v for k, v in ldap.items() if k in _LDAP_CONNECTION}
                target = self._connection(
                    tx, scope, app["ldap"], connection, ("uri", "bind_dn"), ("password_env", "password_secret"), cleared
                )
                target.update({k: v for k, v in ldap.items() if k in _LDAP_PLACEMENT})
                updated["ldap"] = _checked_target(target)
                self._held_secret(ldap.get("password_secret"), "--password-secret")  # once authorised
            if notify is not None:
                updated["notify"] = _validate_emails(notify)
            updated["capabilities"] = _capabilities(kind, updated["settings"])
            if updated == app:
                return {**shown_app(app), "cleared": []}
            tx.put(APPS, app["id"], updated)
            tx.audit("app.update", name, _app_config(app), _app_config(updated))
            # A new endpoint or retention period may change what every account needs.
            tx.mark_app_accounts(app["id"])
        return {**shown_app(updated), "cleared": cleared}

    def _connection(
        self,
        tx: Change,
        scope: Scope,
        current: dict[str, Any],
        given: dict[str, Any],
        endpoint: tuple[str, ...],
        secrets: tuple[str, ...],
        cleared: list[str],
    ) -> dict[str, Any]:
        """``current`` (an app's SCIM fields or its ``ldap``) with ``given`` applied: authorised for a super admin
        when anything changes; a changed endpoint takes the secret reference given with it, else none.
        ``secrets``: the ways a secret may be referenced (an environment variable, a server's secret); one given
        replaces the others."""
        changed = {k for k, v in given.items() if v != current.get(k)}
        if not changed:
            return dict(current)
        tx.authorise(Action.APP_CONNECTION, scope)
        result = {**current, **given}
        named = [k for k in secrets if k in given]
        for secret in secrets:
            if secret in named:
                continue
            if named or changed & set(endpoint):  # replaced, or the old endpoint's: it does not follow the app
                result[secret] = None
                if current.get(secret) and not named:
                    cleared.append(secret)
        return result

    def mappings(self, app_name: str) -> list[dict[str, Any]]:
        """The app's attribute mappings: target, expression, and when it is sent."""
        self.access.read()
        app = self.directory.app(app_name)
        return [dict(m) for m in (app.get("mappings") or default_mappings_for(app))]

    def set_mapping(self, app_name: str, target: str, expr: str | None, on: str = ALWAYS) -> list[dict[str, Any]]:
        """Map a downstream attribute to an expression (``expr`` None: stop sending it); accounts are re-provisioned."""
        check_text("TARGET", target, MAX_TARGET)
        if expr is not None:
            check_text("EXPR", expr, MAX_EXPRESSION)
            compile_mapping(target, expr, on)  # refuse a bad one, with the column, before anything is written
        with self.changes() as tx:
            app = self.directory.app(app_name, tx)
            tx.authorise(Action.MANAGE_APP, Scope(apps=frozenset({app["id"]})))
            if app["kind"] == AppKind.MANUAL:
                raise InvalidInput("APP", f"{app_name} is a manual app: it has no attributes to map")
            before = [dict(m) for m in (app.get("mappings") or default_mappings_for(app))]
            after = [m for m in before if m["target"] != target]
            if expr is not None:
                after.append({"target": target, "expr": expr, "on": on})
            elif len(after) == len(before):
                raise InvalidInput("TARGET", f"{app_name} does not map {target}")
            if after == before:
                return after
            tx.put(APPS, app["id"], {**app, "mappings": after})
            tx.audit(
                "app.map",
                app_name,
                {"target": target, "mapping": next((m for m in before if m["target"] == target), None)},
                {"target": target, "mapping": next((m for m in after if m["target"] == target), None)},
            )
            tx.mark_app_accounts(app["id"])
        return after

    def preview_payload(self, app_name: str, login: str) -> dict[str, Any]:
        """Exactly what would be sent to the app for this user (the SCIM resource on create)."""
        from provtui.connectors.scim import to_resource

        self.access.read()
        app = self.directory.app(app_name)
        user_id = self.directory.user_id(login)
        desired = self.directory.desired(app["id"], user_id)
        return {
            "app": app_name,
            "user": login,
            "entitled": desired.active,
            "attributes": desired.attributes,
            "create_only": sorted(desired.create_only),
            "payload": to_resource(desired.attributes, active=desired.active),
        }

    def resume_app(self, name: str) -> dict[str, Any]:
        """Lift an app's quarantine; its queued work runs again."""
        with self.changes() as tx:
            app = self.directory.app(name, tx)
            tx.authorise(Action.MANAGE_APP, Scope(apps=frozenset({app["id"]})))
            health = tx.get(APP_HEALTH, app["id"])
            if not health or not health.get("quarantined"):
                raise InvalidInput("APP", f"{name} is not quarantined")
            tx.put(APP_HEALTH, app["id"], {**health, "quarantined": False, "consecutive_failures": 0, "resumed_at": utc_now_iso()})
            tx.audit("app.resume", name, {"quarantined": True, "reason": health.get("reason")}, {"quarantined": False})
            return self.reads.status_of(app)

    def retry(self, *, app_name: str | None = None, login: str | None = None) -> int:
        """Queue failed accounts again (all, or of one app and/or one user). Returns how many."""
        with self.changes() as tx:
            app_id = self.directory.app(app_name, tx)["id"] if app_name else None
            tx.authorise(Action.MANAGE_APP, Scope(apps=frozenset({app_id} if app_id else self.store.all(APPS))))
            user_id = self.directory.user_id(login, tx) if login else None
            if user_id is not None or app_id is not None:  # by index, not a scan of every account
                by, value = ("user", user_id) if user_id is not None else ("app", app_id)
                accounts: Iterable[dict[str, Any]] = [stored(tx, ACCOUNTS, k) for k in sorted(tx.lookup(ACCOUNTS, by, value))]
            else:
                accounts = self.store.all(ACCOUNTS).values()
            failed = [a for a in accounts if a.get("state") == "failed" and app_id in (None, a["app"]) and user_id in (None, a["user"])]
            if failed:
                tx.mark_dirty((a["app"], a["user"]) for a in failed)
                tx.audit("provisioning.retry", app_name or "*", None, {"user": login, "accounts": len(failed)})
        return len(failed)

    def assign(
        self,
        app_name: str,
        *,
        login: str | None = None,
        group: str | None = None,
        values: dict[str, Any] | None = None,
        priority: int | None = None,
    ) -> bool:
        """Assign an app to a user or a group, with app-specific ``values`` (mappings read them as
        ``assignment.<key>``) and, for a group, a ``priority`` (lower wins) for users several groups entitle.
        Returns False if nothing changed."""
        return self._set_assignment(app_name, login, group, assign=True, values=values, priority=priority)

    def unassign(self, app_name: str, *, login: str | None = None, group: str | None = None) -> bool:
        return self._set_assignment(app_name, login, group, assign=False)

    def _set_assignment(
        self,
        app_name: str,
        login: str | None,
        group_name: str | None,
        *,
        assign: bool,
        values: dict[str, Any] | None = None,
        priority: int | None = None,
    ) -> bool:
        if (login is None) == (group_name is None):
            raise InvalidInput("--user", "give exactly one of --user or --group")
        if priority is not None and (login is not None or priority < 0):
            raise InvalidInput("--priority", "is for group assignments: a whole number, 0 or more (lower wins)")
        if priority is not None:
            numbers.PRIORITY.check("--priority", priority)
        values = _validate_values(values or {})
        with self.changes() as tx:
            return self.set_assignment_in(tx, app_name, login, group_name, assign=assign, values=values, priority=priority)

    def set_assignment_in(
        self,
        tx: Change,
        app_name: str,
        login: str | None,
        group_name: str | None,
        *,
        assign: bool,
        values: dict[str, Any],
        priority: int | None = None,
    ) -> bool:
        """Set or remove one assignment inside ``tx`` (the arguments checked, it is authorised here): the step
        ``assign``/``unassign`` run, and a bulk change runs once a person.  False if nothing changed."""
        app = self.directory.app(app_name, tx)
        groups: frozenset[str]
        if login is not None:
            subject, target, groups = user_subject(self.directory.user_id(login, tx)), f"user:{login}", frozenset()
        else:
            assert group_name is not None  # exactly one of the two, checked above
            group_id = self.directory.group(group_name, tx)["id"]
            subject, target, groups = group_subject(group_id), f"group:{group_name}", frozenset({group_id})
        elsewhere = any(stored(tx, ASSIGNMENTS, k)["subject"] != subject for k in tx.lookup(ASSIGNMENTS, "app", app["id"]))
        tx.authorise(Action.ASSIGN_APP, Scope(apps=frozenset({app["id"]}), groups=groups, app_assigned_elsewhere=elsewhere))
        key = assignment_key(app["id"], subject)
        existing = tx.get(ASSIGNMENTS, key)
        if assign:
            doc = {
                "app": app["id"],
                "subject": subject,
                "created": existing["created"] if existing else utc_now_iso(),
                "values": {**(existing or {}).get("values", {}), **values},
                "priority": priority if priority is not None else (existing or {}).get("priority"),
            }
            doc["values"] = {k: v for k, v in doc["values"].items() if v != ""}  # KEY= clears a value
            if existing == doc:
                return False
            tx.put(ASSIGNMENTS, key, doc)
            before = {k: existing.get(k) for k in ("values", "priority")} if existing else None
            tx.audit("app.assign", app["name"], before, {"subject": target, "values": doc["values"], "priority": doc["priority"]})
        else:
            if existing is None:
                return False
            tx.delete(ASSIGNMENTS, key)
            tx.audit("app.unassign", app["name"], None, {"subject": target})
        tx.mark_dirty((app["id"], uid) for uid in self.directory.users_of_subject(subject, tx))
        return True


def _validate_values(values: dict[str, Any]) -> dict[str, Any]:
    for key, value in values.items():
        check_text("--set", key, MAX_ATTRIBUTE_NAME)
        if not key.replace("_", "").isalnum() or not key[:1].isalpha():
            raise InvalidInput("--set", f"{key!r} is not a value name (letters, digits and _)")
        if isinstance(value, str):
            check_text(f"--set {key}", value, MAX_VALUE)
    return values


def _validate_scim(scim_url: str, token_env: str | None, token_secret: str | None = None) -> None:
    check_text("--scim-url", scim_url, MAX_URL)
    check_text("--token-env", token_env or "", MAX_ENV_NAME)
    validate_scim_url(scim_url)
    if token_env and token_secret:
        raise InvalidInput("--token-secret", "give --token-env or --token-secret, not both")
    if token_secret:
        validate_name("--token-secret", token_secret)
        return
    if not token_env:
        raise InvalidInput("--token-env", "name the environment variable that holds the bearer token (or --token-secret NAME)")
    validate_env_name("--token-env", token_env, "the bearer token")


def _validate_emails(emails: list[str]) -> list[str]:
    for email in emails:
        check_text("--notify", email, MAX_EMAIL)
        if "@" not in email or " " in email:
            raise InvalidInput("--notify", f"{email!r} is not an email address")
    return emails


def _capabilities(kind: AppKind, settings: dict[str, Any]) -> list[str]:
    capabilities = list(DEFAULT_CAPABILITIES[kind])
    if settings.get("delete_after_days") is not None:
        capabilities.append(Capability.DELETE)
    if settings.get("push_groups"):
        capabilities.append(Capability.PUSH_GROUPS)
    if settings.get("sync_password"):
        capabilities.append(Capability.SYNC_PASSWORD)
    return [c.value for c in capabilities]


def _checked_target(target: dict[str, Any]) -> dict[str, Any]:
    """An LDAP app's connection as changed, checked whole (an AD app over plain LDAP, say, is refused)."""
    return validate_ldap_target(**target, password_named=bool(target.get("password_env") or target.get("password_secret")))


def _app_config(app: dict[str, Any]) -> dict[str, Any]:
    """What the audit trail records of an app: its configuration (the token's variable name, never a token)."""
    config: dict[str, Any] = {k: app[k] for k in ("kind", "scim_url", "token_env", "notify", "settings", "ldap") if k in app}
    if (config.get("ldap") or {}).get("ca_certificates"):
        config["ldap"] = shown_settings(config["ldap"])
    if app.get("token_secret"):  # the name of a secret the server holds, never its value
        config["token_secret"] = app["token_secret"]
    return config
