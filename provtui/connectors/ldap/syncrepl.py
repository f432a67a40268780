"""A live session to an OpenLDAP directory: RFC 4533 content synchronisation, refreshAndPersist.

ldap3 has no syncrepl consumer; python-ldap's ``ldap.syncrepl.SyncreplConsumer`` is the one the
OpenLDAP project's own Python tools use, so this module is the one place provtui speaks python-ldap.

The provider's messages are turned into :class:`LiveBatch` es, one per cookie: everything the provider
said before handing over a cookie is what that cookie covers, so a batch applied in the same
transaction as its cookie is applied exactly once — a consumer that restarts resumes from the stored
cookie and is sent only what came after.  In the refresh phase (catching up after a restart, or the
first read with no cookie) entries arrive without cookies and the batch ends at the phase's cookie; a
present phase (the provider listing who is still there) ends with ``present_done``, after which entries
neither presented nor changed are gone (RFC 4533 §3.3.1).  Errors leave as :class:`LdapError`, the
password scrubbed, ``retryable`` for a server that went away.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from provtui.connectors.ldap.errors import LdapError
from provtui.connectors.ldap.session import _password
from provtui.connectors.ldap.settings import LdapSettings

SYNC_REQUEST_CONTROL = "1.3.6.1.4.1.4203.1.9.1.1"  # RFC 4533's Sync Request Control: the provider supports syncrepl
POLL_SECONDS = 0.5  # how often a waiting session looks at its stop flag


@dataclass
class LiveBatch:
    """What a directory said changed, up to a point it named: apply all of it with ``cookie``, or none.

    ``changed``: (dn, raw attributes) of entries added, modified or renamed (the raw attributes include the
    entry's id); ``deleted``: ids of entries gone (or moved out of the base or the filter); ``presented``/
    ``present_done``: a present phase's ids, and whether it ended (then whoever is neither presented nor
    changed is gone); ``refreshing``: sent while catching up, before the directory said it had; ``full``: the
    first read of everyone (no cookie before it); ``stream``: "users" or "groups" (syncrepl's two searches),
    "dirsync" (AD's one, people and groups).  ``received``: when its first message arrived (for the lag).
    """

    stream: str
    cookie: str | None = None
    changed: list[tuple[str, dict[str, list[Any]]]] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    presented: set[str] = field(default_factory=set)
    present_done: bool = False
    refreshing: bool = False
    full: bool = False
    received: float = 0.0
    groups_changed: bool = False  # (DirSync) a group changed among the people: the groups are read again

    def __bool__(self) -> bool:
        return bool(self.changed or self.deleted or self.present_done)


def python_ldap() -> Any:
    """python-ldap, or an LdapError that says how to get it (it builds against libldap: an optional dependency)."""
    try:
        import ldap
        import ldap.syncrepl  # noqa: F401
    except ImportError:
        raise LdapError(
            "live sources need python-ldap (pip install 'provtui[live]'; it builds against libldap and libsasl: "
            "apt-get install libldap-dev libsasl2-dev)"
        ) from None
    return ldap


class SyncreplStream:
    """One refreshAndPersist search: ``run(deliver, stopped)`` until ``stopped()`` or the connection fails.

    ``deliver(batch)`` applies a batch (durably, with its cookie) before returning; its exception ends the
    session without taking the cookie, so what it did not apply is sent again when the session starts over.
    """

    def __init__(
        self, settings: LdapSettings, *, stream: str, base: str, search_filter: str, attributes: Sequence[str], cookie: str | None
    ) -> None:
        self.settings, self.stream, self.base, self.search_filter = settings, stream, base, search_filter
        self.attributes = list(attributes)
        self.cookie = cookie
        self._password = _password(settings)

    def run(self, deliver: Callable[[LiveBatch], None], stopped: Callable[[], bool], on_live: Callable[[], None] = lambda: None) -> None:
        ldap = python_ldap()
        consumer = self._connect(ldap)
        try:
            consumer.pending = LiveBatch(self.stream, refreshing=True, full=self.cookie is None)
            consumer.pending_present = False
            msgid = consumer.syncrepl_search(
                self.base,
                ldap.SCOPE_SUBTREE,
                mode="refreshAndPersist",
                cookie=self.cookie,
                filterstr=self.search_filter,
                attrlist=self.attributes,
            )
            consumer.deliver, consumer.on_live, consumer.stream_owner = deliver, on_live, self
            while not stopped():
                try:
                    if not consumer.syncrepl_poll(msgid=msgid, timeout=POLL_SECONDS):
                        raise LdapError(f"{self.settings.uri} ended the live search of {self.base}", retryable=True)
                except ldap.TIMEOUT:
                    continue
        except ldap.LDAPError as error:
            raise self._error(ldap, error, "keep the live search of") from None
        finally:
            with contextlib.suppress(Exception):
                consumer.unbind_s()

    def _connect(self, ldap: Any) -> Any:
        settings = self.settings
        consumer = _consumer_class(ldap)(settings.uri.rstrip("/"), bytes_mode=False)
        consumer.set_option(ldap.OPT_NETWORK_TIMEOUT, settings.timeout)
        consumer.set_option(ldap.OPT_REFERRALS, 0)
        tls = settings.tls == "starttls" or settings.tls == "ldaps" or settings.uri.lower().startswith("ldaps://")
        if tls:
            consumer.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
            if settings.ca_file:
                consumer.set_option(ldap.OPT_X_TLS_CACERTFILE, settings.ca_file)
            if settings.ca_certificates:  # libldap reads a CA from a file: a private one, gone once read
                with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as handle:
                    handle.write(settings.ca_certificates)
                try:
                    consumer.set_option(ldap.OPT_X_TLS_CACERTFILE, handle.name)
                    consumer.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
                finally:
                    os.unlink(handle.name)
            else:
                consumer.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
        try:
            if settings.tls == "starttls" and not settings.uri.lower().startswith("ldaps://"):
                consumer.start_tls_s()
            consumer.simple_bind_s(settings.bind_dn, self._password)
        except ldap.LDAPError as error:
            raise self._error(ldap, error, f"bind as {settings.bind_dn} to") from None
        return consumer

    def _error(self, ldap: Any, error: Exception, action: str) -> LdapError:
        info = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
        detail = " ".join(str(info.get("desc") or type(error).__name__).split())
        more = str(info.get("info") or "").strip()
        message = f"{action} {self.settings.uri}: {detail}" + (f": {more}" if more else "")
        if isinstance(error, ldap.SIZELIMIT_EXCEEDED):  # a refresh is one search of everyone: paging does not apply
            message += f"; a live read needs {self.settings.bind_dn} to have no size limit (OpenLDAP: limits dn.exact=... size=unlimited)"
        if self._password:
            message = message.replace(self._password, "[redacted]")
        retryable = isinstance(error, ldap.SERVER_DOWN | ldap.TIMEOUT | ldap.BUSY | ldap.UNAVAILABLE | ldap.CONNECT_ERROR)
        return LdapError(message, retryable=retryable, result_code=info.get("result"))


@functools.cache
def _consumer_class(ldap: Any) -> type:
    """python-ldap's LDAPObject with the SyncreplConsumer callbacks filling the stream's batch (made once)."""
    from ldap.ldapobject import SimpleLDAPObject
    from ldap.syncrepl import SyncreplConsumer

    class Consumer(SimpleLDAPObject, SyncreplConsumer):  # type: ignore[misc]
        pending: LiveBatch
        pending_present: bool
        deliver: Callable[[LiveBatch], None]
        on_live: Callable[[], None]
        stream_owner: SyncreplStream

        def _note(self) -> LiveBatch:
            if not self.pending.received:
                self.pending.received = time.time()
            return self.pending

        def syncrepl_get_cookie(self) -> str | None:
            return self.stream_owner.cookie if hasattr(self, "stream_owner") else None

        def syncrepl_entry(self, dn: str, attrs: dict[str, list[Any]], uuid: str) -> None:
            self._note().changed.append((dn, attrs))

        def syncrepl_delete(self, uuids: list[str]) -> None:
            self._note().deleted.update(u.lower() for u in uuids)

        def syncrepl_present(self, uuids: list[str] | None, refreshDeletes: bool = False) -> None:  # noqa: N803 (python-ldap's name)
            batch = self._note()
            if uuids is not None:
                batch.presented.update(u.lower() for u in uuids)
                self.pending_present = True
            elif batch.full or (not refreshDeletes and self.pending_present):
                # the present phase ended, or the first read of everyone did: who was not presented is gone
                batch.present_done = True

        def syncrepl_refreshdone(self) -> None:
            self.pending.refreshing = False
            self.on_live()

        def syncrepl_set_cookie(self, cookie: str) -> None:
            batch = self.pending
            batch.cookie = cookie
            refreshing = batch.refreshing
            if batch or batch.full:
                self.deliver(batch)
            self.stream_owner.cookie = cookie
            self.pending = LiveBatch(self.stream_owner.stream, refreshing=refreshing)
            self.pending_present = False

    return Consumer


def supports_syncrepl(settings: LdapSettings) -> bool:
    """Whether the directory's root DSE lists the Sync Request Control (OpenLDAP with syncprov does)."""
    from provtui.connectors.ldap.session import Session

    with Session(settings) as session:
        root = session.read_entry("", "(objectClass=*)", ["supportedControl"])
    values = {str(v.decode() if isinstance(v, bytes) else v) for v in (root or {}).get("supportedControl", [])}
    return SYNC_REQUEST_CONTROL in values
