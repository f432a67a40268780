"""Benchmark: provtui against a real Active Directory (a Samba 4 AD DC), issue #17's speed targets.

    python tests/bench/bench_ad.py [--users 10000] [--groups 20] [--big-group 2000] [--accounts 200]
                                   [--concurrency 4] [--repeat 3] [--json]

One Samba AD DC (provtui.testing.samba.SambaDC, ``samba -M single``: one process) on 127.0.0.60 or the next
free address (never the tests' 127.0.0.20+), LDAPS under its own CA, which every client here verifies.  It is
seeded, untimed, over one raw ldap3 LDAPS connection (``conn.add`` in a loop) under ``OU=bench-source``:
``--users`` enabled users without a password (sAMAccountName ``u00000``..., givenName, sn, displayName, mail,
userPrincipalName, title, department), ``--groups`` groups sharing them out (each user in one group: 20 of
500 at the default size) and one group of the first ``--big-group`` users (2,000).

1. Import (target: provtui's first import within 2x of the bare read).  Interleaved, ``--repeat`` times:

   - ``bare ldap3 read``  : a bare ldap3 client (LDAPS, the CA verified, ``auto_range=False``, one bound
     connection) reads what provtui reads, the same way: every user under the OU (the AD user filter,
     ``source.user_attributes()``'s attributes) and every group (the AD group filter; cn, description,
     objectGUID, objectSid, member, uniqueMember), paged searches of 500 marked critical, a group's further
     ``member;range=`` values fetched when the server holds them back (Samba does not);
   - ``connector read``   : for information, provtui's own ``read_users`` + ``read_groups`` (no store): the
     same searches, two sessions, plus the primaryGroupID search AD's primary groups need;
   - ``provtui import``   : ``Service.init`` of a fresh store, ``add_ldap_source("ad", flavor="ad", ldaps,
     ca_certificates=the CA's PEM)`` (untimed), then ``import_ldap("ad")``: a full first run creating every
     user, group and membership in one commit;
   - ``second import``    : ``import_ldap("ad", full=True)`` on that store with nothing changed, which must
     report 0 created/updated/deactivated and no membership change (printed, and verified).

   The ratio is provtui import / bare ldap3 read, medians.  Verified after each import: the store holds
   ``--users`` users and the source's groups with their member counts (the big group: ``--big-group``).

2. AD as a target (target: at least 20 accounts a second at ``--concurrency`` 4).  Interleaved, ``--repeat``
   times, each side into a fresh OU of its own, with logins no other run holds (sAMAccountName is unique
   across the domain):

   - ``bare ldap3``       : ``--concurrency`` threads, one LDAPS connection each (opened and bound inside the
     clock), doing per account what provtui does on AD: an add (userAccountControl 546 = 0x222, disabled,
     password not required; sAMAccountName, userPrincipalName, cn=sAMAccountName, givenName, sn,
     displayName, mail, employeeNumber), a modify setting unicodePwd (a random password meeting AD's
     complexity, quoted, UTF-16-LE), a modify setting userAccountControl 512: 3 operations an account;
   - ``provtui``          : a fresh store, ``create_app("AD", ldap={..., flavor ad, ldaps, the CA}, concurrency=C)``,
     ``--accounts`` users created active and assigned to it (untimed), then
     ``asyncio.run(engine.run_until_idle())`` with ``engine = build_engine(service)``; the report must have
     no failure and ``done == --accounts``.  Its LDAP operations per account are counted from the audit
     trail (``downstream.call`` events, by ``after["method"]``) and printed beside the bare client's 3.

   Accounts per second, medians; the ratio is provtui / bare.  Verified on both sides: the OU holds
   ``--accounts`` users, each enabled (userAccountControl 512) with a password (pwdLastSet > 0).

CPU: ``client CPU`` is ``time.process_time()`` of this process (all its threads) over the timed section;
``DC CPU`` is utime+stime of the samba process from /proc/<pid>/stat.  Samba runs as one process, so its CPU
is mostly one core: on a 2-core machine client and DC compete for the same cores.

Also printed: Samba's version, Python, CPUs, how long the DC took to start and the seeding took.  With
``--json``, one JSON object with every figure.  The exit status is 1 only when a verification fails (the
targets are reported, not enforced: timings depend on the machine), 2 when Samba is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import queue
import secrets
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ldap3
from ldap3.core.exceptions import LDAPException

from provtui.compose import build_engine
from provtui.connectors.ldap import LdapSettings, read_groups, read_users
from provtui.connectors.ldap.entries import parse_range_option
from provtui.connectors.ldap.settings import MEMBER_ATTRIBUTES, OBJECT_SID
from provtui.connectors.ldap.source import user_attributes
from provtui.service import Service
from provtui.testing.samba import INSTALL_HINT, SambaDC, encode_password, free_loopback_ip, samba_available
from provtui.testing.samba.provision import find_binary

ACTOR = "admin"
PASSWORD_ENV = "PROVTUI_BENCH_AD_PASSWORD"
FIRST_HOST, HOST_STEP = 60, 1  # 127.0.0.60 and up: the tests' DCs take 127.0.0.20+
PAGE_SIZE = 500
PAGED_OID = "1.2.840.113556.1.4.319"
IMPORT_TARGET = 2.0  # provtui import / bare ldap3 read, at most
RATE_TARGET = 20.0  # accounts a second provisioned into AD, at least
BARE_OPS = ("ADD", "MODIFY", "MODIFY")  # what the bare target client does per account
USER_CLASSES = ["top", "person", "organizationalPerson", "user"]
CREATED_UAC = 0x222  # 546: normal account, disabled, password not required (provtui's ad_accounts.CREATED)
ENABLED_UAC = 0x200  # 512: normal account, enabled
CLK_TCK = os.sysconf("SC_CLK_TCK")
FIRST = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth")
LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson", "Moore")
DEPARTMENTS = ("Engineering", "Sales", "Finance", "Support", "People", "Marketing", "Legal")
TITLES = ("Engineer", "Manager", "Analyst", "Director", "Associate", "Specialist")
BIG_GROUP = "bigrp"
QUIET_KEYS = ("created", "updated", "suspended", "deactivated", "reactivated")


def progress(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


def samba_version() -> str:
    samba = find_binary("samba")
    if samba is None:
        return "?"
    done = subprocess.run([samba, "-V"], capture_output=True, text=True, check=False, timeout=30)
    return (done.stdout or done.stderr).strip().removeprefix("Version ").strip() or "?"


def dc_cpu(dc: SambaDC) -> float:
    """utime + stime (seconds) of the samba process, all threads (``-M single``: the whole DC)."""
    try:
        with open(f"/proc/{dc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Measure:
    """Wall clock, this process's CPU (every thread) and the DC's CPU over a block."""

    def __init__(self, dc: SambaDC):
        self.dc = dc

    def __enter__(self):
        self.dc0 = dc_cpu(self.dc)
        self.cpu0 = time.process_time()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self.client_cpu = time.process_time() - self.cpu0
        self.dc_cpu = dc_cpu(self.dc) - self.dc0

    def figures(self) -> dict:
        return {"seconds": self.seconds, "client_cpu_s": self.client_cpu, "dc_cpu_s": self.dc_cpu}


def connect(dc: SambaDC, ca_pem: str, *, read_only: bool = False) -> ldap3.Connection:
    """A bare ldap3 LDAPS connection as the Administrator, the DC's CA verified; ranges not merged by ldap3."""
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_data=ca_pem)
    server = ldap3.Server(dc.ldaps_uri, use_ssl=True, tls=tls, get_info=ldap3.NONE, connect_timeout=10)
    return ldap3.Connection(
        server,
        user=dc.admin_dn,
        password=dc.admin_password,
        auto_bind=ldap3.AUTO_BIND_NO_TLS,
        read_only=read_only,
        auto_range=False,
        receive_timeout=60,
        raise_exceptions=True,
    )


# --------------------------------------------------------------------------- the directory's data


def sam_name(n: int, width: int) -> str:
    return f"u{n:0{width}d}"


def seed(dc: SambaDC, ou: str, users: int, groups: int, big: int) -> dict:
    """The source OU's users and groups, over one raw connection; returns the expected groups and the timings."""
    width = max(5, len(str(users - 1)))
    realm = dc.realm.lower()
    dns = []
    with dc.connection() as conn:
        started = time.perf_counter()
        for n in range(users):
            first, last = FIRST[n % len(FIRST)], LAST[(n // len(FIRST)) % len(LAST)]
            sam = sam_name(n, width)
            dn = f"CN={sam},{ou}"
            attributes = {
                "cn": sam,
                "sAMAccountName": sam,
                "givenName": first,
                "sn": last,
                "displayName": f"{first} {last}",
                "mail": f"{first}.{last}.{n}@example.com".lower(),
                "userPrincipalName": f"{sam}@{realm}",
                "title": TITLES[n % len(TITLES)],
                "department": DEPARTMENTS[n % len(DEPARTMENTS)],
                "userAccountControl": ENABLED_UAC,
            }
            conn.add(dn, USER_CLASSES, attributes)
            dns.append(dn)
            if n and n % 2000 == 0:
                progress(f"seeded {n:,} users ({(time.perf_counter() - started) * 1000 / n:.1f} ms a user)")
        users_s = time.perf_counter() - started
        expected: dict[str, int] = {}
        block = -(-users // groups) if groups else 0
        for g in range(groups):
            members = dns[g * block : (g + 1) * block]
            if not members:
                continue
            name = f"grp{g:03d}"
            conn.add(f"CN={name},{ou}", ["top", "group"], {"cn": name, "sAMAccountName": name, "member": members})
            expected[name] = len(members)
        if big:
            members = dns[: min(big, users)]
            conn.add(f"CN={BIG_GROUP},{ou}", ["top", "group"], {"cn": BIG_GROUP, "sAMAccountName": BIG_GROUP, "member": members})
            expected[BIG_GROUP] = len(members)
        seconds = time.perf_counter() - started
    return {
        "users": users,
        "groups": len(expected),
        "memberships": sum(expected.values()),
        "expected_groups": expected,
        "users_s": users_s,
        "groups_s": seconds - users_s,
        "seconds": seconds,
        "ms_per_user": users_s * 1000 / users,
    }


# --------------------------------------------------------------------------- 1. import


def group_attributes(settings: LdapSettings) -> list[str]:
    """What source.read_groups asks for (group_entries adds the member attributes)."""
    return list(dict.fromkeys(["cn", "description", settings.uuid_attribute, OBJECT_SID, *MEMBER_ATTRIBUTES]))


def paged(conn: ldap3.Connection, base: str, search_filter: str, attributes: list[str]):
    cookie = None
    while True:
        conn.search(
            base,
            search_filter,
            search_scope=ldap3.SUBTREE,
            attributes=attributes,
            paged_size=PAGE_SIZE,
            paged_criticality=True,
            paged_cookie=cookie,
        )
        for response in conn.response or []:
            if response.get("type") == "searchResEntry":
                yield response["dn"], response.get("raw_attributes") or {}
        try:
            cookie = conn.result["controls"][PAGED_OID]["value"]["cookie"]
        except (KeyError, TypeError):
            cookie = None
        if not cookie:
            return


def member_count(conn: ldap3.Connection, dn: str, raw: dict) -> int:
    """A group's member values, with the further ranges (``member;range=1500-*``) fetched when held back."""
    count = 0
    for attribute in MEMBER_ATTRIBUTES:
        ranged = None
        for name, values in raw.items():
            option = parse_range_option(name)
            if name.lower() == attribute.lower() or (option is not None and option[0].lower() == attribute.lower()):
                count += len(values or [])
                ranged = option or ranged
        while ranged is not None and ranged[2] is not None:
            conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=[f"{attribute};range={ranged[2] + 1}-*"])
            page = (conn.response or [{}])[0].get("raw_attributes") or {}
            ranged = None
            for name, values in page.items():
                option = parse_range_option(name)
                if option is not None and option[0].lower() == attribute.lower():
                    count += len(values or [])
                    ranged = option
    return count


def bare_read(dc: SambaDC, ca_pem: str, settings: LdapSettings) -> dict:
    """The baseline: a bare ldap3 client reading the users and the groups with their members."""
    with Measure(dc) as m:
        conn = connect(dc, ca_pem, read_only=True)
        try:
            users = sum(1 for _ in paged(conn, settings.base_dn, settings.effective_user_filter, user_attributes(settings)))
            group_list = list(paged(conn, settings.base_dn, settings.effective_group_filter, group_attributes(settings)))
            members = sum(member_count(conn, dn, raw) for dn, raw in group_list)
        finally:
            conn.unbind()
    return {**m.figures(), "users": users, "groups": len(group_list), "members": members}


def connector_read(dc: SambaDC, settings: LdapSettings) -> dict:
    """provtui's connector alone: read_users + read_groups, as import_ldap calls them."""
    with Measure(dc) as m:
        users, _ = read_users(settings)
        groups = read_groups(settings)
    return {**m.figures(), "users": len(users), "groups": len(groups), "members": sum(len(g.member_dns) for g in groups)}


def store_groups(service: Service) -> dict[str, int]:
    return {g["name"]: g["members"] for g in service.list_groups() if g.get("kind") == "source:ad"}


def quiet(result: dict) -> bool:
    groups = result.get("groups") or {}
    return all(result.get(k) == 0 for k in QUIET_KEYS) and groups.get("members_added") == groups.get("members_removed") == 0


def import_run(dc: SambaDC, ca_pem: str, ou: str, work: Path, run: int, seeded: dict) -> dict:
    """A fresh store, the source added (untimed), the first full import, then a second one with nothing changed."""
    path = work / f"import-{run}"
    shutil.rmtree(path, ignore_errors=True)
    gc.collect()
    service = Service.init(path, actor=ACTOR)
    service.add_ldap_source(
        "ad", uri=dc.ldaps_uri, bind_dn=dc.admin_dn, password_env=PASSWORD_ENV, base_dn=ou, flavor="ad", ca_certificates=ca_pem
    )
    with Measure(dc) as first:
        result = service.import_ldap("ad")
    with Measure(dc) as second:
        again = service.import_ldap("ad", full=True)
    users, groups = service.user_count(), store_groups(service)
    expected = seeded["expected_groups"]
    out = {
        "first": first.figures(),
        "second": second.figures(),
        "created": result.get("created"),
        "first_groups": result.get("groups"),
        "second_result": {k: again.get(k) for k in (*QUIET_KEYS, "mode")} | {"groups": again.get("groups")},
        "second_quiet": quiet(again),
        "store_users": users,
        "store_groups": groups,
        "verified": result.get("created") == seeded["users"] and users == seeded["users"] and groups == expected,
    }
    del service, result, again
    gc.collect()
    shutil.rmtree(path, ignore_errors=True)
    return out


def bench_import(dc: SambaDC, ca_pem: str, ou: str, work: Path, repeat: int, seeded: dict) -> dict:
    settings = LdapSettings(
        uri=dc.ldaps_uri, bind_dn=dc.admin_dn, password_env=PASSWORD_ENV, base_dn=ou, flavor="ad", ca_certificates=ca_pem
    )
    bare_read(dc, ca_pem, settings)  # untimed: the DC's caches warm for everyone
    runs: dict[str, list[dict]] = {"bare": [], "connector": [], "imports": []}
    for run in range(repeat):
        bare = bare_read(dc, ca_pem, settings)
        runs["bare"].append(bare)
        runs["connector"].append(connector_read(dc, settings))
        done = import_run(dc, ca_pem, ou, work, run, seeded)
        runs["imports"].append(done)
        progress(
            f"import run {run + 1}/{repeat}: bare read {bare['seconds']:.2f} s, connector read "
            f"{runs['connector'][-1]['seconds']:.2f} s, provtui import {done['first']['seconds']:.2f} s, "
            f"second {done['second']['seconds']:.2f} s{'' if done['verified'] and done['second_quiet'] else '  NOT VERIFIED'}"
        )

    def side(rows: list[dict]) -> dict:
        return {key: median([r[key] for r in rows]) for key in ("seconds", "client_cpu_s", "dc_cpu_s")}

    bare, connector = side(runs["bare"]), side(runs["connector"])
    first, second = side([r["first"] for r in runs["imports"]]), side([r["second"] for r in runs["imports"]])
    expected = (seeded["users"], seeded["groups"], seeded["memberships"])
    bare_ok = all((r["users"], r["groups"], r["members"]) == expected for r in runs["bare"])
    connector_ok = all((r["users"], r["groups"], r["members"]) == expected for r in runs["connector"])
    last = runs["imports"][-1]
    return {
        "bare": {**bare, "runs_s": [r["seconds"] for r in runs["bare"]]},
        "connector": {**connector, "runs_s": [r["seconds"] for r in runs["connector"]]},
        "first": {**first, "runs_s": [r["first"]["seconds"] for r in runs["imports"]]},
        "second": {**second, "runs_s": [r["second"]["seconds"] for r in runs["imports"]]},
        "bare_seen": {k: runs["bare"][-1][k] for k in ("users", "groups", "members")},
        "connector_seen": {k: runs["connector"][-1][k] for k in ("users", "groups", "members")},
        "ratio": ratio(first["seconds"], bare["seconds"]),
        "second_ratio": ratio(second["seconds"], bare["seconds"]),
        "connector_ratio": ratio(connector["seconds"], bare["seconds"]),
        "created": last["created"],
        "first_groups": last["first_groups"],
        "second_result": last["second_result"],
        "second_quiet": all(r["second_quiet"] for r in runs["imports"]),
        "store_users": last["store_users"],
        "store_groups": last["store_groups"],
        "expected_groups": seeded["expected_groups"],
        "verified": bare_ok and connector_ok and all(r["verified"] for r in runs["imports"]),
        "target_ratio": IMPORT_TARGET,
        "met": ratio(first["seconds"], bare["seconds"]) <= IMPORT_TARGET,
    }


# --------------------------------------------------------------------------- 2. AD as a target


def person(n: int) -> tuple[str, str]:
    return FIRST[n % len(FIRST)], LAST[(n // len(FIRST)) % len(LAST)]


def new_password() -> str:
    """A random password meeting AD's complexity rules, as provtui gives a new account (target._initial_password)."""
    return f"{secrets.token_urlsafe(24)}aZ9!"


def ou_accounts(dc: SambaDC, ca_pem: str, ou: str) -> dict:
    """The users under ``ou``: how many, how many enabled with a password."""
    conn = connect(dc, ca_pem, read_only=True)
    try:
        entries = list(paged(conn, ou, "(&(objectClass=user)(objectCategory=person))", ["userAccountControl", "pwdLastSet"]))
    finally:
        conn.unbind()

    def number(raw: dict, name: str) -> int:
        values = raw.get(name) or [b"0"]
        return int(values[0])

    ready = sum(1 for _, raw in entries if number(raw, "userAccountControl") == ENABLED_UAC and number(raw, "pwdLastSet") > 0)
    return {"users": len(entries), "enabled_with_password": ready}


def bare_target(dc: SambaDC, ca_pem: str, ou: str, run: int, accounts: int, concurrency: int) -> dict:
    """The baseline: ``concurrency`` threads, an LDAPS connection each, add + password + enable per account."""
    work: queue.SimpleQueue = queue.SimpleQueue()
    for n in range(accounts):
        work.put(n)
    failures: list[str] = []
    done = Counter()
    lock = threading.Lock()

    def worker() -> None:
        conn = connect(dc, ca_pem)
        try:
            while True:
                try:
                    n = work.get_nowait()
                except queue.Empty:
                    return
                first, last = person(n)
                sam = f"b{run}t{n:04d}"
                dn = f"CN={sam},{ou}"
                email = f"{sam}@example.com"
                attributes = {
                    "sAMAccountName": sam,
                    "userPrincipalName": email,
                    "cn": sam,
                    "givenName": first,
                    "sn": last,
                    "displayName": f"{first} {last}",
                    "mail": email,
                    "employeeNumber": secrets.token_hex(16),
                    "userAccountControl": CREATED_UAC,
                }
                try:
                    conn.add(dn, USER_CLASSES, attributes)
                    conn.modify(dn, {"unicodePwd": [(ldap3.MODIFY_REPLACE, [encode_password(new_password())])]})
                    conn.modify(dn, {"userAccountControl": [(ldap3.MODIFY_REPLACE, [ENABLED_UAC])]})
                except LDAPException as error:
                    with lock:
                        failures.append(f"{sam}: {error}")
                    continue
                with lock:
                    done["accounts"] += 1
        finally:
            conn.unbind()

    with Measure(dc) as m:
        threads = [threading.Thread(target=worker, name=f"bare-{i}") for i in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    found = ou_accounts(dc, ca_pem, ou)
    return {
        **m.figures(),
        "done": done["accounts"],
        "rate": done["accounts"] / m.seconds if m.seconds else 0.0,
        "failed": failures[:10],
        "found": found,
        "verified": done["accounts"] == accounts and found == {"users": accounts, "enabled_with_password": accounts},
    }


def provtui_target(dc: SambaDC, ca_pem: str, ou: str, work: Path, run: int, accounts: int, concurrency: int) -> dict:
    """provtui: a store with ``accounts`` active users assigned to an AD app; the engine provisions them."""
    path = work / f"target-{run}"
    shutil.rmtree(path, ignore_errors=True)
    gc.collect()
    service = Service.init(path, actor=ACTOR)
    ldap = {
        "uri": dc.ldaps_uri,
        "bind_dn": dc.admin_dn,
        "password_env": PASSWORD_ENV,
        "base_dn": ou,
        "flavor": "ad",
        "ca_certificates": ca_pem,
    }
    service.create_app("AD", ldap=ldap, concurrency=concurrency)
    for n in range(accounts):
        first, last = person(n)
        login = f"p{run}t{n:04d}"
        service.create_user(login, f"{login}@example.com", first, last, activate=True)
        service.assign("AD", login=login)
    engine = build_engine(service)

    async def provision():
        try:
            return await engine.run_until_idle()
        finally:
            await engine.aclose()

    with Measure(dc) as m:
        report = asyncio.run(provision())
    calls = Counter(event["after"]["method"] for event in service.audit(action="downstream.call"))
    found = ou_accounts(dc, ca_pem, ou)
    out = {
        **m.figures(),
        "done": report.done,
        "rate": report.done / m.seconds if m.seconds else 0.0,
        "failed": [{k: f.get(k) for k in ("user", "action", "status", "error")} for f in report.failed[:10]],
        "failed_count": len(report.failed),
        "deferred": len(report.deferred),
        "retries": report.retries,
        "calls": dict(sorted(calls.items())),
        "ops_per_account": sum(calls.values()) / accounts,
        "found": found,
        "verified": report.failed == [] and report.done == accounts and found == {"users": accounts, "enabled_with_password": accounts},
    }
    del service, report
    gc.collect()
    shutil.rmtree(path, ignore_errors=True)
    return out


def bench_target(dc: SambaDC, ca_pem: str, work: Path, repeat: int, accounts: int, concurrency: int) -> dict:
    runs: dict[str, list[dict]] = {"bare": [], "provtui": []}
    for run in range(repeat):  # interleaved, each side into a fresh OU of its own
        bare = bare_target(dc, ca_pem, dc.add_ou(f"bench-bare-{run}"), run, accounts, concurrency)
        runs["bare"].append(bare)
        ours = provtui_target(dc, ca_pem, dc.add_ou(f"bench-provtui-{run}"), work, run, accounts, concurrency)
        runs["provtui"].append(ours)
        progress(
            f"target run {run + 1}/{repeat}: bare {bare['rate']:.1f} accounts/s, provtui {ours['rate']:.1f} accounts/s "
            f"({ours['ops_per_account']:.1f} LDAP operations an account)"
            f"{'' if bare['verified'] and ours['verified'] else '  NOT VERIFIED'}"
        )
        for failure in ours["failed"][:3]:
            progress(f"  provtui failed: {failure}")
        for failure in bare["failed"][:3]:
            progress(f"  bare client failed: {failure}")

    def side(rows: list[dict]) -> dict:
        figures = {key: median([r[key] for r in rows]) for key in ("rate", "seconds", "client_cpu_s", "dc_cpu_s")}
        done = max(median([r["done"] for r in rows]), 1)
        return {
            **figures,
            "client_cpu_ms_per_account": figures["client_cpu_s"] * 1000 / done,
            "dc_cpu_ms_per_account": figures["dc_cpu_s"] * 1000 / done,
            "runs": [r["rate"] for r in rows],
            "verified": all(r["verified"] for r in rows),
        }

    bare, ours = side(runs["bare"]), side(runs["provtui"])
    last = runs["provtui"][-1]
    per_method = {method: count / accounts for method, count in last["calls"].items()}
    bare_methods = Counter(BARE_OPS)
    return {
        "accounts": accounts,
        "concurrency": concurrency,
        "bare": bare,
        "provtui": {
            **ours,
            "ops_per_account": median([r["ops_per_account"] for r in runs["provtui"]]),
            "ops_by_method_per_account": per_method,
            "binds": last["calls"].get("BIND", 0),
            "retries": last["retries"],
            "deferred": last["deferred"],
            "failed": last["failed"],
            "failed_count": sum(r["failed_count"] for r in runs["provtui"]),
        },
        "bare_ops_per_account": len(BARE_OPS),
        "bare_ops_by_method_per_account": dict(bare_methods),
        "bare_binds": concurrency,
        "bare_failed": runs["bare"][-1]["failed"],
        "ratio": ratio(ours["rate"], bare["rate"]),
        "dc_ceiling_rate": 1000 / bare["dc_cpu_ms_per_account"] if bare["dc_cpu_ms_per_account"] else 0.0,
        "target_rate": RATE_TARGET,
        "met": ours["rate"] >= RATE_TARGET,
        "verified": bare["verified"] and ours["verified"],
    }


# --------------------------------------------------------------------------- running and reporting


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="provtui-bench-ad-"))
    try:
        ip = free_loopback_ip(FIRST_HOST, HOST_STEP)
        up = time.perf_counter()
        with SambaDC(ip) as dc:
            dc_start = time.perf_counter() - up
            progress(f"Samba AD DC on {dc.ldaps_uri} in {dc_start:.2f} s ({', '.join(f'{k} {v:.2f} s' for k, v in dc.timings.items())})")
            os.environ[PASSWORD_ENV] = dc.admin_password
            ca_pem = Path(dc.ca_file).read_text()
            ou = dc.add_ou("bench-source")
            seeded = seed(dc, ou, args.users, args.groups, args.big_group)
            progress(
                f"seeded {seeded['users']:,} users in {seeded['users_s']:.1f} s ({seeded['ms_per_user']:.1f} ms a user), "
                f"{seeded['groups']} groups ({seeded['memberships']:,} memberships) in {seeded['groups_s']:.1f} s"
            )
            imported = bench_import(dc, ca_pem, ou, work, args.repeat, seeded)
            target = bench_target(dc, ca_pem, work, args.repeat, args.accounts, args.concurrency)
            address = dc.ldaps_uri
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "samba": samba_version(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "dc": address,
        "dc_start_s": dc_start,
        "repeat": args.repeat,
        "seed": seeded,
        "import": imported,
        "target": target,
        "targets": {"import_ratio": IMPORT_TARGET, "accounts_per_second": RATE_TARGET},
        "verified": imported["verified"] and imported["second_quiet"] and target["verified"],
        "bench_s": time.perf_counter() - started,
    }


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def report(data: dict) -> str:
    seeded, imp, tgt = data["seed"], data["import"], data["target"]
    big = seeded["expected_groups"].get(BIG_GROUP)
    lines = [
        (
            f"provtui against a real AD: Samba {data['samba']} AD DC (-M single, LDAPS, its CA verified) on {data['dc']}; "
            f"Python {data['python']}, {data['cpus']} CPUs, load average {data['loadavg'][0]:.2f} at the end"
        ),
        (
            f"DC started in {data['dc_start_s']:.2f} s; seeded {seeded['users']:,} users in {seeded['users_s']:.1f} s "
            f"({seeded['ms_per_user']:.1f} ms a user) and {seeded['groups']} groups ({seeded['memberships']:,} memberships"
            + (f", the big one {big:,}" if big else "")
            + f") in {seeded['groups_s']:.1f} s; median of {data['repeat']} run(s)"
        ),
        "",
        f"{'figure':<50}{'provtui':>12}{'baseline':>12}{'ratio':>8}   target",
        "-" * 110,
    ]

    def row(label: str, ours: str, base: str, r: float | None, target: str = "") -> None:
        lines.append(f"{label:<50}{ours:>12}{base:>12}{'' if r is None else f'{r:.2f}x':>8}   {target}")

    bare_s = imp["bare"]["seconds"]
    row(
        f"import, first full run ({seeded['users']:,} users, {seeded['groups']} groups)",
        f"{imp['first']['seconds']:.2f} s",
        f"{bare_s:.2f} s",
        imp["ratio"],
        f"≤ {IMPORT_TARGET:g}x: {verdict(imp['met'])}",
    )
    row("import, second full run (nothing changed)", f"{imp['second']['seconds']:.2f} s", f"{bare_s:.2f} s", imp["second_ratio"])
    row(
        "connector read alone (read_users + read_groups)", f"{imp['connector']['seconds']:.2f} s", f"{bare_s:.2f} s", imp["connector_ratio"]
    )
    row(
        f"AD target, {tgt['accounts']} accounts at concurrency {tgt['concurrency']}",
        f"{tgt['provtui']['rate']:.1f}/s",
        f"{tgt['bare']['rate']:.1f}/s",
        tgt["ratio"],
        f"≥ {RATE_TARGET:g} accounts/s: {verdict(tgt['met'])}",
    )
    row(
        "LDAP operations per account",
        f"{tgt['provtui']['ops_per_account']:.1f}",
        f"{tgt['bare_ops_per_account']}",
        ratio(tgt["provtui"]["ops_per_account"], tgt["bare_ops_per_account"]),
    )
    lines.append("-" * 110)
    lines.append(
        "baselines: a bare ldap3 paged read of the same entries and attributes (import); a bare ldap3 client, "
        f"{tgt['concurrency']} threads, doing add + password + enable (target)"
    )
    lines.append("")

    def runs(values: list[float], unit: str) -> str:
        return ", ".join(f"{v:.2f}{unit}" for v in values)

    lines.append(
        f"import runs: bare {runs(imp['bare']['runs_s'], ' s')}; connector {runs(imp['connector']['runs_s'], ' s')}; "
        f"first {runs(imp['first']['runs_s'], ' s')}; second {runs(imp['second']['runs_s'], ' s')}"
    )
    for label, key in (("bare read", "bare"), ("connector read", "connector"), ("first import", "first"), ("second import", "second")):
        part = imp[key]
        lines.append(
            f"  CPU, {label:<15} client {part['client_cpu_s']:6.2f} s   DC {part['dc_cpu_s']:6.2f} s   wall {part['seconds']:6.2f} s"
        )
    second = imp["second_result"]
    groups = second.get("groups") or {}
    lines.append(
        "second import: "
        + ", ".join(f"{k} {second.get(k)}" for k in QUIET_KEYS)
        + f", members added {groups.get('members_added')}, removed {groups.get('members_removed')} (mode {second.get('mode')}): "
        + ("quiet" if imp["second_quiet"] else "NOT QUIET")
    )
    store_groups = imp["store_groups"]
    lines.append(
        f"store after the import: {imp['store_users']:,} users (created {imp['created']:,}), {len(store_groups)} source groups, "
        f"members {', '.join(f'{n} {c:,}' for n, c in sorted(store_groups.items()))}: "
        + ("as seeded" if imp["verified"] else f"NOT AS SEEDED (expected {imp['expected_groups']})")
    )
    lines.append("")
    p, b = tgt["provtui"], tgt["bare"]
    lines.append(f"target runs (accounts/s): bare {runs(b['runs'], '')}; provtui {runs(p['runs'], '')}")
    for label, part in (("bare", b), ("provtui", p)):
        lines.append(
            f"  CPU per account, {label:<8} client {part['client_cpu_ms_per_account']:6.2f} ms   DC {part['dc_cpu_ms_per_account']:6.2f} ms"
            f"   ({part['seconds']:.2f} s for {tgt['accounts']})"
        )
    lines.append(
        "LDAP operations per account: provtui "
        + ", ".join(f"{m} {c:.2f}" for m, c in p["ops_by_method_per_account"].items())
        + f"; bare {', '.join(f'{m} {c}' for m, c in tgt['bare_ops_by_method_per_account'].items())} "
        f"(+ {tgt['bare_binds']} binds in all: a connection a thread); provtui bound {p['binds']} connection(s) in all"
    )
    lines.append(
        f"the DC's ceiling: 1000 / the bare client's DC CPU per account = {tgt['dc_ceiling_rate']:.1f} accounts/s "
        "(samba -M single works on one core)"
    )
    lines.append(f"provtui report: failed {p['failed_count']}, deferred {p['deferred']}, retries {p['retries']}")
    for failure in p["failed"][:5]:
        lines.append(f"  FAILED: {failure}")
    for failure in tgt["bare_failed"][:5]:
        lines.append(f"  bare client FAILED: {failure}")
    lines.append("")
    lines.append(f"verified: {'yes' if data['verified'] else 'NO — VERIFICATION FAILED'}; the bench took {data['bench_s']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000, help="users in the source OU (default 10000)")
    parser.add_argument("--groups", type=int, default=20, help="groups sharing the users out, each user in one (default 20)")
    parser.add_argument("--big-group", type=int, default=2000, help="members of one more group, the first N users (default 2000; 0: none)")
    parser.add_argument("--accounts", type=int, default=200, help="accounts provisioned into AD per side and run (default 200)")
    parser.add_argument("--concurrency", type=int, default=4, help="the AD app's concurrency, and the bare client's threads (default 4)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side, interleaved; medians reported (default 3)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if min(args.users, args.groups, args.accounts, args.concurrency, args.repeat) < 1 or args.big_group < 0:
        parser.error("--users, --groups, --accounts, --concurrency and --repeat: at least 1; --big-group: 0 or more")
    if args.accounts > 9999:
        parser.error("--accounts: at most 9999")
    if not samba_available():
        print(f"Samba AD is not installed ({INSTALL_HINT})", file=sys.stderr)
        return 2
    data = run(args)
    print(json.dumps(data, indent=2) if args.json else report(data))
    return 0 if data["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
