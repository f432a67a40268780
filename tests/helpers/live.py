"""Helpers for live sources' tests (#21): a worker in a thread of its own or in a process, and waiting on a reader.

The worker runs on its own Service (as another process would), so the test reads through a Service of its own,
refreshed before each look: nothing of the store is used by two threads at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from provtui.compose import build_engine
from provtui.engine.worker import run_worker
from provtui.service import Service


@contextlib.contextmanager
def worker_thread(path: Path | str, actor: str | None = None, logs: list[str] | None = None) -> Iterator[None]:
    """``run_worker`` on a Service of its own, in a thread, until the block ends."""
    ready = threading.Event()
    held: dict[str, Any] = {}

    def main() -> None:
        async def run() -> None:
            service = Service.open(path, actor)
            held["stop"], held["loop"] = asyncio.Event(), asyncio.get_running_loop()
            ready.set()
            await run_worker(
                service,
                engine=build_engine(service),
                stop=held["stop"],
                poll=0.05,
                signals=False,
                on_live=None if logs is None else logs.append,
            )

        try:
            asyncio.run(run())
        except BaseException as error:  # the test sees it when the block ends
            held["error"] = error
            ready.set()

    thread = threading.Thread(target=main, name="test-worker", daemon=True)
    thread.start()
    assert ready.wait(20), "the worker did not start"
    try:
        yield
    finally:
        if "loop" in held:
            held["loop"].call_soon_threadsafe(held["stop"].set)
        thread.join(30)
        assert not thread.is_alive(), "the worker did not stop"
        if "error" in held:
            raise held["error"]


def start_worker_process(path: Path | str, env: dict[str, str]) -> subprocess.Popen:
    """`provtui worker` on the store, as an admin starts it."""
    return subprocess.Popen(
        [sys.executable, "-m", "provtui", "worker", "--store", str(path)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def eventually(reader: Service, predicate: Callable[[Service], Any], timeout: float = 15.0) -> float:
    """Seconds until ``predicate(reader)`` holds (the reader refreshed before each look); AssertionError if never."""
    started = time.monotonic()
    last: BaseException | None = None
    while time.monotonic() - started < timeout:
        reader.refresh()
        try:
            if predicate(reader):
                return time.monotonic() - started
        except Exception as error:  # not there yet (a user not created yet, say)
            last = error
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s" + (f" (last: {last!r})" if last else ""))


def live_state(reader: Service, name: str) -> dict[str, Any]:
    reader.refresh()
    return next(s for s in reader.list_sources() if s["name"] == name)
