"""Building the organisation: SCIM apps on fault servers, manual apps mailing an SMTP server, people from an HR CSV
(through the CLI) and from LDAP (a throwaway slapd), groups, rules and assignments."""

from __future__ import annotations

import os
import random
import secrets
import subprocess
import sys
import zlib
from contextlib import ExitStack
from pathlib import Path

from provtui.model.schema import USERS
from provtui.service import Service
from provtui.testing.scim_server import free_port
from provtui.testing.soak.options import Options, log
from provtui.testing.soak.writers import DEPARTMENTS, FIRST, LAST, TITLES, rule_expression

TOKEN_ENV = "PROVTUI_SOAK_TOKEN_{n}"
LDAP_PASSWORD_ENV = "PROVTUI_SOAK_LDAP_PASSWORD"

CSV_HEADER = "Employee ID,Legal First Name,Legal Last Name,Work Email,Department,Business Title,Worker Status"


def hr_csv(count: int) -> bytes:
    lines = [CSV_HEADER]
    for n in range(count):
        first, last = FIRST[n % len(FIRST)], LAST[(n // len(FIRST)) % len(LAST)]
        status = "On Leave" if n % 50 == 7 else "Active"
        lines.append(
            f"E{n:06d},{first},{last},{first.lower()}.{last.lower()}.{n}@example.com,"
            f"{DEPARTMENTS[n % len(DEPARTMENTS)]},{TITLES[(n // 7) % len(TITLES)]},{status}"
        )
    return ("\r\n".join(lines) + "\r\n").encode()


def build(stack: ExitStack, options: Options, work: Path, env: dict[str, str], started: float):
    """Servers started, store built and populated; returns (service, fault servers by app name, mail server)."""
    from aiosmtpd.controller import Controller

    from provtui.testing.fault_server import FaultServerProcess
    from provtui.testing.slapd import SlapdProcess, generate_people, group_entry, slapd_available

    rng = random.Random(options.seed)
    store = options.store or work / "store"
    service = Service.init(store)
    servers = {}
    for n in range(options.apps):
        token = secrets.token_urlsafe(18)
        env[TOKEN_ENV.format(n=n)] = token
        server = stack.enter_context(FaultServerProcess(token=token, log_file=work / f"app{n}.log"))
        name = f"Scim{n:02d}"
        servers[name] = server
        service.create_app(name, scim_url=server.url, token_env=TOKEN_ENV.format(n=n), concurrency=4, sync_password=n < 3)
    mail = _Mailbox()
    controller = Controller(mail, hostname="127.0.0.1", port=free_port())
    controller.start()
    stack.callback(controller.stop)
    for key, value in (("smtp.host", "127.0.0.1"), ("smtp.port", str(controller.port)), ("smtp.from", "provtui@example.com")):
        service.set_config(key, value)
    manual = [service.create_app(f"Manual{n}", manual=True, notify=["it@example.com"])["name"] for n in range(options.manual_apps)]
    log(f"{options.apps} SCIM apps (fault-injecting scim2-servers), {options.manual_apps} manual apps, SMTP on {controller.port}", started)

    ldap_people = int(options.people * options.ldap_share) if slapd_available() else 0
    csv_file = work / "hr.csv"
    csv_file.write_bytes(hr_csv(options.people - ldap_people))
    result = subprocess.run(
        [sys.executable, "-m", "provtui", "import", "csv", str(csv_file), "--store", str(store), "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    if result.returncode != 0:
        raise RuntimeError(f"provtui import csv: exit {result.returncode}: {result.stderr}")
    log(f"imported {options.people - ldap_people} people from an HR CSV (provtui import csv)", started)
    if ldap_people:
        slapd = stack.enter_context(SlapdProcess(ad_schema=False))
        people = list(generate_people(slapd.people_dn, ldap_people, prefix="ldap"))
        slapd.add_ldif(people)
        dns = [dn for dn, _ in people]
        slapd.add_ldif([group_entry(slapd.groups_dn, f"ldap-group{g}", dns[g::5]) for g in range(5) if dns[g::5]])
        env[LDAP_PASSWORD_ENV] = slapd.reader_password
        os.environ[LDAP_PASSWORD_ENV] = slapd.reader_password
        service.importer().add_ldap_source(
            "corp",
            uri=slapd.uri,
            bind_dn=slapd.reader_dn,
            password_env=LDAP_PASSWORD_ENV,
            base_dn=slapd.base_dn,
            page_size=500,
            max_clock_skew=0,
        )
        imported = service.importer().import_ldap("corp")
        log(f"imported {imported['created']} people and 5 groups from LDAP (slapd)", started)
    else:
        log("slapd is not installed: every person comes from the CSV", started)

    groups = [service.create_group(f"team-{g:03d}")["name"] for g in range(options.groups)]
    for r in range(options.rules):
        name = f"rule-{r:03d}"
        service.rules().create(name, groups=[groups[r]], expr=rule_expression(rng), exclude=[])
        service.rules().change(name, state=_active(), confirm=True)
    logins = sorted(u["login"] for u in service.store.all(USERS).values())
    manual_groups = groups[options.rules :]
    for name in manual_groups:
        service.add_members(name, rng.sample(logins, min(len(logins), max(1, options.people // 100))))
    log(f"{options.groups} groups ({options.rules} by rule), {options.rules} rules, {len(manual_groups)} groups filled by hand", started)
    # Each app is reached through a rule's group and a hand-filled one; about two accounts a person in all.
    scim = list(servers)
    for n, name in enumerate([*scim, *manual]):
        if options.rules:
            service.assign(name, group=groups[n % options.rules])
        for g in range(3):
            if manual_groups:
                service.assign(name, group=manual_groups[(n * 3 + g) % len(manual_groups)])
    for group in service.list_groups():
        if group.get("kind", "provtui") != "provtui" and scim:  # the LDAP groups
            service.assign(scim[zlib.crc32(group["name"].encode()) % len(scim)], group=group["name"])
    service.refresh()
    log(f"{service.user_count()} people, {service.pending_work()} accounts queued to provision", started)
    return service, servers, mail


def _active():
    from provtui.domain.rules import RuleState

    return RuleState.ACTIVE


class _Mailbox:
    def __init__(self):
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.count += 1
        return "250 OK"
