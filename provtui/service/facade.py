"""The one API that changes the directory: the facade the faces (CLI, console) call.

Every call: authorise the actor, validate (naming the field at fault), apply the change in one
unit of work (provtui.service.change), audit it, and queue the downstream accounts it affects.
A refused call writes nothing.  Each method is one part's (users, groups, apps, admins, settings,
provisioning, rules, imports, reads, reports, the store's health); the facade only builds them
and hands each the change factory, the read model and the actor's access.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from provtui.clock import utc_now_iso
from provtui.domain.errors import InvalidInput
from provtui.domain.mapping import ALWAYS
from provtui.domain.roles import Action, Grant, Role, Scope
from provtui.model.directory import Directory
from provtui.model.schema import ADMINS, META, QUERIED, Reader
from provtui.service.access_preview import AccessPreviews
from provtui.service.admins import Admins
from provtui.service.apps import Apps
from provtui.service.bulk import Bulk
from provtui.service.change import NO_SCOPE, Access, Changes
from provtui.service.groups import Groups
from provtui.service.imports import Importer
from provtui.service.provisioning import Provisioning
from provtui.service.reads import Reads
from provtui.service.reports import Reports
from provtui.service.rules import GroupRules
from provtui.service.scim_clients import ScimClients
from provtui.service.scim_inbound import ScimInbound
from provtui.service.secrets import Secrets
from provtui.service.settings import Settings
from provtui.service.store_health import RepairReport, check_store, missing_creation, repair_store
from provtui.service.users import Users
from provtui.service.validation import current_os_user, share_with_group
from provtui.store import StoreBackend, StoreDamaged
from provtui.store.chain import ChainReport
from provtui.store.files import store_files
from provtui.store.locations import as_location, open_store, shown, store_exists
from provtui.store.urls import is_url
from provtui.store.vault import SecretVault


class Service:
    def __init__(
        self, store: StoreBackend, actor: str | None = None, *, directory: Directory | None = None, vault: SecretVault | None = None
    ):
        self.store = store
        self.actor = actor or current_os_user()
        # A server serves many actors over one store: they share its read model (its caches follow every commit).
        self.directory = directory or Directory(store)
        self.access = Access(store, self.actor)
        self.changes = Changes(store, self.directory, self.access)
        parts = (self.changes, self.directory, self.access)
        self._rules = GroupRules(*parts)
        self.changes.reevaluate = self._rules.reevaluate
        self._reads = Reads(*parts, rules=self._rules)
        self._users = Users(*parts, reads=self._reads)
        self._groups = Groups(*parts, reads=self._reads)
        self.vault = vault  # a server's secrets (provtui.store.vault); None embedded
        self._apps = Apps(*parts, reads=self._reads, vault=vault)
        self._secrets = Secrets(*parts, vault=vault)
        self._scim_clients = ScimClients(*parts)
        self._settings = Settings(*parts, vault=vault)
        self._admins = Admins(*parts)
        self._provisioning = Provisioning(*parts)
        self._previews = AccessPreviews(*parts, users=self._users, apps=self._apps)
        self._importer = Importer(*parts, reads=self._reads, secrets=vault.lookup if vault is not None else None)
        self._rules.held_kinds["scim"] = lambda tx, held: self.scim_inbound().apply_held(tx, held)
        self._bulk = Bulk(*parts, reads=self._reads, rules=self._rules, users=self._users, groups=self._groups, apps=self._apps)

    # -- opening -------------------------------------------------------------------

    @classmethod
    def init(cls, path: str | Path, actor: str | None = None, *, group: str | None = None) -> Service:
        """A new store; the actor becomes its first super admin.

        With ``group``, the store is shared by that Unix group: the directory is
        group-owned and setgid (2770) and every file is created 0660; else all is private (0700/0600).
        """
        location = as_location(path)
        if is_url(location) and group is not None:
            raise InvalidInput("--group", "a PostgreSQL store is shared through its database's roles, not a Unix group")
        if store_exists(location):
            present = "its tables" if is_url(location) else ", ".join(store_files(Path(location)))
            raise InvalidInput(
                "--store",
                f"a store already exists at {shown(location)} ({present}): `provtui init` never starts "
                f"a new one over it (a damaged store: `provtui store check`)",
            )
        elif group is not None:
            share_with_group(Path(location), group)
        service = cls(open_store(location, create=True, queried=QUERIED), actor)
        with service.store.transaction() as tx:
            tx.put(META, "store", {"created": utc_now_iso(), "created_by": service.actor})
            tx.put(ADMINS, service.actor, {"user": service.actor, "grants": [Grant(Role.SUPER_ADMIN).to_doc()]})
            tx.audit(
                {
                    "actor": service.actor,
                    "action": "store.init",
                    "target": shown(location),
                    "before": None,
                    "after": {"admin": service.actor},
                }
            )
        return service

    @classmethod
    def open(cls, path: str | Path, actor: str | None = None) -> Service:
        store = open_store(as_location(path), queried=QUERIED)
        spot = missing_creation(store.tables, store.journal)  # type: ignore[attr-defined]  # both backends keep them
        if spot is not None:
            raise StoreDamaged(spot)
        return cls(store, actor)

    @staticmethod
    def check_store(path: str | Path) -> dict[str, Any]:
        """Every record of every store file checked, and the audit chain (provtui.service.store_health); the
        store need not open.  Open to anyone who can read the files: it shows no data, only where
        damage is."""
        return check_store(as_location(path))

    @classmethod
    def repair_store(cls, path: str | Path, actor: str | None = None) -> RepairReport:
        """Rebuild a damaged store from every intact record, after copying its files aside (super admin)."""
        if is_url(path):
            raise InvalidInput("--store", "a PostgreSQL store is repaired with PostgreSQL's own tools (its backups, pg_amcheck)")
        return repair_store(Path(path), actor or current_os_user(), cls)

    def migrate_store(self, to: str) -> dict[str, Any]:
        """Copy the whole store to ``to`` (a directory or a PostgreSQL URL holding no store; super admin)."""
        from provtui.service.store_migration import migrate_store

        return migrate_store(self.store, self.changes, shown(self.location), to)

    def record_refusal(self, request: str, reason: str) -> None:
        """Audit a request the actor was refused (``access.refused``): who asked for what, and why not.
        Needs no role: a refusal is recorded for whoever was refused."""
        with self.changes() as change:
            change.audit("access.refused", request, None, {"reason": reason})

    def refresh(self) -> bool:
        return self.store.refresh()

    def commit_signal(self) -> int | None:
        """A file descriptor that turns readable when any process commits, where the store notifies commits
        (PostgreSQL); None where it must be polled (``refresh``).  ``drain_commit_signal`` empties it."""
        signal = getattr(self.store, "commit_signal", None)
        return None if signal is None else int(signal())

    def drain_commit_signal(self) -> None:
        drain = getattr(self.store, "drain_commit_signal", None)
        if drain is not None:
            drain()

    @property
    def location(self) -> Path | str:
        """Where the store lives: its directory, or its database's URL (without a password)."""
        location: Path | str = getattr(self.store, "location", self.store.path)
        return location

    def reports(self) -> Reports:
        """The reports (read-only), once the actor may read."""
        self.access.read()
        return Reports(self.directory)

    def scim_inbound(self) -> ScimInbound:
        """What an inbound SCIM client does (its endpoint's; not served to admins)."""
        return ScimInbound(self.changes, self.directory, self.access, reads=self._reads)

    def importer(self) -> Importer:
        return self._importer

    def add_source(self, name: str, kind: str, settings: dict[str, Any]) -> dict[str, Any]:
        return self.importer().add_source(name, kind, settings)

    def list_sources(self) -> list[dict[str, Any]]:
        return self.importer().list_sources()

    def set_source_priority(self, attribute: str, sources: list[str]) -> dict[str, list[str]]:
        return self.importer().set_priority(attribute, sources)

    def import_csv(
        self,
        data: bytes,
        *,
        source: str | None = None,
        dry_run: bool = False,
        confirm: bool = False,
        full: bool = True,
        allow_empty: bool = False,
        strict: bool = False,
    ) -> dict[str, Any]:
        return self.importer().import_csv(
            data, source=source, dry_run=dry_run, confirm=confirm, full=full, allow_empty=allow_empty, strict=strict
        )

    def add_ldap_source(self, name: str, **settings: Any) -> dict[str, Any]:
        return self.importer().add_ldap_source(name, **settings)

    def update_ldap_source(self, name: str, **changes: Any) -> dict[str, Any]:
        return self.importer().update_ldap_source(name, **changes)

    def import_ldap(
        self, name: str, *, dry_run: bool = False, confirm: bool = False, full: bool | None = None, allow_empty: bool = False
    ) -> dict[str, Any]:
        return self.importer().import_ldap(name, dry_run=dry_run, confirm=confirm, full=full, allow_empty=allow_empty)

    def import_app(self, app: str, *, match: str = "userName", dry_run: bool = False, confirm: bool = False) -> dict[str, Any]:
        return self.importer().import_app(app, match=match, dry_run=dry_run, confirm=confirm)

    def import_app_groups(self, app: str, *, dry_run: bool = False) -> dict[str, Any]:
        return self.importer().import_app_groups(app, dry_run=dry_run)

    # -- who may do what -------------------------------------------------------------

    def grants(self, reader: Reader | None = None) -> list[Grant]:
        return self.access.grants(reader)

    def may(self, action: Action, scope: Scope = NO_SCOPE) -> bool:
        """Whether the actor may take ``action`` (the console greys out what it may not)."""
        return self.access.may(action, scope)

    def rules(self) -> GroupRules:
        return self._rules

    # -- the parts' methods ----------------------------------------------------------

    def create_user(
        self, login: str, email: str, first: str, last: str, extra: dict[str, Any] | None = None, *, activate: bool = False
    ) -> dict[str, Any]:
        return self._users.create_user(login, email, first, last, extra, activate=activate)

    def update_user(self, login: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self._users.update_user(login, changes)

    def change_state(self, login: str, action: str) -> dict[str, Any]:
        return self._users.change_state(login, action)

    def bulk_change(
        self,
        action: str,
        *,
        users: list[str] | None = None,
        where: str | None = None,
        group: str | None = None,
        to_group: str | None = None,
        app: str | None = None,
        preview: bool = False,
        confirm: bool = False,
    ) -> dict[str, Any]:
        return self._bulk.bulk_change(
            action, users=users, where=where, group=group, to_group=to_group, app=app, preview=preview, confirm=confirm
        )

    def create_group(self, name: str, description: str = "") -> dict[str, Any]:
        return self._groups.create_group(name, description)

    def rename_group(self, name: str, new_name: str) -> dict[str, Any]:
        return self._groups.rename_group(name, new_name)

    def push_group(self, group_name: str, app_name: str) -> dict[str, Any]:
        return self._groups.push_group(group_name, app_name)

    def unpush_group(self, group_name: str, app_name: str, *, delete: bool = False) -> dict[str, Any]:
        return self._groups.unpush_group(group_name, app_name, delete=delete)

    def add_members(self, group_name: str, logins: list[str]) -> list[str]:
        return self._groups.add_members(group_name, logins)

    def remove_members(self, group_name: str, logins: list[str]) -> list[str]:
        return self._groups.remove_members(group_name, logins)

    def move_member(self, login: str, leave: str, join: str) -> dict[str, Any]:
        return self._groups.move_member(login, leave, join)

    def move_preview(self, login: str, leave: str, join: str) -> dict[str, Any]:
        return self._groups.move_preview(login, leave, join)

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
        return self._apps.create_app(
            name, scim_url=scim_url, token_env=token_env, token_secret=token_secret, manual=manual, notify=notify, ldap=ldap, **settings
        )

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
        return self._apps.update_app(
            name, scim_url=scim_url, token_env=token_env, token_secret=token_secret, ldap=ldap, notify=notify, **settings
        )

    def set_secret(self, name: str, value: str) -> dict[str, Any]:
        return self._secrets.set_secret(name, value)

    def list_secrets(self) -> list[dict[str, Any]]:
        return self._secrets.list_secrets()

    def delete_secret(self, name: str) -> dict[str, Any]:
        return self._secrets.delete_secret(name)

    def add_scim_client(self, name: str) -> dict[str, Any]:
        return self._scim_clients.add(name)

    def list_scim_clients(self) -> list[dict[str, Any]]:
        return self._scim_clients.list()

    def rotate_scim_client(self, name: str) -> dict[str, Any]:
        return self._scim_clients.rotate(name)

    def remove_scim_client(self, name: str) -> dict[str, Any]:
        return self._scim_clients.remove(name)

    def scim_client_of_token(self, token: str) -> str | None:
        return self._scim_clients.client_of_token(token)

    def scim_client_of_digest(self, digest: str) -> str | None:
        return self._scim_clients.client_of_digest(digest)

    def mappings(self, app_name: str) -> list[dict[str, Any]]:
        return self._apps.mappings(app_name)

    def set_mapping(self, app_name: str, target: str, expr: str | None, on: str = ALWAYS) -> list[dict[str, Any]]:
        return self._apps.set_mapping(app_name, target, expr, on)

    def preview_payload(self, app_name: str, login: str) -> dict[str, Any]:
        return self._apps.preview_payload(app_name, login)

    def resume_app(self, name: str) -> dict[str, Any]:
        return self._apps.resume_app(name)

    def retry(self, *, app_name: str | None = None, login: str | None = None) -> int:
        return self._apps.retry(app_name=app_name, login=login)

    def set_config(self, key: str, value: str) -> dict[str, Any]:
        return self._settings.set_config(key, value)

    def config(self) -> dict[str, Any]:
        return self._settings.config()

    def assign(
        self,
        app_name: str,
        *,
        login: str | None = None,
        group: str | None = None,
        values: dict[str, Any] | None = None,
        priority: int | None = None,
    ) -> bool:
        return self._apps.assign(app_name, login=login, group=group, values=values, priority=priority)

    def unassign(self, app_name: str, *, login: str | None = None, group: str | None = None) -> bool:
        return self._apps.unassign(app_name, login=login, group=group)

    def unassign_preview(self, app_name: str, *, login: str) -> dict[str, Any]:
        return self._previews.unassign_preview(app_name, login=login)

    def lifecycle_preview(self, login: str, action: str) -> dict[str, Any]:
        return self._previews.lifecycle_preview(login, action)

    def grant(self, os_user: str, role: str, *, apps: Sequence[str] = (), groups: Sequence[str] = ()) -> dict[str, Any]:
        return self._admins.grant(os_user, role, apps=apps, groups=groups)

    def revoke(self, os_user: str, role: str) -> dict[str, Any]:
        return self._admins.revoke(os_user, role)

    def list_admins(self) -> list[dict[str, Any]]:
        return self._admins.list_admins()

    def password_targets(self, login: str) -> list[dict[str, Any]]:
        return self._users.password_targets(login)

    def check_password(self, password: str) -> str:
        return self._users.check_password(password)

    def record_password_change(self, login: str, results: list[dict[str, Any]], *, random: bool) -> None:
        return self._users.record_password_change(login, results, random=random)

    def complete_task(self, task_id: str) -> dict[str, Any]:
        return self._provisioning.complete_task(task_id)

    def provisioning_scope(self, reader: Reader | None = None) -> frozenset[str] | None:
        return self._provisioning.provisioning_scope(reader)

    def may_provision(self) -> bool:
        return self._provisioning.may_provision()

    def shared_store(self) -> bool:
        """Whether the store is one database that processes on several hosts share (PostgreSQL): `provtui
        worker`s provision it, and a console reads it by query."""
        return is_url(self.location)

    def warm_search(self) -> tuple[str, int] | None:
        """Bring the people's search rows into the database's memory, where it has a memory of its own to keep
        them in (PostgreSQL: provtui.store.postgres_search.warm_search_rows, which says how); a console does it as
        it opens.  It shows nothing and changes nothing (no role asked), on a connection of its own (no lock)."""
        warm = getattr(self.store, "warm_search", None)
        return None if warm is None else cast(tuple[str, int], warm())

    def user_view(self, login: str) -> dict[str, Any]:
        return self._reads.user_view(login)

    def user_history(self, login: str, limit: int = 60) -> list[dict[str, Any]]:
        return self._reads.user_history(login, limit)

    def prepare_history(self) -> None:
        return self._reads.prepare_history()

    def list_users(
        self,
        search: str = "",
        *,
        state: str | None = None,
        where: str | None = None,
        group: str | None = None,
        app: str | None = None,
        source: str | None = None,
        offset: int = 0,
        limit: int | None = None,
        count_up_to: int | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        return self._reads.list_users(
            search, state=state, where=where, group=group, app=app, source=source, offset=offset, limit=limit, count_up_to=count_up_to
        )

    def list_groups(self) -> list[dict[str, Any]]:
        return self._reads.list_groups()

    def app_assignments(self, app: str | None = None) -> list[dict[str, Any]]:
        return self._reads.app_assignments(app)

    def group_view(self, name: str, offset: int = 0, limit: int = 500) -> dict[str, Any]:
        return self._reads.group_view(name, offset, limit)

    def list_apps(self) -> list[dict[str, Any]]:
        return self._reads.list_apps()

    def task_list(self, *, open_only: bool = False) -> list[dict[str, Any]]:
        return self._reads.task_list(open_only=open_only)

    def pending_work(self) -> int:
        return self._reads.pending_work()

    def version(self) -> int:
        return self._reads.version()

    def user_count(self) -> int:
        return self._reads.user_count()

    def app_status(self, name: str | None = None) -> list[dict[str, Any]]:
        return self._reads.app_status(name)

    def audit(
        self,
        limit: int | None = None,
        *,
        actor: str | None = None,
        target: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        calls: bool = True,
        about: str | None = None,
    ) -> list[dict[str, Any]]:
        return self._reads.audit(limit, actor=actor, target=target, action=action, since=since, until=until, calls=calls, about=about)

    def audit_verify(self, head: str | None = None) -> ChainReport:
        return self._reads.audit_verify(head)

    def audit_head(self) -> dict[str, Any]:
        return self._reads.audit_head()
