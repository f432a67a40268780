"""`provtui scim-client add|list|rotate|remove`: the identity providers and HR systems that push people into
provtui over SCIM (super admin).  Each is a source of truth, ``scim:NAME``.

provtui scim-client add NAME [--json]      # prints the client's bearer token, once ("token" in JSON)
provtui scim-client list [--json]          # names, sources, who made them and when: never a token
provtui scim-client rotate NAME [--json]   # a new token, printed once; the old one stops working
provtui scim-client remove NAME            # its token stops working; its source stays (the people it pushed keep it)
"""

from __future__ import annotations

from provtui.cli.output import emit


def cmd_add(args, service) -> int:
    client = service.add_scim_client(args.name)
    return emit(args, client, text=_token_text(client, "added"))


def cmd_list(args, service) -> int:
    return emit(args, service.list_scim_clients(), ["name", "source", "created_by", "created", "rotated"])


def cmd_rotate(args, service) -> int:
    client = service.rotate_scim_client(args.name)
    return emit(args, client, text=_token_text(client, "rotated"))


def cmd_remove(args, service) -> int:
    done = service.remove_scim_client(args.name)
    return emit(args, done, text=f"SCIM client {done['name']} removed (its source {done['source']} stays)")


def _token_text(client: dict, done: str) -> str:
    return (
        f"SCIM client {client['name']} {done} (source {client['source']}).\n"
        f"Its bearer token, shown this once (provtui keeps only its digest):\n{client['token']}"
    )


def register(cli) -> None:
    noun, command = cli.noun("scim-client", "identity providers and HR systems that push people in over SCIM (super admin)"), cli.command
    command(noun, "add", cmd_add, "add a client; its bearer token is printed once").add_argument("name", metavar="NAME")
    command(noun, "list", cmd_list, "the clients, their sources, who made them and when (never a token)")
    command(noun, "rotate", cmd_rotate, "give a client a new token (printed once); the old one stops working").add_argument(
        "name", metavar="NAME"
    )
    command(noun, "remove", cmd_remove, "remove a client: its token stops working, its source stays").add_argument("name", metavar="NAME")
