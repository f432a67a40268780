"""The slapd process: its configuration, directory, start (with a fresh port if one is taken), loads and stop."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException

from provtui.testing.scim_server import free_port
from provtui.testing.server_process import ServerProcess
from provtui.testing.slapd.entries import Entry, ou_entry, rdn_value, ssha, to_ldif

SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
AD_SCHEMA_FILE = Path(__file__).parent.with_name("ad.schema")  # provtui/testing/ad.schema (package data)
STANDARD_SCHEMAS = ("core", "cosine", "inetorgperson", "nis")

_PORT_ATTEMPTS = 3
_LOG_TAIL_CHARS = 4000


class SlapdError(RuntimeError):
    """slapd could not be started or refused a load; the message carries slapd's own output."""


def find_slapd() -> str | None:
    """The slapd binary (Debian installs it in /usr/sbin, often not on a user's PATH)."""
    path = os.pathsep.join(filter(None, ["/usr/sbin", "/usr/local/sbin", os.environ.get("PATH")]))
    return shutil.which("slapd", path=path)


def slapd_available() -> bool:
    """Whether slapd, its mdb module and ldapadd are installed (for skip markers)."""
    return bool(find_slapd() and shutil.which("ldapadd") and (MODULE_DIR / "back_mdb.so").exists())


def _service_account() -> tuple[int, int] | None:
    """(uid, gid) of the openldap account when we are root and it exists, else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("openldap").pw_uid, grp.getgrnam("openldap").gr_gid
    except KeyError:
        return None


class SlapdProcess(ServerProcess):
    LOG_NAME = "slapd.log"  # errors only, at the debug level it runs with
    """A slapd serving ``base_dn`` from a temporary directory on 127.0.0.1.

    ``bind_dn`` is the rootdn (``cn=admin,<base>``, exempt from ACLs and size limits);
    ``reader_dn`` is an ordinary account with read access, subject to the 500-entry limit.
    Passwords default to random tokens. Use as a context manager, or start()/stop().
    """

    def __init__(
        self,
        base_dn: str = "dc=example,dc=org",
        admin_password: str | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        ad_schema: bool = True,
        ous: Sequence[str] = ("people", "groups", "disabled"),
        reader_password: str | None = None,
        keep_directory: bool = False,
        syncprov: bool = False,
    ) -> None:
        if rdn_value(base_dn)[0] not in ("dc", "o", "ou"):
            raise ValueError(f"base_dn must start with dc=, o= or ou=: {base_dn!r}")
        self.base_dn = base_dn
        self.admin_password = admin_password or secrets.token_urlsafe(16)
        self.reader_password = reader_password or secrets.token_urlsafe(16)
        self.host = host
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port(host)
        self.ad_schema = ad_schema
        self.ous = tuple(ous)
        self.syncprov = syncprov  # RFC 4533 content synchronisation (live sources), as a provider configures it
        super().__init__(keep_directory=keep_directory)

    def __repr__(self) -> str:
        return f"SlapdProcess(uri={self.uri!r}, base_dn={self.base_dn!r}, running={self.running})"

    # ----------------------------------------------------------------- names

    @property
    def uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ldap://{host}:{self.port}"  # no trailing slash: ldap3's Server() rejects one

    @property
    def bind_dn(self) -> str:
        """The rootdn."""
        return f"cn=admin,{self.base_dn}"

    @property
    def reader_dn(self) -> str:
        return f"cn=reader,{self.base_dn}"

    def ou_dn(self, name: str) -> str:
        return f"ou={name},{self.base_dn}"

    @property
    def people_dn(self) -> str:
        return self.ou_dn("people")

    @property
    def groups_dn(self) -> str:
        return self.ou_dn("groups")

    @property
    def disabled_dn(self) -> str:
        return self.ou_dn("disabled")

    # ----------------------------------------------------------------- life cycle

    def start(self, timeout: float = 15.0) -> SlapdProcess:
        """Write the configuration, spawn slapd, wait until the rootdn can bind, add the base entries."""
        if self.running:
            return self
        slapd = find_slapd()
        if slapd is None:
            raise SlapdError("slapd is not installed (apt-get install slapd ldap-utils)")
        deadline = time.monotonic() + timeout
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            try:
                self._prepare_directory()
                self._spawn(slapd)
                ready = self._wait_ready(deadline)
            except BaseException:
                self.stop()
                raise
            if ready:
                break
            code = self._process.poll() if self._process else None
            log = self.log_text()
            if code is not None and "Address already in use" not in log:
                log += self._slaptest()  # the configuration check often says more than a bare exit
            self.stop()
            port_lost = code is not None and ("Address already in use" in log or "errno=98" in log)
            if port_lost and not self._fixed_port and attempt < _PORT_ATTEMPTS:
                self.port = free_port(self.host)
                continue
            reason = "did not answer a bind in time" if code is None else f"exited with code {code}"
            raise SlapdError(f"slapd on {self.uri} {reason}; its output:\n{log[-_LOG_TAIL_CHARS:] or '(none)'}")
        try:
            self._add_base_entries()
        except BaseException:
            self.stop()
            raise
        return self

    def resume(self, timeout: float = 15.0) -> None:
        """Start a paused slapd again on the same port, with the same data."""
        if self.running:
            return
        slapd = find_slapd()
        assert slapd is not None and self.directory is not None
        self._before_resume()
        self._spawn(slapd)
        if not self._wait_ready(time.monotonic() + timeout):
            raise SlapdError(f"slapd on {self.uri} did not come back; its output:\n{self.log_text()[-_LOG_TAIL_CHARS:]}")

    # ----------------------------------------------------------------- data

    def add_ldif(self, data: str | Iterable[Entry | Mapping[str, Any]]) -> None:
        """Add entries with ldapadd as the rootdn: LDIF text (changetype records allowed),
        or ``(dn, attributes)`` pairs / mappings with a ``dn`` key. Stops at the first error."""
        if not self.running or self.directory is None:
            raise SlapdError("slapd is not running")
        text = data if isinstance(data, str) else to_ldif(data)
        if not text.strip():
            return
        with tempfile.NamedTemporaryFile("w", suffix=".ldif", dir=self.directory, delete=False, encoding="utf-8") as f:
            f.write(text)
            ldif_path = f.name
        try:
            result = subprocess.run(
                ["ldapadd", "-x", "-H", self.uri, "-D", self.bind_dn, "-y", str(self._password_file), "-f", ldif_path],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            os.unlink(ldif_path)
        if result.returncode != 0:
            # stdout's last line names the entry being added; stderr says what was wrong with it.
            last = (result.stdout.strip().splitlines() or [""])[-1]
            output = f"{last}\n{result.stderr.strip()}".strip()[-_LOG_TAIL_CHARS:]
            raise SlapdError(f"ldapadd failed (exit {result.returncode}): {output}")

    def connection(self, *, as_reader: bool = False) -> ldap3.Connection:
        """A bound ldap3 connection (rootdn unless ``as_reader``); use it as a context manager."""
        user, password = (self.reader_dn, self.reader_password) if as_reader else (self.bind_dn, self.admin_password)
        server = ldap3.Server(self.uri, get_info=ldap3.NONE, connect_timeout=5)
        return ldap3.Connection(
            server, user=user, password=password, auto_bind=ldap3.AUTO_BIND_NO_TLS, receive_timeout=30, raise_exceptions=True
        )

    def add_ou(self, name: str, parent_dn: str | None = None) -> str:
        """Add ``ou=<name>`` under ``parent_dn`` (default: the base) and return its DN."""
        dn, attributes = ou_entry(parent_dn or self.base_dn, name)
        self.add_ldif([(dn, attributes)])
        return dn

    # ----------------------------------------------------------------- internals

    @property
    def _password_file(self) -> Path:
        assert self.directory is not None
        return self.directory / "admin.pw"

    def _config(self) -> str:
        assert self.directory is not None
        schemas = [str(SCHEMA_DIR / f"{name}.schema") for name in STANDARD_SCHEMAS]
        if self.ad_schema:
            schemas.append(str(self.directory / "ad.schema"))
        indexes = ["objectClass eq", "uid,cn,mail eq", "member eq", "entryUUID eq", *(["entryCSN eq"] if self.syncprov else [])]
        if self.ad_schema:
            indexes.append("sAMAccountName,userPrincipalName eq")
        lines = [f"include {path}" for path in schemas]
        lines += [
            f"pidfile {self.directory / 'slapd.pid'}",
            f"argsfile {self.directory / 'slapd.args'}",
            f"modulepath {MODULE_DIR}",
            "moduleload back_mdb",
            *(["moduleload syncprov"] if self.syncprov else []),
            # A plain search stops at 500 entries as on a production server; paged ones may read all.
            "sizelimit size.soft=500 size.prtotal=unlimited",
            "",
            "database mdb",
            f'suffix "{self.base_dn}"',
            f'rootdn "{self.bind_dn}"',
            f"rootpw {ssha(self.admin_password)}",
            f"directory {self.directory / 'db'}",
            "maxsize 1073741824",
            "dbnosync",
            *(f"index {index}" for index in indexes),
            "access to attrs=userPassword by self write by anonymous auth by * none",
            "access to * by users read by * none",
            # the session log lets a consumer resuming from its cookie learn of deletions without a present phase
            *(["overlay syncprov", "syncprov-checkpoint 100 1", "syncprov-sessionlog 1000"] if self.syncprov else []),
        ]
        return "\n".join(lines) + "\n"

    def _slaptest(self) -> str:
        """``slaptest -u`` on our configuration: its complaint, or nothing when it passes."""
        slaptest = shutil.which("slaptest", path=os.pathsep.join(["/usr/sbin", os.environ.get("PATH", "")]))
        if slaptest is None or self.directory is None:
            return ""
        try:
            result = subprocess.run(
                [slaptest, "-u", "-f", str(self.directory / "slapd.conf")],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return "" if result.returncode == 0 else f"\nslaptest -u: {(result.stderr + result.stdout).strip()}"

    def _prepare_directory(self) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
        parent = tempfile.gettempdir()
        if _service_account() is not None and not os.stat(parent).st_mode & 0o001:
            parent = "/tmp"  # slapd drops to openldap, which must be able to reach its directory
        self.directory = Path(tempfile.mkdtemp(prefix="provtui-slapd-", dir=parent))
        (self.directory / "db").mkdir()
        if self.ad_schema:
            shutil.copyfile(AD_SCHEMA_FILE, self.directory / "ad.schema")  # slapd reads it after dropping root
        (self.directory / "slapd.conf").write_text(self._config())
        self._password_file.write_text(self.admin_password)  # ldapadd -y reads the whole file: no newline
        self._password_file.chmod(0o600)
        account = _service_account()
        if account is not None:
            for path in [self.directory, *self.directory.rglob("*")]:
                os.chown(path, *account)

    def _spawn(self, slapd: str) -> None:
        assert self.directory is not None
        command = [slapd, "-f", str(self.directory / "slapd.conf"), "-h", self.uri, "-d", "32768"]
        if _service_account() is not None:
            command += ["-u", "openldap", "-g", "openldap"]
        self._spawn_process(command)

    def _wait_ready(self, deadline: float) -> bool:
        """Wait for slapd's "slapd starting" line (printed once it listens), then for a rootdn bind.

        Waiting for the line first means a process that lost the port race is seen to exit
        instead of being mistaken for the listener that won; the bind with our password
        then proves that the server answering is ours.
        """
        trust_line_until = time.monotonic() + 3.0  # after that, bind anyway (in case the wording changes)
        while time.monotonic() < deadline and self.running:
            if "slapd starting" not in self.log_text() and time.monotonic() < trust_line_until:
                time.sleep(0.01)
                continue
            # A fresh Server each time: ldap3 remembers a refused address as unavailable for seconds.
            server = ldap3.Server(self.uri, get_info=ldap3.NONE, connect_timeout=1)
            # receive_timeout in whole seconds: ldap3 packs it into SO_RCVTIMEO as an integer.
            connection = ldap3.Connection(server, user=self.bind_dn, password=self.admin_password, receive_timeout=1)
            try:
                if connection.bind():
                    return True
            except LDAPException:
                pass
            finally:
                with contextlib.suppress(LDAPException):
                    connection.unbind()
            time.sleep(0.02)
        return False

    def _add_base_entries(self) -> None:
        kind, value = rdn_value(self.base_dn)
        base: dict[str, Any]
        if kind == "dc":
            base = {"objectClass": ["dcObject", "organization"], "dc": value, "o": value}
        elif kind == "o":
            base = {"objectClass": ["organization"], "o": value}
        else:
            base = {"objectClass": ["organizationalUnit"], "ou": value}
        reader = {"objectClass": ["organizationalRole", "simpleSecurityObject"], "cn": "reader", "userPassword": ssha(self.reader_password)}
        entries: list[Entry] = [(self.base_dn, base), (self.reader_dn, reader)]
        entries += [ou_entry(self.base_dn, name) for name in self.ous]
        self.add_ldif(entries)
