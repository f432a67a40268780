"""The scripting interface: `provtui <noun> <verb>`, with --json for scripts.

Exit codes (a contract admins' scripts depend on): 0 done; 1 a downstream
operation failed (each listed on stderr); 2 bad input or usage; 3 held for
confirmation; 4 not allowed; 5 the store is damaged or cannot be read.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from provtui.cli.output import EXIT_DAMAGED, EXIT_NOT_ALLOWED, EXIT_OK, EXIT_USAGE, quiet_broken_pipe, terminal_text
from provtui.cli.safe_input import check_arguments
from provtui.domain.errors import ProvtuiError
from provtui.domain.text import escape, escape_lines
from provtui.service import StoreError, StoreUnreadable

# Each noun's module, in the order `provtui --help` lists them.  A command imports only its own noun's module,
# and the console none: importing them all cost ~150 ms before the console's first frame.
NOUN_MODULES = {
    "users": ["user"],
    "bulk": ["user"],  # `user bulk`, after the noun users makes
    "groups": ["group"],
    "rules": ["rule", "held"],
    "apps": ["app"],
    "sources": ["source", "import"],
    "ops": ["sync", "worker", "retry", "tasks", "config"],
    "audit": ["audit"],
    "reports": ["report"],
    "admins": ["admin"],
    "store": ["store"],
    "secrets": ["secret"],
    "scim_clients": ["scim-client"],
}
_VALUED = {"--store", "--server"}  # the options before a noun that take a value


def modules_for(argv: Sequence[str]) -> list[str]:
    """The noun modules a command line needs: its noun's, none for the console, all for help or a noun
    that is not one (argparse then lists every choice)."""
    words = iter(argv)
    for word in words:
        if word in _VALUED:
            next(words, None)
        elif word in ("-h", "--help"):
            return list(NOUN_MODULES)
        elif not word.startswith("-"):
            named = [module for module, nouns in NOUN_MODULES.items() if word in nouns]
            return named if named or word in ("init", "server", "demo") else list(NOUN_MODULES)
    return []


def store_location(text: str) -> Path | str:
    """--store's value: a directory, or a PostgreSQL URL kept as typed (a Path would fold its //)."""
    return text if text.startswith(("postgresql://", "postgres://")) else Path(text)


def default_store() -> Path | str:
    from platformdirs import user_data_dir

    return store_location(os.environ.get("PROVTUI_STORE") or str(Path(user_data_dir("provtui")) / "store"))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 too; say it our way
        self.print_usage(sys.stderr)
        print(f"provtui: error: {escape(message)}", file=sys.stderr)  # one line, which may quote what was typed
        raise SystemExit(EXIT_USAGE)


class Commands:
    """What each noun module registers its commands through."""

    def __init__(self, parser: argparse.ArgumentParser, common: argparse.ArgumentParser):
        self.common = common
        self.nouns = parser.add_subparsers(dest="noun", parser_class=_Parser)
        self.verbs: dict = {}  # noun -> its verbs: a module may add a verb to another's noun (`user bulk`)

    def noun(self, name: str, help: str):
        verbs = self.nouns.add_parser(name, help=help).add_subparsers(dest="verb", required=True, parser_class=_Parser)
        self.verbs[name] = verbs
        return verbs

    def command(self, sub, name: str, handler: Callable, help: str, **kwargs) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[self.common], help=help, **kwargs)
        p.set_defaults(handler=handler)
        return p


def cmd_console(args, service) -> int:
    from provtui.compose import build_console

    # the engine runs only for an actor who may provision (it then touches only their apps)
    app = build_console(service)
    app.run()
    return app.return_code or EXIT_OK  # 5 when the store was found damaged while the console ran


def cmd_init(args) -> int:
    from provtui.service import Service

    service = Service.init(args.store, group=args.group)
    shared = f", shared with the group {args.group}" if args.group else ""
    print(f"created a store at {service.location}{shared}; {service.actor} is its super admin")
    return EXIT_OK


def cmd_server(args) -> int:
    from provtui.domain.errors import InvalidInput
    from provtui.server.run import default_socket, serve
    from provtui.server.scim.listen import parse_listen

    scim = parse_listen(args.scim_listen, args.tls_cert, args.tls_key, args.insecure_http) if args.scim_listen else None
    if scim is None and (args.tls_cert or args.tls_key or args.insecure_http):
        raise InvalidInput("--scim-listen", "--tls-cert, --tls-key and --insecure-http are options of --scim-listen")
    return serve(args.store, args.socket or default_socket(), worker=args.worker, state_dir=args.state_dir, scim=scim)


def cmd_demo(args) -> int:
    import importlib.util

    if importlib.util.find_spec("scim2_server") is None:  # the demo's apps are the `demo` extra
        print("provtui: error: the demo needs its SCIM servers: pip install 'provtui[demo]'", file=sys.stderr)
        return EXIT_USAGE
    from provtui.demo import run_demo

    return run_demo()


def open_service(args):
    """The service the command works through: the server's, when one is named; else the store, embedded."""
    if args.server:
        from provtui.client.remote import RemoteService

        return RemoteService.connect(args.server)
    from provtui.service import Service

    return Service.open(args.store)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser; given ``argv``, with only the nouns it names (see ``modules_for``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        type=store_location,
        default=argparse.SUPPRESS,
        help="store directory, or a PostgreSQL URL postgresql://… (default: $PROVTUI_STORE or the user data dir)",
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    common.add_argument(
        "--server",
        metavar="SOCKET",
        default=argparse.SUPPRESS,
        help="work through the provtui server on this socket (default: $PROVTUI_SERVER)",
    )
    parser = _Parser(prog="provtui", description="Identity lifecycle management and provisioning, in the terminal.", parents=[common])
    parser.set_defaults(handler=cmd_console)
    cli = Commands(parser, common)
    p = cli.command(cli.nouns, "init", cmd_init, "create a new store; you become its super admin")
    p.add_argument("--group", help="share the store with this Unix group (files 0660)")
    p.set_defaults(needs_service=False)
    p = cli.command(cli.nouns, "server", cmd_server, "serve the store to its admins on a Unix socket, and provision")
    p.add_argument(
        "--socket",
        type=Path,
        metavar="PATH",
        help="where to listen (default: $XDG_RUNTIME_DIR/provtui/provtui.sock; as root /run/provtui/provtui.sock)",
    )
    p.add_argument("--no-worker", dest="worker", action="store_false", help="do not provision continuously: only `provtui sync` does")
    p.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="on a PostgreSQL store, where the server keeps its secrets (default: the user state dir; as root /var/lib/provtui)",
    )
    p.add_argument(
        "--scim-listen",
        metavar="HOST:PORT",
        help="also serve SCIM 2.0 to inbound clients at http(s)://HOST:PORT/scim/v2 (`provtui scim-client add`); HOST defaults to 127.0.0.1",
    )
    p.add_argument("--tls-cert", type=Path, metavar="FILE", help="the SCIM endpoint's TLS certificate (PEM, with its chain)")
    p.add_argument("--tls-key", type=Path, metavar="FILE", help="the SCIM endpoint's TLS private key (PEM)")
    p.add_argument("--insecure-http", action="store_true", help="serve SCIM without TLS on a non-loopback address (tokens in clear)")
    p.set_defaults(needs_service=False)
    cli.command(cli.nouns, "demo", cmd_demo, "open the console on a demo organisation with live SCIM apps").set_defaults(
        needs_service=False
    )
    for name in NOUN_MODULES if argv is None else modules_for(argv):
        importlib.import_module(f"provtui.cli.{name}").register(cli)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code.  Text output is escaped on its way out (cli/output.py), and a reader
    closing the pipe early (``provtui user list | head -1``) ends the command quietly, with 141 as from SIGPIPE."""
    try:
        with terminal_text():
            code = _main(argv)
            sys.stdout.flush()  # now, not at exit: a closed pipe is noticed here
        return code
    except BrokenPipeError:
        return quiet_broken_pipe()


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    args.store = getattr(args, "store", None) or default_store()
    args.json = getattr(args, "json", False)
    args.server = getattr(args, "server", None) or os.environ.get("PROVTUI_SERVER") or None
    try:
        check_arguments(parser, args)  # no control character, nothing too long, in any argument (exit 2)
        if not getattr(args, "needs_service", True):
            return args.handler(args)
        return args.handler(args, open_service(args))
    except ProvtuiError as error:
        print(f"provtui: error: {escape_lines(str(error))}", file=sys.stderr)
        return error.exit_code
    except StoreUnreadable as error:  # damaged, or a file that cannot be read: never a traceback
        print(f"provtui: error: store: {escape_lines(str(error))}", file=sys.stderr)
        return EXIT_DAMAGED
    except StoreError as error:
        print(f"provtui: error: store: {error}", file=sys.stderr)
        return EXIT_USAGE
    except PermissionError as error:  # the OS said no: the store is not shared with this user
        print(f"provtui: error: not allowed: {error.strerror}: {error.filename}", file=sys.stderr)
        return EXIT_NOT_ALLOWED
    except KeyboardInterrupt:
        return 130
