"""`provtui server`: the one process that opens the store, serving its admins on a Unix socket.

It takes the store for itself (a lock on its directory: a second server on the same store is refused), makes the
store private to its own user (0700 directory, 0600 files: admins reach the store only through it), runs
the provisioning worker and the scheduled imports, and pushes each commit's seq to the consoles attached.
SIGTERM and SIGINT stop taking connections, let the calls in flight finish, stop the worker, and exit 0;
a commit is on disk (fsynced) before its call is answered, so a SIGKILL loses nothing acknowledged.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import resource
import signal
import socket
import stat
import sys
import threading
from contextlib import suppress
from pathlib import Path
from typing import Any, TextIO

import uvicorn
import uvloop

from provtui.compose import build_engine
from provtui.domain.errors import InvalidInput, NotAllowed
from provtui.domain.roles import Action
from provtui.engine.worker import run_worker
from provtui.server.app import Changes, build_app
from provtui.server.hub import ServiceHub
from provtui.server.peer import PeerCredentialsProtocol
from provtui.server.scim.listen import ScimListen, scim_server
from provtui.service import Service
from provtui.store.vault import VAULT_FILE, SecretVault

MAX_SOCKET_PATH = 107  # sun_path: 108 bytes with its NUL
MAX_CONNECTIONS = 2048  # connections and requests at once, all users together (one user: peer.PER_PEER_CONNECTIONS)
GRACE_SECONDS = 10  # how long a SIGTERM waits for calls in flight (an event stream never ends by itself)


def default_socket() -> Path:
    """Per user: $XDG_RUNTIME_DIR/provtui/provtui.sock (or /tmp/provtui-UID/); as root: /run/provtui/provtui.sock."""
    if os.geteuid() == 0:
        return Path("/run/provtui/provtui.sock")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "provtui" / "provtui.sock" if runtime else Path(f"/tmp/provtui-{os.getuid()}") / "provtui.sock"


def take_store(path: Path) -> int:
    """Lock the store's directory for this server (held until the process ends; no file is written), or
    InvalidInput if another server holds it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise InvalidInput("--store", f"another provtui server is serving {path}") from None
    return fd


def check_socket_path(path: Path) -> None:
    """A path a Unix socket can have, in a directory that exists or can be made: checked before anything is done."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise InvalidInput("--socket", f"a Unix socket's path is at most {MAX_SOCKET_PATH} bytes")
    parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInput("--socket", f"cannot make a socket under {parent}: no such directory, or not writable")


def make_private(path: Path) -> list[str]:
    """The store's directory 0700 and its files 0600, owned by this user: what was opened up, by name."""
    opened = []
    for entry in [path, *path.rglob("*")]:
        mode = stat.S_IMODE(entry.lstat().st_mode)
        want = 0o700 if entry.is_dir() else 0o600
        if mode & 0o077 or entry == path and mode != want:
            os.chmod(entry, want)
            opened.append(f"{entry.relative_to(path.parent)} {mode:o}")
    return opened


def bind_socket(path: Path) -> socket.socket:
    """Listen on ``path``; anyone may connect (the server asks the kernel who they are), nobody may replace it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise InvalidInput("--socket", f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # a socket nobody listens on: left by a server that was killed
        else:
            raise InvalidInput("--socket", f"a server already listens on {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, 0o666)
    sock.listen(1024)
    return sock


def _raise_file_limit() -> None:
    """Descriptors for every connection the server bounds itself to, where the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = MAX_CONNECTIONS + 256 if hard == resource.RLIM_INFINITY else min(hard, MAX_CONNECTIONS + 256)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Handle:
    """A running server, for whoever started it in a thread (the tests): ``stop()`` is as a SIGTERM."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self._stop: Any = None

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()


def default_state_dir() -> Path:
    """Where a server on a PostgreSQL store keeps what is its alone (its secrets): as root /var/lib/provtui."""
    if os.geteuid() == 0:
        return Path("/var/lib/provtui")
    from platformdirs import user_state_dir

    return Path(user_state_dir("provtui"))


def serve(
    store: Path | str,
    socket_path: Path,
    *,
    log: TextIO | None = None,
    handle: Handle | None = None,
    worker: bool = True,
    state_dir: Path | None = None,
    scim: ScimListen | None = None,
) -> int:
    """Run the server until SIGTERM/SIGINT (or ``handle.stop()``); its exit code.  ``worker``: provision
    continuously (else only when an admin runs `provtui sync`).  On a PostgreSQL store (a URL), the server's
    secrets live in ``state_dir`` and the database's advisory lock keeps a second server off the store.  ``scim``:
    where to serve inbound SCIM clients too (provtui.server.scim)."""
    log = log or sys.stderr
    check_socket_path(Path(socket_path))
    if isinstance(store, str):  # a database's URL (--store postgresql://…)
        state = Path(state_dir or default_state_dir())
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        service = Service.open(store)
        if not service.store.take_for_server():  # type: ignore[attr-defined]  # PostgresStore's
            raise InvalidInput("--store", f"another provtui server is serving {service.location}")
        return _run(service, state, log, socket_path, handle, worker, scim)
    store = Path(store)
    if not store.is_dir():
        raise InvalidInput("--store", f"no store at {store} (`provtui init --store {store}` makes one)")
    lock = take_store(store)
    try:
        return _run(Service.open(store), store, log, socket_path, handle, worker, scim)
    finally:
        os.close(lock)


def _run(
    service: Service, private: Path, log: TextIO, socket_path: Path, handle: Handle | None, worker: bool, scim: ScimListen | None
) -> int:
    """The server on an opened store; ``private``: the directory made the server's alone (the store's, or its
    state directory), where its secrets are kept."""
    _raise_file_limit()
    if not service.may(Action.MANAGE_ADMINS):
        raise NotAllowed(f"{service.actor} is not a super admin of {service.location}: the server runs as the store's super admin")
    for entry in make_private(private):
        print(f"provtui server: made {entry} private to {service.actor}", file=log)
    # uvloop's event loop (libuv): the server's loop serves every SCIM request and the worker's calls, and costs
    # 6% less CPU a pushed person on it (bench_scim_inbound, three interleaved runs each way: 3.47 ms, 3.85 ms)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_serve(service, private, socket_path, log, handle or Handle(), worker, scim))


async def _serve(  # noqa: PLR0915  (one sequence: bind, serve, stop)
    service: Service, private: Path, socket_path: Path, log: TextIO, handle: Handle, provision: bool, scim: ScimListen | None
) -> int:
    hub = ServiceHub(service, vault=SecretVault(private / VAULT_FILE))
    store = service.location
    changes = Changes(service.version())
    loop = asyncio.get_running_loop()

    def on_commit(_ops: Any) -> None:  # called in whichever thread committed
        loop.call_soon_threadsafe(lambda: loop.create_task(changes.bump(service.store.seq)))

    service.store.on_apply(on_commit)
    config = uvicorn.Config(
        build_app(hub, changes, label=str(store)),
        http=PeerCredentialsProtocol,
        lifespan="off",
        log_level="warning",
        access_log=False,  # a request's body may hold a password (user password) or a secret (secret set)
        limit_concurrency=MAX_CONNECTIONS,
        timeout_graceful_shutdown=GRACE_SECONDS,
    )
    server = uvicorn.Server(config)
    stop = asyncio.Event()

    scim_endpoint = scim_server(hub, scim) if scim is not None else None  # bound now: a taken port stops the start

    def request_stop(*_: Any) -> None:
        server.should_exit = True
        if scim_endpoint is not None:
            scim_endpoint[0].should_exit = True
        stop.set()
        loop.call_soon_threadsafe(lambda: loop.create_task(changes.close()))  # the event streams end first

    # Ours, so uvicorn's handlers, when it restores them after shutting down, hand the signal back to us.
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, request_stop)
    handle._stop = lambda: loop.call_soon_threadsafe(request_stop)

    await asyncio.to_thread(_warm, service)
    sock = bind_socket(socket_path)  # listening: a client's connection waits for uvicorn to take it
    print(f"provtui server: serving {store} on {socket_path}", file=log, flush=True)
    if scim_endpoint is not None:
        print(f"provtui server: SCIM clients at {scim_endpoint[2]}", file=log, flush=True)
    handle.ready.set()
    engines: list[Any] = []  # the worker's engine of the moment, stopped with the server
    worker = asyncio.create_task(_keep_working(service, engines, stop, hub, log) if provision else stop.wait())
    try:
        serving = [server.serve(sockets=[sock])]
        if scim_endpoint is not None:
            serving.append(scim_endpoint[0].serve(sockets=[scim_endpoint[1]]))
        await asyncio.gather(*serving)
    finally:
        stop.set()
        for engine in engines:
            engine.stop()
        await changes.close()
        with suppress(asyncio.CancelledError):
            await worker
        sock.close()
        if scim_endpoint is not None:
            scim_endpoint[1].close()
        with suppress(FileNotFoundError):
            socket_path.unlink()
    print("provtui server: stopped", file=log, flush=True)
    return 0


async def _keep_working(service: Service, engines: list[Any], stop: asyncio.Event, hub: ServiceHub, log: TextIO) -> None:
    """The provisioning worker, started again after a failure (it is said on the log, never swallowed)."""
    while not stop.is_set():
        engines[:] = [build_engine(service, guard=hub.lock)]
        try:
            await run_worker(
                service,
                engine=engines[0],
                stop=stop,
                guard=hub.lock,
                signals=False,
                on_live=lambda message: print(f"provtui server: {message}", file=log, flush=True),
            )
        except Exception as error:  # a failed run: keep serving, and try again
            print(f"provtui server: the worker failed: {type(error).__name__}: {error}", file=log, flush=True)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5.0)


def _warm(service: Service) -> None:
    """Build the read model's caches (the directory's search and summaries, each user's history) before the
    first client: a console's first page then costs a page, not a scan of the whole store."""
    service.list_users(limit=1)
    service.prepare_history()
