"""The Samba DC process: its address, directory (a copy of the template), start, seeding and stop."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Self

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.dn import escape_rdn, to_dn

from provtui.testing.samba.provision import (
    ADMIN_DN,
    BASE_DN,
    DOMAIN,
    INSTALL_HINT,
    LOG_TAIL_CHARS,
    REALM,
    SambaError,
    cache_root,
    find_binary,
    new_password,
    populate,
    samba_available,
    smb_conf,
)
from provtui.testing.samba.tls import make_server_certificate
from provtui.testing.server_process import ServerProcess

LDAP_PORTS = (389, 636, 3268, 3269)  # LDAP, LDAPS and the global catalog's two: Samba cannot move any of them
DOMAIN_USERS_RID = 513  # every new user's primaryGroupID; Domain Users never lists them in ``member``
UF_ACCOUNTDISABLE = 0x0002
UF_NORMAL_ACCOUNT = 0x0200
TREE_DELETE_OID = "1.2.840.113556.1.4.805"  # deletes an entry with its subtree in one request

_CHANGE_OPS = (ldap3.MODIFY_ADD, ldap3.MODIFY_DELETE, ldap3.MODIFY_REPLACE, ldap3.MODIFY_INCREMENT)


def encode_password(password: str) -> bytes:
    """The value AD's ``unicodePwd`` takes: the password in double quotes, UTF-16-LE (set only over TLS)."""
    return f'"{password}"'.encode("utf-16-le")


def guid_string(raw: bytes) -> str:
    """objectGUID's 16 bytes as AD writes it (little-endian fields): ``5841b156-69f9-47e0-aa7e-948bf046bdc3``."""
    return str(uuid.UUID(bytes_le=raw))


def ldap_ports_free(ip: str) -> bool:
    """Whether nothing listens on ``ip``'s LDAP ports (a listener on 0.0.0.0 counts: Linux refuses our bind)."""
    for port in LDAP_PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed DC's TIME_WAIT is no obstacle
            try:
                probe.bind((ip, port))
            except OSError:
                return False
    return True


def free_loopback_ip(first: int = 20, step: int = 1) -> str:
    """The first of 127.0.0.first, first+step, ... whose LDAP ports are free.

    Every DC needs an address of its own (its ports are fixed); Linux answers on all of 127.0.0.0/8 without any
    configuration. Concurrent callers that use disjoint series (first = 20 + worker, step = workers) never race.
    """
    for host in range(first, 255, max(step, 1)):
        if ldap_ports_free(f"127.0.0.{host}"):
            return f"127.0.0.{host}"
    raise SambaError(f"no 127.0.0.x (from x={first}, every {step}) has the LDAP ports {LDAP_PORTS} free")


class SambaDC(ServerProcess):
    LOG_NAME = "samba.log"  # -i logs to standard output
    """A Samba 4 AD domain controller for EXAMPLE.TEST (``DC=example,DC=test``) serving LDAP and LDAPS on ``ip``.

    Only the LDAP service runs; its certificate comes from a CA of its own (``ca_file``). The directory is a copy
    of a template provisioned once per machine (``cache=False``, or ``PROVTUI_SAMBA_CACHE=off``: provision this
    one). ``admin_password`` defaults to a random one. Use as a context manager, or start()/stop(). The seeding
    helpers share one admin connection: not for use from several threads at once.
    """

    realm = REALM
    domain = DOMAIN
    base_dn = BASE_DN
    admin_dn = ADMIN_DN

    def __init__(
        self, ip: str | None = None, admin_password: str | None = None, *, cache: bool = True, keep_directory: bool = False
    ) -> None:
        self.ip = ip or free_loopback_ip()
        self.admin_password = admin_password or new_password()
        self.cache = cache
        super().__init__(keep_directory=keep_directory)
        self.timings: dict[str, float] = {}  # seconds: "provision" (0 from the cache), "copy", "ldaps"
        self._admin: ldap3.Connection | None = None

    def __repr__(self) -> str:
        return f"SambaDC(ldaps_uri={self.ldaps_uri!r}, running={self.running})"

    @property
    def ldap_uri(self) -> str:
        return f"ldap://{self.ip}"

    @property
    def ldaps_uri(self) -> str:
        return f"ldaps://{self.ip}"

    @property
    def users_dn(self) -> str:
        return f"CN=Users,{self.base_dn}"

    @property
    def ca_file(self) -> str:
        """The PEM file of the DC's own CA: the one certificate a client must trust."""
        if self.directory is None:
            raise SambaError("the DC has not been started: it has no CA yet")
        return str(self.directory / "tls" / "ca.pem")

    # ----------------------------------------------------------------- life cycle

    def start(self, timeout: float = 60.0) -> Self:
        """Copy (or provision) the domain, make the certificates, spawn samba, wait until LDAPS takes a bind."""
        if self.running:
            return self
        samba = find_binary("samba")
        if samba is None or not samba_available():
            raise SambaError(f"Samba is not installed ({INSTALL_HINT})")
        if not ldap_ports_free(self.ip):
            raise SambaError(f"a port of {LDAP_PORTS} on {self.ip} is taken (another DC or LDAP server?)")
        try:
            template_password = self._prepare_directory()
            self._spawn(samba)
            started = time.monotonic()
            self._wait_ready(started + timeout, template_password)
            self.timings["ldaps"] = time.monotonic() - started
            if template_password != self.admin_password:
                with self.connection(password=template_password) as connection:
                    self.set_password(self.admin_dn, self.admin_password, connection=connection)
        except BaseException:
            self.stop()
            raise
        return self

    def resume(self, timeout: float = 60.0) -> None:
        """Start a paused DC again on its address, with its data."""
        if self.running:
            return
        samba = find_binary("samba")
        assert samba is not None and self.directory is not None
        self._before_resume()
        self._spawn(samba)
        self._wait_ready(time.monotonic() + timeout, self.admin_password)

    def _before_stop(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(LDAPException, OSError):
                admin.unbind()

    # ----------------------------------------------------------------- connections

    def tls(self) -> ldap3.Tls:
        """ldap3's TLS settings that trust the DC's CA only and check its address (for LDAPS and STARTTLS)."""
        return ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self.ca_file)

    def connection(self, user: str | None = None, password: str | None = None) -> ldap3.Connection:
        """A bound LDAPS connection verifying the CA, as the Administrator unless ``user``; use it as a context manager."""
        server = ldap3.Server(self.ldaps_uri, use_ssl=True, tls=self.tls(), get_info=ldap3.NONE, connect_timeout=5)
        password = password if password is not None else (self.admin_password if user is None else None)
        return ldap3.Connection(
            server,
            user=user or self.admin_dn,
            password=password,
            auto_bind=ldap3.AUTO_BIND_NO_TLS,
            receive_timeout=30,
            raise_exceptions=True,
        )

    def _connection(self) -> ldap3.Connection:
        if self._admin is None or self._admin.closed:
            self._admin = self.connection()
        return self._admin

    # ----------------------------------------------------------------- data

    def add_ou(self, name: str, parent: str | None = None) -> str:
        """Add ``OU=<name>`` under ``parent`` (default: the domain) and return its DN."""
        dn = f"OU={escape_rdn(name)},{parent or self.base_dn}"
        self._connection().add(dn, ["top", "organizationalUnit"], {"ou": name})
        return dn

    def add_user(
        self,
        parent_dn: str,
        sam: str,
        given: str,
        surname: str,
        *,
        password: str | None = None,
        disabled: bool = False,
        display_name: str | None = None,
        upn: str | None = None,
        **extra: Any,
    ) -> tuple[str, str]:
        """Add a user (CN "<given> <surname>" unless ``cn=`` is in ``extra``); return (DN, objectGUID as a string).

        The account is enabled unless ``disabled``, with or without a password (Samba allows both); ``extra``
        adds or overrides attributes (None drops one). Samba sets primaryGroupID 513 (Domain Users) itself.
        """
        cn = extra.pop("cn", None) or f"{given} {surname}"
        attributes: dict[str, Any] = {
            "cn": cn,
            "sAMAccountName": sam,
            "givenName": given,
            "sn": surname,
            "displayName": display_name or f"{given} {surname}",
            "userPrincipalName": upn or f"{sam}@{self.realm.lower()}",
            "userAccountControl": UF_NORMAL_ACCOUNT | (UF_ACCOUNTDISABLE if disabled else 0),
        }
        if password is not None:
            attributes["unicodePwd"] = encode_password(password)
        attributes.update(extra)
        dn = f"CN={escape_rdn(cn)},{parent_dn}"
        connection = self._connection()
        connection.add(dn, ["top", "person", "organizationalPerson", "user"], {k: v for k, v in attributes.items() if v is not None})
        connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["objectGUID"])
        return dn, guid_string(connection.response[0]["raw_attributes"]["objectGUID"][0])

    def add_group(self, parent_dn: str, name: str, members: Iterable[str] = (), **extra: Any) -> str:
        """Add a group (a global security group, AD's default; ``groupType=`` in ``extra`` for another) and return its DN."""
        attributes: dict[str, Any] = {"cn": name, "sAMAccountName": name, **extra}
        if members := list(members):
            attributes["member"] = members
        dn = f"CN={escape_rdn(name)},{parent_dn}"
        self._connection().add(dn, ["top", "group"], {k: v for k, v in attributes.items() if v is not None})
        return dn

    def delete(self, dn: str) -> None:
        """Delete an entry and everything under it (one request, with AD's tree-delete control)."""
        self._connection().delete(dn, controls=[(TREE_DELETE_OID, True, None)])

    def rename(self, dn: str, new_rdn: str, *, parent: str | None = None) -> str:
        """Rename ``dn`` to ``new_rdn`` (e.g. ``CN=New Name``), moving it under ``parent`` if given; return the new DN."""
        self._connection().modify_dn(dn, new_rdn, new_superior=parent)
        return f"{new_rdn},{parent or ','.join(to_dn(dn)[1:])}"

    def modify(self, dn: str, changes: Mapping[str, Any]) -> None:
        """Apply ldap3-style ``{attr: [(MODIFY_ADD, [values])]}``; a plain value or list replaces the attribute.

        A ``unicodePwd`` given as a str is encoded as AD wants it.
        """
        prepared: dict[str, Any] = {}
        for attribute, change in changes.items():
            if _is_ldap3_change(change):
                prepared[attribute] = [change] if isinstance(change, tuple) else change
            else:
                values = list(change) if isinstance(change, list | tuple | set) else ([] if change is None else [change])
                if attribute.lower() == "unicodepwd":
                    values = [encode_password(v) if isinstance(v, str) else v for v in values]
                prepared[attribute] = [(ldap3.MODIFY_REPLACE, values)]
        self._connection().modify(dn, prepared)

    def set_password(self, dn: str, password: str, *, connection: ldap3.Connection | None = None) -> None:
        """Reset ``dn``'s password (an administrator's replace of unicodePwd, not a user's change)."""
        (connection or self._connection()).modify(dn, {"unicodePwd": [(ldap3.MODIFY_REPLACE, [encode_password(password)])]})

    # ----------------------------------------------------------------- internals

    def _prepare_directory(self) -> str:
        """Make the DC's directory (a copy of the template), its certificates and its smb.conf.

        Returns the Administrator's password in that database, which start() then changes to ours if need be.
        """
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = Path(tempfile.mkdtemp(prefix="provtui-samba-"))  # short: Samba's Unix sockets live under it
        password, timings = populate(self.directory, self.admin_password, cache=self.cache)
        self.timings.update(timings)
        tls = make_server_certificate(self.directory / "tls", self.ip)
        (self.directory / "etc").mkdir(exist_ok=True)
        (self.directory / "etc" / "smb.conf").write_text(smb_conf(self.directory, self.ip, tls))
        return password

    def _spawn(self, samba: str) -> None:
        """Run ``samba -i -M single``: in the foreground, one process (its PID is samba's), logging to samba.log.

        From the main thread it is started through ``setpriv --pdeathsig TERM``, which then execs samba: a DC
        whose test process was killed outright (no finalizer ran) stops instead of holding its address for good.
        """
        assert self.directory is not None
        command = [samba, "-s", str(self.directory / "etc" / "smb.conf"), "-i", "-M", "single"]
        setpriv = shutil.which("setpriv")
        if setpriv and threading.current_thread() is threading.main_thread():  # the signal follows the forking thread
            command = [setpriv, "--pdeathsig", "TERM", "--", *command]
        self._spawn_process(command)

    def _wait_ready(self, deadline: float, password: str) -> None:
        """Bind over LDAPS, verifying the CA, until it works: this proves the listener, TLS and the database at once."""
        last_error = ""
        while time.monotonic() < deadline and self.running:
            # A fresh Server each time: ldap3 remembers a refused address as unavailable for seconds.
            server = ldap3.Server(self.ldaps_uri, use_ssl=True, tls=self.tls(), get_info=ldap3.NONE, connect_timeout=1)
            connection = ldap3.Connection(server, user=self.admin_dn, password=password, receive_timeout=2)
            try:
                if connection.bind():
                    return
                last_error = str(connection.result)
            except LDAPException as error:
                last_error = str(error)
            finally:
                with contextlib.suppress(LDAPException):
                    connection.unbind()
            time.sleep(0.05)
        code = self._process.poll() if self._process is not None else None
        reason = "did not take an LDAPS bind in time" if code is None else f"exited with code {code}"
        root = cache_root() if self.cache else None
        hint = f" (its database is a copy of a template in {root}: remove that if the log blames the database)" if root else ""
        log = self.log_text()[-LOG_TAIL_CHARS:] or "(none)"
        raise SambaError(f"samba on {self.ldaps_uri} {reason}{hint}; last attempt: {last_error or '-'}; its output:\n{log}")


def _is_ldap3_change(change: Any) -> bool:
    """Whether ``change`` is already ldap3's form: ``(op, values)`` or a list of such pairs."""
    pairs = [change] if isinstance(change, tuple) and len(change) == 2 and change[0] in _CHANGE_OPS else change
    return isinstance(pairs, list | tuple) and bool(pairs) and all(isinstance(p, tuple) and p and p[0] in _CHANGE_OPS for p in pairs)
