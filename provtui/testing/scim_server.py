"""Run a real scim2-server in a subprocess: the downstream for tests and ``provtui demo``.

scim2-server keeps its data in memory and serves ``/v2``; it is started from the
interpreter's own environment (``sys.executable``), so it works without an activated venv.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import httpx

_MODULE = "scim2_server.testserver.cli"  # the module behind the ``scim2-server`` console script
_PORT_ATTEMPTS = 3


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (another process may still take it before us)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _server_command() -> list[str]:
    """The console script installed next to the interpreter, else the module it runs."""
    script = shutil.which("scim2-server", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", _MODULE]


class ScimServerProcess:
    """A scim2-server subprocess accepting one bearer token.

    Without an explicit port a free one is picked, and picked again if another process
    grabs it between the probe and the server's bind.
    """

    def __init__(
        self, token: str, port: int | None = None, host: str = "127.0.0.1", *, log_file: str | os.PathLike[str] | None = None
    ) -> None:
        self.token = token
        self.host = host
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port(host)
        self._log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"ScimServerProcess(url={self.url!r}, running={self.running})"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v2"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 15.0) -> ScimServerProcess:
        """Spawn the server and return once it answers GET /ServiceProviderConfig."""
        if self.running:
            return self
        deadline = time.monotonic() + timeout
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self._spawn()
            if self._wait_ready(deadline):
                return self
            code = self._exit_code()
            self.stop()
            if code is None or self._fixed_port or attempt == _PORT_ATTEMPTS:
                reason = "did not answer in time" if code is None else f"exited with code {code}"
                hint = f"; see {self._log_file}" if self._log_file else ""
                raise RuntimeError(f"scim2-server on {self.url} {reason}{hint}")
            self.port = free_port(self.host)  # most likely lost the port race: try another
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Terminate (then kill if it lingers) and reap the process; safe to call twice."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> ScimServerProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _command(self) -> list[str]:
        """The program to run; subclasses serve the same CLI from another module."""
        return _server_command()

    def _spawn(self) -> None:
        # ``--bearer-token=T``, not ``--bearer-token T``: a random token may start with "-",
        # which argparse would take for an option (a 1-in-32 chance per token_urlsafe token).
        command = [*self._command(), "--hostname", self.host, "--port", str(self.port), f"--bearer-token={self.token}"]
        # stdout is a pipe: the server prints one line there once it has bound the port.
        # Request logs go to stderr, kept only when a log file is asked for.
        if self._log_file is None:
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            return
        with open(self._log_file, "ab") as log:  # the child keeps its own descriptor
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)

    def _exit_code(self) -> int | None:
        """The code the server exited with, or None if it still runs.

        Its stdout reaches EOF a moment before the process is reaped, so wait briefly for that.
        """
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return None

    def _wait_ready(self, deadline: float) -> bool:
        """Wait for the bound-port line, then for an answer to our token; False if it died or time ran out.

        Polling HTTP alone could be fooled by another server that holds the port we lost.
        """
        assert self._process is not None and self._process.stdout is not None
        lines: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        threading.Thread(target=lambda out=self._process.stdout: lines.put(out.readline()), daemon=True).start()
        try:
            if not lines.get(timeout=max(0.0, deadline - time.monotonic())).strip():
                return False  # EOF: the server exited (port taken, bad arguments...)
        except queue.Empty:
            return False
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline and self.running:
                try:
                    if client.get(f"{self.url}/ServiceProviderConfig", headers=headers).status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        return False
