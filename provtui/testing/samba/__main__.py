"""``python -m provtui.testing.samba``: a throwaway Samba AD DC until Ctrl-C, for manual trials."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Sequence

from provtui.testing.samba.process import SambaDC, free_loopback_ip


def main(argv: Sequence[str] | None = None) -> int:
    """Run a DC until interrupted and print how to reach it: its URIs, CA file, admin DN and password.

    The password is printed because the DC is a throwaway one on a loopback address; --password-env names a
    variable to take it from instead of a random one. The address defaults to the first free one from
    127.0.0.100, away from the test sessions' 127.0.0.20 onwards.
    """
    import argparse

    parser = argparse.ArgumentParser(description="Run a throwaway Samba AD domain controller until Ctrl-C.")
    parser.add_argument("--ip", help="a loopback address of its own (default: the first free from 127.0.0.100)")
    parser.add_argument("--password-env", help="variable holding the Administrator's password (default: a random one)")
    parser.add_argument("--no-cache", action="store_true", help="provision afresh instead of copying the cached template")
    args = parser.parse_args(argv)
    password = os.environ.get(args.password_env) if args.password_env else None
    if args.password_env and not password:
        parser.error(f"the environment variable {args.password_env} is not set")
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background, where it is ignored
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops it as cleanly as Ctrl-C
    with SambaDC(args.ip or free_loopback_ip(100), password, cache=not args.no_cache) as dc:
        print(f"ldap_uri={dc.ldap_uri}\nldaps_uri={dc.ldaps_uri}\nca_file={dc.ca_file}\nbase_dn={dc.base_dn}", flush=True)
        print(f"admin_dn={dc.admin_dn}\nadmin_password={dc.admin_password}\n(Ctrl-C stops it)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
        for name in (signal.SIGINT, signal.SIGTERM):
            signal.signal(name, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
