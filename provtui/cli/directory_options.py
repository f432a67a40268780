"""The options an LDAP/AD connection takes on every command that sets one up (`source add-ldap`, `source update`,
`app create`, `app update`): how it is encrypted, whom it trusts, where its entries are."""

from __future__ import annotations

from typing import Any

from provtui.input_files import read_input

MAX_CA_FILE = 1024 * 1024
TLS_MODES = ("ldaps", "starttls", "none")


def add_directory_options(p) -> None:
    p.add_argument(
        "--tls", choices=TLS_MODES, help="ldaps (TLS from the start), starttls (plain port, then TLS) or none (default: as the URI says)"
    )
    p.add_argument("--ca-file", metavar="PATH", help="the directory's CA certificates (PEM): read now and kept with the settings")
    p.add_argument("--groups-dn", metavar="DN", help="where the groups are (default: the base DN)")
    p.add_argument("--user-filter", metavar="F", help="LDAP filter of the users (default: the flavor's)")
    p.add_argument("--group-filter", metavar="F", help="LDAP filter of the groups (default: the flavor's; AD leaves builtin groups out)")


def directory_options(args, *, groups_key: str = "groups_dn") -> dict[str, Any]:
    """What was given of those options, as the service names them (the CA file's text as ``ca_certificates``;
    ``groups_key``: what the groups DN is called: an app's ``groups_dn``, a source's ``group_base``)."""
    options = {
        "tls": args.tls,
        groups_key: args.groups_dn or getattr(args, "group_base", None),
        "user_filter": args.user_filter,
        "group_filter": args.group_filter,
        "external_id_attribute": args.external_id_attribute,
    }
    if args.ca_file:
        options["ca_certificates"] = read_input(args.ca_file, "--ca-file", MAX_CA_FILE).decode("utf-8", errors="replace")
    return {k: v for k, v in options.items() if v is not None}
