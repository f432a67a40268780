"""One bound ldap3 connection (:class:`Session`): connect, TLS, bind, paged search, read, write, and
every failure as :class:`~provtui.connectors.ldap.errors.LdapError` with the password scrubbed."""

from __future__ import annotations

import contextlib
import math
import os
import re
import ssl
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Self

import ldap3
from ldap3.core import exceptions as ldap_exc

from provtui.connectors.ldap.errors import LdapConflict, LdapError
from provtui.connectors.ldap.settings import LdapSettings

# Result codes worth retrying: timeLimitExceeded, busy, unavailable, other (AD's catch-all for
# transient faults), and the client-side serverDown/timeout/connectError.
_RETRYABLE_CODES = frozenset({3, 51, 52, 80, 81, 85, 91})


def _password(settings: LdapSettings) -> str:
    if settings.password is not None:  # a server's secret, resolved when the connector was built
        if settings.password == "":
            raise LdapError(f"the secret holding the password of {settings.bind_dn} is empty")
        return settings.password
    if settings.password_secret:
        raise LdapError(f"secret {settings.password_secret} (the password of {settings.bind_dn}) is not held by this server")
    password = os.environ.get(settings.password_env)
    if password is None:
        raise LdapError(f"environment variable {settings.password_env} is not set (it should hold the password of {settings.bind_dn})")
    if password == "":
        # An empty simple-bind password is an *unauthenticated* bind (RFC 4513 §5.1.2): refuse it.
        raise LdapError(f"environment variable {settings.password_env} is empty (it should hold the password of {settings.bind_dn})")
    return password


class Session:
    """One bound connection; every failure leaves as LdapError with the password scrubbed."""

    def __init__(self, settings: LdapSettings, *, read_only: bool = True) -> None:
        self.settings = settings
        self.read_only = read_only
        self._password = _password(settings)
        self._secrets: list[str] = [self._password]  # scrubbed from every message
        self._conn: ldap3.Connection | None = None

    def __enter__(self) -> Self:
        settings = self.settings
        use_ssl = settings.tls == "ldaps" or settings.uri.lower().startswith("ldaps://")
        tls = None
        if use_ssl or settings.tls == "starttls":
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=settings.ca_file, ca_certs_data=settings.ca_certificates)
        try:
            server = ldap3.Server(settings.uri.rstrip("/"), use_ssl=use_ssl, tls=tls, get_info=ldap3.NONE, connect_timeout=settings.timeout)
            conn = ldap3.Connection(
                server,
                user=settings.bind_dn,
                password=self._password,
                read_only=self.read_only,
                auto_referrals=False,
                # ldap3 packs receive_timeout into SO_RCVTIMEO as whole seconds: a float breaks it.
                receive_timeout=max(1, math.ceil(settings.timeout)),
                raise_exceptions=False,
                client_strategy=ldap3.SYNC,
                # AD hands a big member list back in ranges (member;range=0-1499); source.py follows them itself.
                # ldap3's own auto-range merges the rest into a plain `member` beside the first range's key, which
                # the follow-up then read as a second first range: values were lost (issue #17, 9).
                auto_range=False,
            )
        except ldap_exc.LDAPException as exc:
            raise self._from_exception(exc, "configure the connection to") from None
        self._conn = conn
        try:
            self._call(conn.open, "connect to")
            if settings.tls == "starttls" and not use_ssl and not self._call(conn.start_tls, "start TLS with"):
                raise self._from_result("start TLS with", conn.result)
            if not self._call(conn.bind, "bind to"):
                raise self._from_result(f"bind as {settings.bind_dn} to", conn.result)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(ldap_exc.LDAPException, OSError):  # a broken socket: nothing left to do
                conn.unbind()

    # ----------------------------------------------------------------- search

    def paged_search(
        self, base: str, search_filter: str, attributes: Sequence[str], scope: str = ldap3.SUBTREE
    ) -> Iterator[tuple[str, dict[str, list[Any]]]]:
        """(dn, raw attributes) of every entry, one page at a time; referrals are skipped."""
        conn = self._require()
        cookie: bytes | None = None
        while True:
            ok = self._call(
                lambda cookie=cookie: conn.search(
                    base,
                    search_filter,
                    search_scope=scope,
                    attributes=list(attributes),
                    paged_size=self.settings.page_size,
                    paged_criticality=True,
                    paged_cookie=cookie,
                    time_limit=max(1, int(self.settings.timeout)),
                ),
                "search",
            )
            result = conn.result or {}
            if not ok and result.get("result") not in (0, None):
                raise self._from_result(f"search {base} with {search_filter} on", result)
            for response in conn.response or []:
                if response.get("type") == "searchResEntry":
                    yield response["dn"], response.get("raw_attributes") or {}
            try:
                cookie = result["controls"]["1.2.840.113556.1.4.319"]["value"]["cookie"]
            except (KeyError, TypeError):
                cookie = None
            if not cookie:
                return

    def read_entry(self, dn: str, search_filter: str, attributes: Sequence[str]) -> dict[str, list[Any]] | None:
        """One entry's raw attributes if it exists and matches ``search_filter``, else None."""
        conn = self._require()
        ok = self._call(lambda: conn.search(dn, search_filter, search_scope=ldap3.BASE, attributes=list(attributes)), "search")
        result = conn.result or {}
        if not ok:
            if result.get("result") in (32, 34):  # noSuchObject, invalidDNSyntax: a dangling reference
                return None
            if result.get("result") not in (0, None):
                raise self._from_result(f"read {dn} on", result)
        for response in conn.response or []:
            if response.get("type") == "searchResEntry":
                return response.get("raw_attributes") or {}
        return None

    def find_entry(self, dn: str, search_filter: str, attributes: Sequence[str]) -> tuple[str, dict[str, list[Any]]] | None:
        """Like ``read_entry``, with the entry's DN as the server spells it (``dn`` may be AD's ``<GUID=...>``)."""
        conn = self._require()
        ok = self._call(lambda: conn.search(dn, search_filter, search_scope=ldap3.BASE, attributes=list(attributes)), "search")
        result = conn.result or {}
        if not ok:
            if result.get("result") in (32, 34):  # noSuchObject, invalidDNSyntax: not there (any more)
                return None
            if result.get("result") not in (0, None):
                raise self._from_result(f"read {dn} on", result)
        for response in conn.response or []:
            if response.get("type") == "searchResEntry":
                return response["dn"], response.get("raw_attributes") or {}
        return None

    def dir_sync(
        self, base: str, search_filter: str, attributes: Sequence[str], cookie: bytes | None
    ) -> tuple[list[dict[str, Any]], bytes, bool]:
        """One DirSync round (AD's LDAP_SERVER_DIRSYNC control): the objects changed since ``cookie`` (each a
        response with its extended ``<GUID=...>;<SID=...>;DN`` and the changed attributes), the new cookie, and
        whether more are waiting."""
        from ldap3.core.exceptions import LDAPExtensionError

        conn = self._require()
        sync = conn.extend.microsoft.dir_sync(base, search_filter, attributes=list(attributes), cookie=cookie, incremental_values=False)
        try:
            entries = self._call(sync.loop, "read the changes (DirSync) of")
        except LDAPExtensionError as error:
            raise LdapError(f"read the changes (DirSync) of {self.settings.uri}: {error}") from None
        return [e for e in entries if e.get("type") == "searchResEntry"], sync.cookie, bool(sync.more_results)

    # ----------------------------------------------------------------- errors

    def _require(self) -> ldap3.Connection:
        if self._conn is None:
            raise LdapError("not connected")
        return self._conn

    def _call(self, function: Any, action: str) -> Any:
        try:
            return function()
        except ldap_exc.LDAPException as exc:
            raise self._from_exception(exc, action) from None

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "[redacted]")
        return text

    def write(self, action: str, operation: Any, *, secret: str | None = None, accept: Iterable[int] = ()) -> int:
        """Run one write (a callable on the connection); return the result code when it is 0 or
        in ``accept``, raise LdapError (LdapConflict for entryAlreadyExists) otherwise."""
        conn = self._require()
        if secret:
            self._secrets.append(secret)
        try:
            self._call(lambda: operation(conn), action)
            code = (conn.result or {}).get("result")
            if code == 0 or code in set(accept):
                return code
            raise self._from_result(f"{action} on", conn.result)
        finally:
            if secret:
                self._secrets.remove(secret)

    def _from_result(self, action: str, result: Mapping[str, Any] | None) -> LdapError:
        result = result or {}
        code = result.get("result")
        description = result.get("description") or "error"
        detail = str(result.get("message") or "").strip()
        message = f"{action} {self.settings.uri}: {description} ({code})" + (f": {detail}" if detail else "")
        kind = LdapConflict if code == 68 else LdapError  # entryAlreadyExists
        return kind(self._scrub(message), retryable=code in _RETRYABLE_CODES, result_code=code)

    def _from_exception(self, exc: ldap_exc.LDAPException, action: str) -> LdapError:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, ldap_exc.LDAPCommunicationError | ldap_exc.LDAPResponseTimeoutError | ldap_exc.LDAPMaximumRetriesError):
            # Refused, unreachable, reset, timed out: the server may come back. A certificate
            # that does not verify will not fix itself.
            retryable = not re.search(r"certificate|ssl|tls", detail, re.IGNORECASE)
        else:
            retryable = False  # bad filter, DN, attribute, TLS setup...: configuration
        code = getattr(exc, "result", None)
        if isinstance(code, int) and code in _RETRYABLE_CODES:
            retryable = True
        hint = ""
        if re.search(r"certificate verify failed", detail, re.IGNORECASE):
            hint = "; if the directory's certificate is from your own CA, give it with --ca-file PEM (`source update` / `app update`)"
        return LdapError(
            self._scrub(f"could not {action} {self.settings.uri} ({type(exc).__name__}: {detail}){hint}"),
            retryable=retryable,
            result_code=code if isinstance(code, int) else None,
        )
