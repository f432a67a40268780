"""Launching a fault server from tests (:class:`FaultServerProcess`) and driving its control endpoints."""

from __future__ import annotations

import sys
import threading
from typing import Any

import httpx

from provtui.testing.fault_server.server import MODULE
from provtui.testing.fault_server.specs import FaultSpecError
from provtui.testing.scim_server import ScimServerProcess


class FaultServerProcess(ScimServerProcess):
    """A fault server subprocess; starts, stops and picks its port as ScimServerProcess does.

    ``url`` is the SCIM base URL (``.../v2``); the helper methods drive the control endpoints.
    """

    def __repr__(self) -> str:
        return f"FaultServerProcess(url={self.url!r}, running={self.running})"

    def _command(self) -> list[str]:
        return [sys.executable, "-m", MODULE]

    def set_faults(self, *, reset: bool = False, seed: int | None = None, **faults: dict[str, Any] | None) -> dict[str, Any]:
        return set_faults(self.url, reset=reset, seed=seed, **faults)

    def clear_faults(self) -> None:
        clear_faults(self.url)

    def stats(self) -> dict[str, Any]:
        return stats(self.url)

    def reset_stats(self) -> None:
        reset_stats(self.url)


def control_url(url: str) -> str:
    """The server root from its SCIM base URL (``http://h:p/v2``) or its root."""
    return url.rstrip("/").removesuffix("/v2")


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _control(method: str, url: str, path: str, body: Any = None) -> Any:
    global _client
    with _client_lock:
        if _client is None:  # one client for all calls: building one (its SSL context) costs ~50 ms
            _client = httpx.Client(timeout=5.0)
    response = _client.request(method, control_url(url) + path, json=body)
    if response.status_code == 400:
        raise FaultSpecError(response.json()["error"])
    response.raise_for_status()
    return response.json()


def set_faults(url: str, *, reset: bool = False, seed: int | None = None, **faults: dict[str, Any] | None) -> dict[str, Any]:
    """Set (or with None, remove) faults by kind: ``set_faults(url, slow={"delay_ms": 500})``.

    ``reset`` drops the faults not named first; returns every fault now set.
    """
    body: dict[str, Any] = dict(faults)
    if reset:
        body["reset"] = True
    if seed is not None:
        body["seed"] = seed
    return _control("POST", url, "/_faults", body)


def get_faults(url: str) -> dict[str, Any]:
    return _control("GET", url, "/_faults")


def clear_faults(url: str) -> None:
    _control("DELETE", url, "/_faults")


def stats(url: str) -> dict[str, Any]:
    """The server's counters; see :class:`FaultInjector`."""
    return _control("GET", url, "/_stats")


def reset_stats(url: str) -> None:
    _control("DELETE", url, "/_stats")
