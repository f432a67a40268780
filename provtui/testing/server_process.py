"""What every real server the tests start has in common (slapd, Samba): a directory of its own, one process
spawned with its output in ``LOG_NAME``, and a stop that happens once -- at stop(), or when the object dies."""

from __future__ import annotations

import shutil
import signal
import subprocess
import weakref
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self


def terminate(process: subprocess.Popen[bytes], directory: Path | None) -> None:
    """Stop the server (SIGTERM, then SIGKILL after 5 s) and remove its directory."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


class ServerProcess(ABC):
    LOG_NAME = "server.log"

    def __init__(self, *, keep_directory: bool = False) -> None:
        self.keep_directory = keep_directory
        self.directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @abstractmethod
    def start(self) -> Self:
        """Spawn the server (``_spawn_process``) and return once it answers."""

    def _spawn_process(self, command: Sequence[str]) -> None:
        """Run ``command`` with its output in the log file; it is terminated once, by stop() or at exit."""
        assert self.directory is not None
        with open(self.directory / self.LOG_NAME, "ab") as log:  # the child keeps its own descriptor
            process = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self._process = process
        self._finalizer = weakref.finalize(self, terminate, process, None if self.keep_directory else self.directory)

    def _before_stop(self) -> None:  # noqa: B027  (most servers drop nothing: a hook, not a duty)
        """What a server drops before its process is stopped (open connections, say)."""

    def stop(self) -> None:
        """Terminate the server and remove its directory (unless keep_directory); safe to call twice."""
        self._before_stop()
        finalizer, self._finalizer = self._finalizer, None
        self._process = None
        if finalizer is not None:
            finalizer()

    def pause(self) -> None:
        """Stop the server but keep its directory (its data) for the subclass's ``resume``: a server going down under
        its clients and coming back as it was."""
        process = self._process
        if process is None:
            return
        if self._finalizer is not None:
            self._finalizer.detach()
        self._before_stop()
        terminate(process, None)
        self._process = None
        # until resume, a paused server's directory still goes at exit (or with stop())
        self._finalizer = None if self.keep_directory else weakref.finalize(self, shutil.rmtree, str(self.directory), True)

    def _before_resume(self) -> None:
        """The paused server's finalizer dropped: the process spawned next brings its own."""
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def log_text(self) -> str:
        """The server's output so far."""
        if self.directory is None:
            return ""
        try:
            return (self.directory / self.LOG_NAME).read_text(errors="replace")
        except OSError:
            return ""
