"""`provtui app ...`: applications, their settings, assignments and health."""

from __future__ import annotations

import argparse

from provtui.cli.directory_options import add_directory_options, directory_options
from provtui.cli.output import EXIT_OK, emit, warn
from provtui.cli.safe_input import ranged
from provtui.domain import numbers
from provtui.domain.errors import InvalidInput
from provtui.domain.users import parse_assignments


def _settings(args) -> dict:
    return {
        "concurrency": args.concurrency,
        "rate": args.rate,
        "delete_after_days": args.delete_after_days,
        "push_groups": args.push_groups,
        "sync_password": args.sync_password,
        "licenses": args.licenses,
    }


def _notify(args) -> list[str] | None:
    if args.notify is None:
        return None
    return [e.strip() for e in args.notify.split(",") if e.strip()]


def _ldap(args) -> dict | None:
    options = directory_options(args)
    if not args.ldap_uri:
        for option in ("bind_dn", "password_env", "password_secret", "base_dn", "rdn_attr", "disable_method", *options):
            if option in options or getattr(args, option, None):
                name = "ca_file" if option == "ca_certificates" else option
                raise InvalidInput(f"--{name.replace('_', '-')}", "goes with --ldap-uri")
        return None
    missing = [f"--{o.replace('_', '-')}" for o in ("bind_dn", "base_dn") if not getattr(args, o)]
    if not args.password_env and not args.password_secret:
        missing.insert(1, "--password-env")
    if missing:
        raise InvalidInput(missing[0], "is required with --ldap-uri")
    return {
        "uri": args.ldap_uri,
        "bind_dn": args.bind_dn,
        "password_env": args.password_env,
        "password_secret": args.password_secret,
        "base_dn": args.base_dn,
        "flavor": args.flavor,
        "rdn_attr": args.rdn_attr,
        "disable_method": args.disable_method,
        **options,
    }


def cmd_create(args, service) -> int:
    settings = {k: v for k, v in _settings(args).items() if v is not None}
    app = service.create_app(
        args.name,
        scim_url=args.scim_url,
        token_env=args.token_env,
        token_secret=args.token_secret,
        manual=args.manual,
        notify=_notify(args),
        ldap=_ldap(args),
        **settings,
    )
    return emit(args, app, text=f"created {app['kind']} app {app['name']}")


_CLEARED = {
    "token_env": ("token", "--token-env"),
    "token_secret": ("token", "--token-secret"),
    "password_env": ("bind password", "--password-env"),
    "password_secret": ("bind password", "--password-secret"),
}


def cmd_update(args, service) -> int:
    if args.manual:
        raise InvalidInput("--manual", "an app's kind cannot change")
    ldap = {
        "uri": args.ldap_uri,
        "bind_dn": args.bind_dn,
        "password_env": args.password_env,
        "password_secret": args.password_secret,
        **directory_options(args),
    }
    app = service.update_app(
        args.name,
        scim_url=args.scim_url,
        token_env=args.token_env,
        token_secret=args.token_secret,
        notify=_notify(args),
        ldap={k: v for k, v in ldap.items() if v is not None} or None,
        **_settings(args),
    )
    for reference in app.get("cleared", ()):  # said on stderr, so --json output stays the app's document
        secret, option = _CLEARED[reference]
        warn(
            f"{app['name']}: its endpoint changed, so its {secret} reference was cleared (a secret does not follow "
            f"an app to a new endpoint); name the variable for the new endpoint with {option}"
        )
    return emit(args, app, text=f"updated {app['name']}")


def cmd_show(args, service) -> int:
    """An app's configuration: where its calls go and which environment variable holds its secret."""
    app = next((a for a in service.list_apps() if a["name"] == args.app), None)
    if app is None:
        raise InvalidInput("APP", f"no app named {args.app!r}")
    view = {
        k: app.get(k)
        for k in (
            "name",
            "kind",
            "scim_url",
            "token_env",
            "token_secret",
            "ldap",
            "notify",
            "capabilities",
            "settings",
            "created",
            "accounts",
            "queued",
        )
    }
    if args.json:
        return emit(args, view)
    for key, value in view.items():
        if isinstance(value, dict):
            for sub, item in value.items():
                print(f"{key}.{sub}: {'' if item is None else item}")
        else:
            print(f"{key}: {'' if value is None else ', '.join(map(str, value)) if isinstance(value, list) else value}")
    return EXIT_OK


def cmd_assignment(args, service) -> int:
    if args.verb == "assign":
        changed = service.assign(args.app, login=args.user, group=args.group, values=parse_assignments(args.set), priority=args.priority)
    else:
        changed = service.unassign(args.app, login=args.user, group=args.group)
    subject = f"user {args.user}" if args.user else f"group {args.group}"
    text = f"{args.verb} {args.app} {'to' if args.verb == 'assign' else 'from'} {subject}" + ("" if changed else ": no change")
    return emit(args, {"app": args.app, "subject": subject, "changed": changed}, text=text)


def cmd_list(args, service) -> int:
    apps = [
        {"name": a["name"], "kind": a["kind"], "url": a.get("scim_url"), "accounts": a["accounts"], "queued": a["queued"]}
        for a in service.list_apps()
    ]
    return emit(args, apps, ["name", "kind", "url", "accounts", "queued"])


def cmd_status(args, service) -> int:
    status = service.app_status(args.app)
    emit(args, status, ["app", "kind", "queued", "in_flight", "failed", "active", "quarantined", "last_success"])
    if not args.json:
        for app in status:
            if app.get("credentials_rejected"):
                code = f"HTTP {app['credentials_status']}: " if app.get("credentials_status") else ""
                print(
                    f"{app['app']}: credentials rejected ({code}{app['credentials_error']}) since {app['credentials_rejected_at']}; "
                    f"paused, {app['queued']} queued; next probe {app['next_probe']} (or at the next sync)"
                )
    return EXIT_OK


def cmd_resume(args, service) -> int:
    status = service.resume_app(args.app)
    return emit(args, status, text=f"{args.app} resumed: {status['queued']} queued")


def cmd_map(args, service) -> int:
    mappings = service.set_mapping(args.app, args.target, args.expr, args.on)
    return emit(args, mappings, text=f"{args.app}: {args.target} <- {args.expr} ({args.on})")


def cmd_unmap(args, service) -> int:
    mappings = service.set_mapping(args.app, args.target, None)
    return emit(args, mappings, text=f"{args.app}: {args.target} is no longer sent")


def cmd_mappings(args, service) -> int:
    return emit(args, service.mappings(args.app), ["target", "expr", "on"])


def cmd_preview(args, service) -> int:
    preview = service.preview_payload(args.app, args.login)
    if args.json:
        return emit(args, preview["payload"])
    import json

    print(json.dumps(preview["payload"], indent=2, ensure_ascii=False))
    return 0


def _add_settings(p, *, update: bool) -> None:
    p.add_argument("--scim-url", help="the SCIM base URL (no credentials in it)" + ("; a new one clears --token-env" if update else ""))
    p.add_argument("--token-env", metavar="VAR", help="environment variable holding the bearer token (its name, never the token)")
    p.add_argument("--token-secret", metavar="NAME", help="a secret the server holds as the bearer token (`provtui secret set NAME`)")
    p.add_argument("--manual", action="store_true", help="an app with no API: provisioning becomes tasks")
    p.add_argument("--notify", metavar="EMAIL[,EMAIL...]", help="who is emailed a manual app's tasks")
    p.add_argument("--concurrency", type=ranged(numbers.CONCURRENCY), metavar="N", help="calls in flight at once (default 4)")
    p.add_argument("--rate", type=ranged(numbers.RATE), metavar="PER_SECOND", help="calls per second at most")
    flag = argparse.BooleanOptionalAction if update else "store_true"
    default = None if update else False
    p.add_argument("--push-groups", action=flag, default=default, help="the app receives pushed groups")
    p.add_argument("--sync-password", action=flag, default=default, help="the app receives password changes")
    p.add_argument(
        "--delete-after-days", type=ranged(numbers.RETENTION_DAYS), metavar="N", help="delete accounts N days after deactivation"
    )
    p.add_argument(
        "--licenses", type=ranged(numbers.LICENSES), metavar="N", help="licenses bought: `report apps` compares active accounts with it"
    )


def _app_directory_options(p) -> None:
    add_directory_options(p)
    p.add_argument(
        "--external-id-attribute", metavar="ATTR", help="an LDAP app's attribute holding the person's provtui id (default: employeeNumber)"
    )


def register(cli) -> None:
    app, command = cli.noun("app", "applications"), cli.command
    p = command(app, "create", cmd_create, "add a SCIM, LDAP/AD or manual app")
    p.add_argument("name")
    _add_settings(p, update=False)
    p.add_argument("--ldap-uri", metavar="URI", help="an LDAP/AD directory as the downstream target")
    p.add_argument("--bind-dn", metavar="DN")
    p.add_argument("--password-env", metavar="VAR", help="environment variable holding the bind password")
    p.add_argument("--password-secret", metavar="NAME", help="a secret the server holds as the bind password")
    p.add_argument("--base-dn", metavar="DN", help="where the app's entries are created")
    p.add_argument("--flavor", choices=["openldap", "ad"], default="openldap")
    p.add_argument("--rdn-attr", metavar="ATTR", help="the naming attribute (default uid; cn for AD)")
    p.add_argument(
        "--disable-method", metavar="ou:DN|attr:NAME=VALUE", help="how OpenLDAP entries are disabled (AD: the ACCOUNTDISABLE bit)"
    )
    _app_directory_options(p)
    p = command(app, "update", cmd_update, "change an app's connection or settings (its endpoint and secret: super admin)")
    p.add_argument("name")
    _add_settings(p, update=True)
    p.add_argument("--ldap-uri", metavar="URI", help="an LDAP app's directory (a new endpoint clears --password-env)")
    p.add_argument("--bind-dn", metavar="DN", help="an LDAP app's bind DN (a new one clears --password-env)")
    p.add_argument("--password-env", metavar="VAR", help="environment variable holding an LDAP app's bind password")
    p.add_argument("--password-secret", metavar="NAME", help="a secret the server holds as an LDAP app's bind password")
    _app_directory_options(p)
    for verb in ("assign", "unassign"):
        p = command(app, verb, cmd_assignment, f"{verb} an app to a user or a group")
        p.add_argument("app")
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", metavar="LOGIN")
        who.add_argument("--group", metavar="GROUP")
        if verb == "assign":
            p.add_argument(
                "--set", action="append", default=[], metavar="KEY=VALUE", help="an app-specific value (mappings: assignment.KEY)"
            )
            p.add_argument(
                "--priority", type=ranged(numbers.PRIORITY), metavar="N", help="for a group: lower wins when several groups entitle a user"
            )
    command(app, "list", cmd_list, "list apps")
    p = command(app, "show", cmd_show, "an app's configuration: endpoint, secret reference, settings")
    p.add_argument("app")
    p = command(app, "status", cmd_status, "queued, in flight, failed, quarantined and last success, per app")
    p.add_argument("app", nargs="?")
    p = command(app, "resume", cmd_resume, "lift an app's quarantine")
    p.add_argument("app")
    p = command(app, "map", cmd_map, "map a downstream attribute to an expression")
    p.add_argument("app")
    p.add_argument("target", metavar="TARGET", help='a SCIM path: title, name.givenName, emails[type eq "work"].value, urn:...:department')
    p.add_argument("expr", metavar="EXPR", help='e.g. user.firstName + " " + user.lastName')
    p.add_argument("--on", choices=["create", "always"], default="always", help="send it only on create, or always")
    p = command(app, "unmap", cmd_unmap, "stop sending a downstream attribute")
    p.add_argument("app")
    p.add_argument("target", metavar="TARGET")
    command(app, "mappings", cmd_mappings, "the app's attribute mappings").add_argument("app")
    p = command(app, "preview", cmd_preview, "the payload that would be sent for a user")
    p.add_argument("app")
    p.add_argument("login")
