"""`provtui demo`: the console on a seeded store, with live SCIM apps.

Starts two real scim2-server processes on 127.0.0.1, seeds a store in a
temporary directory, and opens the console with the engine running in-process,
so the people are provisioned while you watch.  Everything started here stops
(and the temporary directory is removed) when the console exits.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from provtui.demo_data import seed_demo, seed_rules
from provtui.service import Service
from provtui.testing.scim_server import ScimServerProcess

DEMO_APPS = (("Slack", "PROVTUI_DEMO_SLACK_TOKEN"), ("GitHub", "PROVTUI_DEMO_GITHUB_TOKEN"))


def start_demo(stack: ExitStack, root: Path) -> Service:
    """Servers started (stopped by ``stack``), store seeded: the demo minus the console."""
    apps = []
    for name, token_env in DEMO_APPS:
        token = secrets.token_urlsafe(24)
        os.environ[token_env] = token  # the app's config names the variable, never the token
        server = stack.enter_context(ScimServerProcess(token=token))
        apps.append((name, server.url, token_env))
    service = Service.init(root / "store")
    seed_demo(service, apps)
    seed_rules(service)
    return service


def run_demo() -> int:
    from provtui.compose import build_console

    root = Path(tempfile.mkdtemp(prefix="provtui-demo-"))
    # A dropped SSH session (SIGHUP) or a kill (SIGTERM) must still stop the servers and remove the store.
    for sig in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        print("starting two SCIM servers and seeding a demo store...", flush=True)
        service = start_demo(stack, root)
        build_console(service).run()
    return 0
