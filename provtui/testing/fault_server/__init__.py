"""A real scim2-server behind a fault-injecting WSGI middleware, in its own process.

The SCIM protocol is served by scim2-server's own WSGI application (the one its
``scim2-server`` command serves: in-memory storage, default schemas, static bearer
tokens); this module only wraps it.  It is served by the stdlib ``wsgiref`` server with
scim2-server's ``ThreadingWSGIServer`` (one thread per connection, one request per
connection) and a deeper listen backlog, so slow replies never hold up other requests.

Faults are set at runtime through unauthenticated control endpoints beside ``/v2``
(bind to a loopback address only):

``GET /_faults``
    the fault specs, with how many times each fired and how many "next" remain;
``POST /_faults``
    a JSON object ``{kind: spec or null}``: each kind given is replaced (null removes
    it); ``"reset": true`` drops every other fault first, ``"seed": N`` reseeds the RNG;
``DELETE /_faults``
    drops every fault;
``GET /_stats`` / ``DELETE /_stats``
    the request counters (see :class:`FaultInjector`), or reset them.

A spec fires on a matching request either for the ``next`` N matching requests, or with
``probability`` (default 1: every matching request), at most ``limit`` times in all.
It matches on ``method`` (one or a list), ``path`` (the request kind: ``/Users``,
``/Users/{id}``, ``/ServiceProviderConfig``...) and ``query`` (a substring of the
decoded query string); all optional.  The kinds, tried in this order (the first
terminal one that fires answers the request):

``app_down``       every matching request fails: ``mode`` "503" (default) or "reset" (RST);
``slow``           wait ``delay_ms`` ``when`` "before" (default) or "after" the app answers,
                   then carry on (combines with the others);
``rate_limit``     429 with ``Retry-After: retry_after`` (default 1);
``unavailable``    503 (``status``), with ``Retry-After`` if ``retry_after`` is set;
``bad_request``    a SCIM error: ``status`` (400), ``detail``, ``scim_type``; not retryable;
``drop``           read the request, then close the connection without a reply (FIN, or
                   RST with ``reset``);
``malformed``      200 with a broken JSON ``body``;
``stale_search``   a filtered GET answered with an empty ListResponse, as by a lagging
                   search index;
``after_commit``   the SCIM app serves the request (a create happens), then the reply is
                   lost: ``reply`` "drop" (default), "reset" or "malformed" (truncated).
``scripted``       any reply at all, for fuzzing clients: ``status``, the exact body bytes as
                   ``body_b64`` (base64, so invalid UTF-8 can be sent), and ``headers`` as
                   ``[[name, value], ...]`` (default: the SCIM content type; a Content-Length
                   given is sent as is, even when it lies).

Run it as ``python -m provtui.testing.fault_server --port P --bearer-token T``, or from
tests with :class:`FaultServerProcess`; :func:`set_faults` and :func:`stats` talk to the
control endpoints.

The parts: specs (the fault kinds and how one fires), injector (the middleware), server (the process),
client (the launcher and the control calls).
"""

from provtui.testing.fault_server.client import FaultServerProcess, clear_faults, control_url, get_faults, reset_stats, set_faults, stats
from provtui.testing.fault_server.injector import FaultInjector
from provtui.testing.fault_server.server import build_scim_app, main, make_fault_server
from provtui.testing.fault_server.specs import KINDS, FaultSpecError, request_kind

__all__ = [
    "KINDS",
    "FaultInjector",
    "FaultServerProcess",
    "FaultSpecError",
    "build_scim_app",
    "clear_faults",
    "control_url",
    "get_faults",
    "main",
    "make_fault_server",
    "request_kind",
    "reset_stats",
    "set_faults",
    "stats",
]
