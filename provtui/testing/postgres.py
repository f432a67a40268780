"""A throwaway PostgreSQL server for tests: ``initdb`` into a fresh temporary directory, ``pg_ctl start`` on
127.0.0.1 and a Unix socket in that directory, ``pg_ctl stop -m fast`` and the directory removed at stop().

The cluster's superuser is ``provtui`` (``initdb --username``) and every connection is trusted, so its URLs
carry no password: ``postgresql://provtui@/DB?host=DIR&port=P`` (the socket) or ``postgresql://provtui@127.0.0.1:P/DB``.
fsync and full_page_writes are off: committed data survives a killed server (its WAL is in the OS's cache), only
not a crashed OS. synchronous_commit stays on: off, a commit returns before its WAL leaves the server's shared
memory, and kill() loses it (with fsync off it costs nothing measurable: 126 vs 127 us a commit).
As root, initdb and pg_ctl run as the ``postgres`` account (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from provtui.testing.scim_server import free_port
from provtui.testing.server_process import ServerProcess

SUPERUSER = "provtui"
_PORT_ATTEMPTS = 3
_LOG_TAIL_CHARS = 4000


class PostgresError(RuntimeError):
    """PostgreSQL is missing or could not be started; the message carries its own output."""


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin holding initdb and pg_ctl (Debian keeps them off PATH), else PATH's."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb") if Path(p).with_name("pg_ctl").exists()]
    if found:
        return max(found, key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)])
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl", path=str(Path(initdb).resolve().parent)):
        return Path(initdb).resolve().parent
    return None


def postgres_available() -> bool:
    """Whether initdb and pg_ctl are installed (for skip markers)."""
    return find_bin_dir() is not None


def _service_account() -> pwd.struct_passwd | None:
    """The postgres account when we are root (PostgreSQL will not run as root), else None: run as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresError("running as root needs a 'postgres' OS user to run the server as") from None


def _run(command: list[str], account: pwd.struct_passwd | None, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    extra: dict[str, Any] = {}
    if account is not None:
        extra = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    return subprocess.run(command, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False, **extra)


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _processes() -> list[tuple[int, str, str, int]]:
    """(pid, command name, state, process group) of every process."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        found.append((int(text.split(" ", 1)[0]), name, rest[0], int(rest[2])))
    return found


def _postmaster_alive(data: Path) -> int | None:
    """The postmaster's pid if it runs (not a zombie: an orphan may never be reaped in a container, nor a
    stale postmaster.pid whose number another program has since been given)."""
    pid = _postmaster_pid(data)
    return pid if any(p == pid and name == "postgres" and state != "Z" for p, name, state, _ in _processes()) else None


def _kill_cluster(data: Path) -> None:
    """SIGKILL the postmaster and its backends (pg_ctl made it a process group leader) and wait for them to go:
    a new postmaster refuses to start while an old backend still holds the shared memory. Then remove the lock
    files, as a reboot would: the unreaped zombie answers kill(pid, 0), so PostgreSQL would think it still runs."""
    pid = _postmaster_alive(data)
    if pid is None:
        return
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(group == pid and state != "Z" for _, _, state, group in _processes()):
        if time.monotonic() > deadline:
            raise PostgresError(f"the killed postmaster's processes (group {pid}) are still there after 10 s")
        time.sleep(0.01)
    for lock in [data / "postmaster.pid", *data.parent.glob(".s.PGSQL.*.lock")]:
        lock.unlink(missing_ok=True)


def _shutdown(bin_dir: Path, directory: Path, account: pwd.struct_passwd | None, keep: bool) -> None:
    """Stop the cluster (fast: open sessions are ended), SIGKILL it if that fails, then remove its directory."""
    data = directory / "data"
    if _postmaster_alive(data) is not None:
        try:
            result = _run([str(bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w", "-t", "20"], account, directory, 30)
            stopped = result.returncode == 0
        except subprocess.TimeoutExpired:
            stopped = False
        if not stopped:
            _kill_cluster(data)
    if not keep:
        shutil.rmtree(directory, ignore_errors=True)


class PostgresProcess(ServerProcess):
    """A PostgreSQL cluster of its own in a temporary directory; use as a context manager, or start()/stop()."""

    LOG_NAME = "postgres.log"

    def __init__(self, port: int | None = None, *, keep_directory: bool = False, settings: dict[str, str] | None = None) -> None:
        super().__init__(keep_directory=keep_directory)
        self.settings = dict(settings or {})  # more server settings (a benchmark's shared_buffers, say)
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self._bin_dir: Path | None = None

    def __repr__(self) -> str:
        return f"PostgresProcess(url={self.url()!r}, running={self.running})"

    @property
    def data_dir(self) -> Path:
        assert self.directory is not None
        return self.directory / "data"

    @property
    def pid(self) -> int | None:
        """The postmaster's."""
        return _postmaster_pid(self.data_dir) if self.directory is not None else None

    @property
    def running(self) -> bool:
        return self.directory is not None and _postmaster_alive(self.data_dir) is not None

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URI over the Unix socket (its file's name carries the port, hence ``port=``)."""
        host = quote(str(self.directory or ""), safe="/")
        return f"postgresql://{SUPERUSER}@/{quote(dbname, safe='')}?host={host}&port={self.port}"

    def tcp_url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{quote(dbname, safe='')}"

    # ----------------------------------------------------------------- life cycle

    def start(self, timeout: float = 60.0) -> PostgresProcess:
        """initdb a fresh cluster and start it (a fresh port if ours was taken meanwhile); returns once it answers."""
        if self.running:
            return self
        self._bin_dir = find_bin_dir()
        if self._bin_dir is None:
            raise PostgresError(
                "PostgreSQL is not installed: no initdb in /usr/lib/postgresql/*/bin or on PATH (apt-get install postgresql)"
            )
        try:
            self._initdb(timeout)
            return self._start_server(timeout, new_port_if_taken=not self._fixed_port)
        except BaseException:
            self.stop()
            raise

    def kill(self) -> None:
        """SIGKILL the server (postmaster and backends), as a crash would; the next start() recovers from the WAL."""
        if self.directory is not None:
            _kill_cluster(self.data_dir)

    def restart(self, timeout: float = 60.0) -> PostgresProcess:
        """Stop the server if it runs (fast), then start the same cluster on the same port and socket again."""
        if self.running:
            self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(int(timeout)), timeout=timeout + 5)
        return self._start_server(timeout, new_port_if_taken=False)  # the URLs handed out stay valid

    # ----------------------------------------------------------------- data

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        """An autocommit psycopg connection over the socket (CREATE/DROP DATABASE refuse a transaction)."""
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.url(dbname), **kwargs)

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database (from template0) and its socket URL."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        with self.connect() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending the sessions still open on it."""
        with self.connect() as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # ----------------------------------------------------------------- internals

    def _initdb(self, timeout: float) -> None:
        assert self._bin_dir is not None
        account = _service_account()
        parent = tempfile.gettempdir()
        if len(parent) > 60 or (account is not None and not os.stat(parent).st_mode & 0o001):
            parent = "/tmp"  # the socket's path must stay under 107 bytes, and the postgres user must reach it
        self.directory = Path(tempfile.mkdtemp(prefix="pv-pg-", dir=parent))
        if account is not None:
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        self._finalizer = weakref.finalize(self, _shutdown, self._bin_dir, self.directory, account, self.keep_directory)
        command = [str(self._bin_dir / "initdb"), "-D", str(self.data_dir), "--auth=trust", f"--username={SUPERUSER}"]
        result = _run([*command, "-E", "UTF8", "--locale=C", "--no-sync"], account, self.directory, timeout)
        if result.returncode != 0:
            raise PostgresError(f"initdb failed (exit {result.returncode}):\n{(result.stdout + result.stderr)[-_LOG_TAIL_CHARS:]}")

    def _pg_ctl(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        assert self._bin_dir is not None and self.directory is not None
        return _run([str(self._bin_dir / "pg_ctl"), *args, "-D", str(self.data_dir)], _service_account(), self.directory, timeout)

    def _start_server(self, timeout: float, *, new_port_if_taken: bool) -> PostgresProcess:
        """``pg_ctl start -w``: returns once the server accepts connections."""
        assert self.directory is not None
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            settings = {
                "listen_addresses": "127.0.0.1",
                "port": str(self.port),
                "unix_socket_directories": str(self.directory),
                "fsync": "off",
                "full_page_writes": "off",
                "max_connections": "200",
                **self.settings,
            }
            options = " ".join(f"-c {key}={shlex.quote(value)}" for key, value in settings.items())  # pg_ctl hands it to sh
            log = str(self.directory / self.LOG_NAME)
            result = self._pg_ctl("start", "-w", "-t", str(int(timeout)), "-l", log, "-o", options, timeout=timeout + 5)
            if result.returncode == 0:
                return self
            output = f"{result.stdout}{result.stderr}{self.log_text()}"
            if "could not bind" in output and new_port_if_taken and attempt < _PORT_ATTEMPTS:
                self.port = free_port()  # another process took it between free_port() and the bind
                continue
            break
        raise PostgresError(f"pg_ctl start on port {self.port} failed (exit {result.returncode}):\n{output[-_LOG_TAIL_CHARS:]}")
