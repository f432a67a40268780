"""Benchmark: HR CSV and LDAP imports, against their targets.

    python tests/bench/bench_import.py [--csv-rows 50000] [--ldap-entries 10000] [--groups 10] [--repeat 3]
                                 [--quick] [--json] [--skip-csv] [--skip-ldap]

CSV (target: dry run + apply of 50,000 rows in under 10 s in all)
    A Workday-style export (employee id, names, work email, department, title, manager,
    status; about 2% on leave) is imported into a fresh store: ``import_csv(dry_run=True)``,
    then ``import_csv()`` (the apply: 50,000 users created, each audited, in one commit).
    For reference, a re-import of the same file with 1% of the rows changed (dry run + apply).

LDAP (target: the import within twice the time ldap3 alone takes to read the same entries)
    A throw-away slapd (provtui.testing.slapd) is loaded with N inetOrgPersons and G
    groupOfNames sharing them out (each person in one group).  Then, interleaved, ``--repeat``
    times (the table shows the median):

    - ``bare ldap3 read``   : ldap3 alone, one bound connection, paged searches (500 a page)
      reading the users with the attributes the connector asks for, and the groups;
    - ``connector read``    : provtui's ``read_users`` + ``read_groups`` (no store);
    - ``provtui import``    : ``import_ldap`` of a new source into a fresh store, a full run:
      the reads, the plan, N users created, G groups and N memberships, one commit;
    - ``incremental``       : the next run of that source, nothing having changed (it reads
      only entries changed since the mark).

    Everyone binds as the same ordinary account (the rootdn has no size limit, the reader has).
    The ratio is provtui import / bare ldap3 read.

Verification: the CSV apply leaves N users in the store; the LDAP import creates N users
and N memberships; the bare read sees N users and G groups.  The exit status is 1 only when
a verification fails (the targets are reported, not enforced: timings depend on the machine).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ldap3

from provtui.connectors.ldap import LdapSettings, read_groups, read_users
from provtui.connectors.ldap.source import user_attributes
from provtui.model.schema import MEMBERS
from provtui.service import Service

ACTOR = "bench"
PASSWORD_ENV = "PROVTUI_BENCH_LDAP_PASSWORD"
CSV_TARGET = 10.0  # seconds, dry run + apply
LDAP_TARGET = 2.0  # provtui import / bare ldap3 read
PAGE_SIZE = 500
FIRST = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth")
LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson", "Moore")
DEPARTMENTS = ("Engineering", "Sales", "Finance", "Support", "People", "Marketing", "Legal")
TITLES = ("Engineer", "Manager", "Analyst", "Director", "Associate", "Specialist")
HEADER = "Employee ID,Legal First Name,Legal Last Name,Work Email,Department,Business Title,Manager,Worker Status"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def fresh_store(work: Path, name: str) -> Service:
    """A new store; the previous runs' stores are collected first (untimed), so every run starts alike."""
    path = work / name
    shutil.rmtree(path, ignore_errors=True)
    gc.collect()
    return Service.init(path, actor=ACTOR)


# --------------------------------------------------------------------------- CSV


def csv_rows(count: int, changed_every: int = 0) -> bytes:
    lines = [HEADER]
    for n in range(count):
        first, last = FIRST[n % len(FIRST)], LAST[(n // len(FIRST)) % len(LAST)]
        title = TITLES[n % len(TITLES)]
        if changed_every and n % changed_every == 0:
            title = "Senior " + title
        status = "On Leave" if n % 50 == 7 else "Active"
        manager = f"E{(n // 10) * 10:06d}" if n % 10 else ""
        lines.append(
            f"E{n:06d},{first},{last},{first.lower()}.{last.lower()}.{n}@example.com,"
            f"{DEPARTMENTS[n % len(DEPARTMENTS)]},{title},{manager},{status}"
        )
    return ("\r\n".join(lines) + "\r\n").encode()


def bench_csv(rows: int, repeat: int, work: Path) -> dict:
    data = csv_rows(rows)
    changed = csv_rows(rows, changed_every=100)
    runs: dict[str, list[float]] = {"dry run": [], "apply": [], "total": [], "re-import 1% changed": []}
    verified = True
    for run in range(repeat):
        service = fresh_store(work, f"csv-{run}")
        started = time.perf_counter()
        plan = service.import_csv(data, dry_run=True)
        planned = time.perf_counter()
        result = service.import_csv(data)
        applied = time.perf_counter()
        runs["dry run"].append(planned - started)
        runs["apply"].append(applied - planned)
        runs["total"].append(applied - started)
        verified &= plan["created"] == rows and result["created"] == rows and service.user_count() == rows
        started = time.perf_counter()
        service.import_csv(changed, dry_run=True)
        again = service.import_csv(changed)
        runs["re-import 1% changed"].append(time.perf_counter() - started)
        verified &= again["updated"] == len(range(0, rows, 100)) and again["created"] == 0
        log(f"csv run {run + 1}: dry run {runs['dry run'][-1]:.2f} s, apply {runs['apply'][-1]:.2f} s")
        del service, plan, result, again
        shutil.rmtree(work / f"csv-{run}", ignore_errors=True)
    total = median(runs["total"])
    return {
        "rows": rows,
        "bytes": len(data),
        "runs": runs,
        "median": {k: median(v) for k, v in runs.items()},
        "target_seconds": CSV_TARGET,
        "pass": total < CSV_TARGET,
        "verified": bool(verified),
    }


# --------------------------------------------------------------------------- LDAP


def bare_read(slapd, settings: LdapSettings) -> tuple[int, int]:
    """ldap3 alone: the same searches, attributes and page size as the connector; (users, groups) seen."""
    server = ldap3.Server(slapd.uri, get_info=ldap3.NONE)
    conn = ldap3.Connection(
        server, user=slapd.reader_dn, password=slapd.reader_password, auto_bind=True, read_only=True, receive_timeout=30
    )
    counts = []
    try:
        for search_filter, attributes in (
            (settings.effective_user_filter, user_attributes(settings)),
            (settings.effective_group_filter, ["cn", "description", "member", settings.uuid_attribute]),
        ):
            seen = 0
            for entry in conn.extend.standard.paged_search(
                settings.base_dn, search_filter, attributes=attributes, paged_size=PAGE_SIZE, paged_criticality=True, generator=True
            ):
                if entry.get("type") == "searchResEntry":
                    seen += 1
            counts.append(seen)
    finally:
        conn.unbind()
    return counts[0], counts[1]


def bench_ldap(entries: int, groups: int, repeat: int, work: Path) -> dict:
    from provtui.testing.slapd import SlapdProcess, generate_people, group_entry, slapd_available

    if not slapd_available():
        raise SystemExit("slapd is not installed (apt-get install slapd ldap-utils); or pass --skip-ldap")
    runs: dict[str, list[float]] = {"bare ldap3 read": [], "connector read": [], "provtui import": [], "incremental": []}
    verified = True
    with SlapdProcess(ad_schema=False) as slapd:
        started = time.perf_counter()
        people = list(generate_people(slapd.people_dn, entries))
        slapd.add_ldif(people)
        dns = [dn for dn, _ in people]
        slapd.add_ldif([group_entry(slapd.groups_dn, f"group{g:03d}", dns[g::groups]) for g in range(groups) if dns[g::groups]])
        groups = min(groups, entries)
        load = time.perf_counter() - started
        log(f"slapd loaded with {entries} people and {groups} groups in {load:.1f} s (ldapadd)")
        time.sleep(1.1)  # modifyTimestamp has 1-second resolution: the incremental run starts after the load's last second
        os.environ[PASSWORD_ENV] = slapd.reader_password
        options = {"uri": slapd.uri, "bind_dn": slapd.reader_dn, "password_env": PASSWORD_ENV, "base_dn": slapd.base_dn}
        settings = LdapSettings(**options, page_size=PAGE_SIZE, max_clock_skew=0)
        bare_read(slapd, settings)  # untimed: slapd's caches warm for everyone
        for run in range(repeat):
            started = time.perf_counter()
            users_seen, groups_seen = bare_read(slapd, settings)
            runs["bare ldap3 read"].append(time.perf_counter() - started)
            verified &= (users_seen, groups_seen) == (entries, groups)

            service = fresh_store(work, f"ldap-{run}")
            service.importer().add_ldap_source("dir", **options, page_size=PAGE_SIZE, max_clock_skew=0)
            started = time.perf_counter()
            result = service.importer().import_ldap("dir")
            runs["provtui import"].append(time.perf_counter() - started)
            verified &= result["created"] == entries and result["groups"]["members_added"] == entries
            verified &= len(service.store.all(MEMBERS)) == entries
            started = time.perf_counter()
            again = service.importer().import_ldap("dir")
            runs["incremental"].append(time.perf_counter() - started)
            verified &= again["mode"] == "incremental" and again["created"] == again["deactivated"] == 0

            started = time.perf_counter()
            users, _ = read_users(settings)
            read_groups(settings, users=users)
            runs["connector read"].append(time.perf_counter() - started)
            log(f"ldap run {run + 1}: bare {runs['bare ldap3 read'][-1]:.2f} s, provtui {runs['provtui import'][-1]:.2f} s")
            del service, result, again, users
            gc.collect()
            shutil.rmtree(work / f"ldap-{run}", ignore_errors=True)
    medians = {k: median(v) for k, v in runs.items()}
    ratio = medians["provtui import"] / medians["bare ldap3 read"]
    return {
        "entries": entries,
        "groups": groups,
        "load_seconds": load,
        "runs": runs,
        "median": medians,
        "ratio": ratio,
        "target_ratio": LDAP_TARGET,
        "pass": ratio <= LDAP_TARGET,
        "verified": bool(verified),
    }


# --------------------------------------------------------------------------- output


def print_report(csv: dict | None, ldap: dict | None, repeat: int) -> None:
    print(f"imports, Python {platform.python_version()}, {os.cpu_count()} CPUs, median of {repeat} run(s)")
    if csv:
        print()
        print(f"CSV import, {csv['rows']:,} rows ({csv['bytes'] / 1e6:.1f} MB), fresh store")
        for name in ("dry run", "apply", "total", "re-import 1% changed"):
            runs = " ".join(f"{x:.2f}" for x in csv["runs"][name])
            print(f"  {name:<34}{csv['median'][name]:8.2f} s   runs: {runs}")
        print(f"csv total: {csv['median']['total']:.2f} s (target < {CSV_TARGET:g} s: {'PASS' if csv['pass'] else 'FAIL'})")
    if ldap:
        print()
        print(f"LDAP import, {ldap['entries']:,} entries and {ldap['groups']} groups (slapd on this host)")
        for name in ("bare ldap3 read", "connector read", "provtui import", "incremental"):
            runs = " ".join(f"{x:.2f}" for x in ldap["runs"][name])
            print(f"  {name:<34}{ldap['median'][name]:8.2f} s   runs: {runs}")
        print(
            f"ratio ldap: provtui import / bare ldap3 read = {ldap['ratio']:.2f} "
            f"(target <= {LDAP_TARGET:g}: {'PASS' if ldap['pass'] else 'FAIL'})"
        )
    failed = [name for name, part in (("csv", csv), ("ldap", ldap)) if part and not part["verified"]]
    if failed:
        print(f"\nVERIFICATION FAILED: {', '.join(failed)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv-rows", type=int, default=50_000, help="rows of the HR export (default 50000)")
    parser.add_argument("--ldap-entries", type=int, default=10_000, help="people in the directory (default 10000)")
    parser.add_argument("--groups", type=int, default=10, help="groups sharing the people out (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs, interleaved; the median is reported (default 3)")
    parser.add_argument("--quick", action="store_true", help="5000 rows, 1000 entries, one run")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--skip-csv", action="store_true")
    parser.add_argument("--skip-ldap", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.csv_rows, args.ldap_entries, args.repeat = 5000, 1000, 1
    if min(args.csv_rows, args.ldap_entries, args.groups, args.repeat) < 1:
        parser.error("--csv-rows, --ldap-entries, --groups and --repeat must be 1 or more")
    work = Path(tempfile.mkdtemp(prefix="provtui-bench-import-"))
    try:
        csv = None if args.skip_csv else bench_csv(args.csv_rows, args.repeat, work)
        ldap = None if args.skip_ldap else bench_ldap(args.ldap_entries, args.groups, args.repeat, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ok = all(part["verified"] for part in (csv, ldap) if part)
    if args.json:
        print(
            json.dumps(
                {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "loadavg": os.getloadavg(),
                    "repeat": args.repeat,
                    "csv": csv,
                    "ldap": ldap,
                    "verified": ok,
                },
                indent=2,
            )
        )
    else:
        print_report(csv, ldap, args.repeat)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
