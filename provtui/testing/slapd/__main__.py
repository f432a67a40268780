"""``python -m provtui.testing.slapd``: a throw-away slapd until Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Sequence

from provtui.testing.slapd.entries import generate_people
from provtui.testing.slapd.process import SlapdProcess


def main(argv: Sequence[str] | None = None) -> int:
    """Run a slapd until interrupted, for manual tests and the soak: ``python -m provtui.testing.slapd``.

    The rootdn's password is read from the environment variable named by --password-env.
    """
    import argparse

    parser = argparse.ArgumentParser(description="Run a throw-away OpenLDAP slapd until Ctrl-C.")
    parser.add_argument("--port", type=int)
    parser.add_argument("--base-dn", default="dc=example,dc=org")
    parser.add_argument("--password-env", default="SLAPD_PASSWORD", help="variable holding the rootdn password")
    parser.add_argument("--people", type=int, default=0, help="generate N inetOrgPersons under ou=people")
    args = parser.parse_args(argv)
    password = os.environ.get(args.password_env)
    if not password:
        parser.error(f"set the environment variable {args.password_env} to the rootdn password")
    with SlapdProcess(args.base_dn, password, port=args.port) as slapd:
        if args.people:
            slapd.add_ldif(generate_people(slapd.people_dn, args.people))
        print(f"uri={slapd.uri} bind_dn={slapd.bind_dn} (password from ${args.password_env}); Ctrl-C stops", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
