"""provtui servers the tests start: in a thread of the test process (the CLI suite run through a server,
sharing the test's environment), or as a real process (signals, durability, other OS users)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from provtui.client.remote import RemoteService, ServerUnreachable


def wait_for_server(socket_path: Path, *, process=None, timeout: float = 30.0) -> None:
    """Until the server on ``socket_path`` answers; ``process`` (anything with poll()) must not exit meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited {process.poll()}")
        try:
            remote = RemoteService.connect(socket_path)
        except ServerUnreachable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        else:
            remote.close()
            return


@contextmanager
def thread_server(store: Path, socket_path: Path, *, worker: bool = False):
    """A server on ``store`` in a thread; stopped (as by SIGTERM) on leaving.  Yields its log.  With no
    worker by default: a test's `provtui sync` then does (and reports) the provisioning, as embedded."""
    from provtui.server.run import Handle, serve

    log, handle = io.StringIO(), Handle()
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(serve(store, socket_path, log=log, handle=handle, worker=worker))
        except BaseException as error:  # said by the test, not lost in the thread
            outcome.append(error)

    thread = threading.Thread(target=run, name="provtui-server", daemon=True)
    thread.start()
    while not handle.ready.is_set() and thread.is_alive():
        handle.ready.wait(0.05)
    if not thread.is_alive():
        raise AssertionError(f"the server did not start: {outcome} {log.getvalue()}")
    wait_for_server(socket_path)
    try:
        yield log
    finally:
        handle.stop()
        thread.join(30)
        assert not thread.is_alive(), "the server did not stop"
        assert outcome == [0], (outcome, log.getvalue())


def start_server_process(
    store: Path, socket_path: Path, *, user: str | None = None, env: dict | None = None, extra: tuple[str, ...] = ()
) -> subprocess.Popen:
    """``provtui server`` as a real process (as ``user``, when given: root's tests run it as another OS user);
    ``extra``: more of its options."""
    command = [sys.executable, "-m", "provtui", "server", "--store", str(store), "--socket", str(socket_path), *extra]
    if user is not None:
        command = ["runuser", "-u", user, "--", *command]
    environment = {k: v for k, v in (env or os.environ).items() if k != "PROVTUI_SERVER"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    wait_for_server(socket_path, process=process)
    return process


def stop_server_process(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout)
    finally:
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


class ForkedServer:
    """``provtui server`` in a forked child that really runs as ``user`` (the venv's interpreter lives under
    /root, which other users may not execute: a fork needs no exec).  What it imports later must be
    importable by that user, so the server's modules are imported here, before the fork."""

    def __init__(self, user: str, store: Path, socket_path: Path, env: dict[str, str] | None = None):
        import concurrent.futures.thread  # noqa: F401  (asyncio.to_thread's)
        import grp
        import pwd
        import tempfile

        import uvicorn.lifespan.off  # noqa: F401
        import uvicorn.loops.asyncio  # noqa: F401
        import uvicorn.loops.auto  # noqa: F401

        import provtui.server.run  # noqa: F401
        from provtui.cli.main import main

        self.socket_path = socket_path
        self.log = tempfile.TemporaryFile("w+")
        pid = os.fork()
        if pid == 0:  # the child
            code = 70
            try:
                os.dup2(self.log.fileno(), 1)
                os.dup2(self.log.fileno(), 2)
                sys.stdout = sys.stderr = open(2, "w", buffering=1, closefd=False)  # not the test's captured streams
                entry = pwd.getpwnam(user)
                os.setgroups([g.gr_gid for g in grp.getgrall() if user in g.gr_mem] + [entry.pw_gid])
                os.setgid(entry.pw_gid)
                os.setuid(entry.pw_uid)
                os.environ.update(env or {})
                os.environ.pop("PROVTUI_SERVER", None)
                code = main(["server", "--store", str(store), "--socket", str(socket_path)])
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        self.pid = pid
        self.code: int | None = None
        try:
            wait_for_server(socket_path, process=self)
        except BaseException:
            code, log = self.stop(signal.SIGKILL)
            raise AssertionError(f"the server did not start ({code}): {log}") from None

    def poll(self) -> int | None:
        if self.code is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            self.code = None if done == 0 else os.waitstatus_to_exitcode(status)
        return self.code

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        """Signal it, wait; (exit code, what it printed)."""
        if self.poll() is None:
            os.kill(self.pid, sig)
            self.code = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        self.log.seek(0)
        return self.code, self.log.read()
