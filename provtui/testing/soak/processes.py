"""The soak's children: the worker and the writers, each a subprocess in its own session, killed and restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def _die_with_parent() -> None:
    """In the child: be SIGKILLed if the soak itself dies (its own session keeps it from the soak's signals),
    so a killed soak leaves no writer or worker behind changing its store.  Linux only; elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Child:
    """A subprocess in its own session, so a SIGKILL takes its children (a CLI writer's command) with it."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str]):
        self.name, self.argv, self.log, self.env = name, argv, log, env
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [*self.argv, *self._extra()],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def _extra(self) -> list[str]:
        return ["--incarnation", str(self.starts)] if "--writer" in self.argv else []

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def terminate(self, timeout: float = 60.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def ensure_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            if self.process is not None:
                print(f"  {self.name} exited on its own ({self.process.returncode}): restarted; see {self.log}", flush=True)
            self.start()
