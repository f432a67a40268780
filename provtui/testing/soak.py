"""The soak: a whole organisation under a storm of changes, faults and kills, then the invariants.

    python -m provtui.testing.soak --minutes 30            # the long form (20,000 people, 10 SCIM apps)
    python -m provtui.testing.soak --minutes 1 --people 1500 --apps 3 --manual-apps 1 --groups 30 --rules 6

Builds the organisation (an HR CSV import through the CLI, an LDAP import from a throwaway slapd,
groups, rules, SCIM apps on fault-injecting scim2-servers, manual apps mailing an aiosmtpd server),
then for ``--minutes`` runs two writers -- one driving the CLI, one the Service in-process, each
its own process -- while a ``provtui worker`` provisions.  Faults fire at random on every app; the
worker and the writers are SIGKILLed at random times and restarted; one app is down for a window.
Then the faults stop, quarantined apps are resumed and failed accounts queued again (as an admin
would), the queue drains, and the invariant checker runs, with every change a writer was told
succeeded (its acknowledgement log, fsync'd after each) checked against the store and the audit
trail.  Exits 1 if an invariant fails or the queue does not drain within ``--converge-minutes``.

Writers own disjoint parts of the organisation (users by login hash, rules by index), so each
one's acknowledged changes have a well-defined final value; a change a writer started but was
killed before hearing the answer to may or may not have happened, so what it touches is only
checked in the audit trail for the changes acknowledged before it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provtui.directory import ACCOUNTS, APP_HEALTH, ASSIGNMENTS, DIRTY, RULES, TASKS, USERS, assignment_key, user_subject
from provtui.domain.errors import ProvtuiError
from provtui.service import Service
from provtui.testing.scim_server import free_port

WRITERS = ("cli", "svc")  # index 0 drives the CLI in subprocesses, index 1 the Service in its own process
TOKEN_ENV = "PROVTUI_SOAK_TOKEN_{n}"
LDAP_PASSWORD_ENV = "PROVTUI_SOAK_LDAP_PASSWORD"
DEPARTMENTS = ("Engineering", "Sales", "Finance", "Support", "People", "Marketing", "Legal")
TITLES = ("Engineer", "Manager", "Analyst", "Director", "Associate", "Specialist")
FIRST = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth")
LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson", "Moore")
CSV_HEADER = "Employee ID,Legal First Name,Legal Last Name,Work Email,Department,Business Title,Worker Status"
# Background faults on every SCIM app during the storm: each transient, so the engine must retry through them.
STORM_FAULTS = {
    "slow": {"probability": 0.02, "delay_ms": 300},
    "rate_limit": {"probability": 0.02, "retry_after": 1},
    "unavailable": {"probability": 0.02},
    "drop": {"probability": 0.005},
    "malformed": {"probability": 0.005, "method": "GET"},
    "after_commit": {"probability": 0.01, "method": "POST", "path": "/Users"},
}
# What each writer does, by weight.
OPERATIONS = {"hire": 14, "leave": 10, "return": 7, "move": 14, "membership": 20, "assignment": 8,
              "rule": 4, "group": 3, "password": 8, "task": 6}


@dataclass
class Options:
    minutes: float = 30.0
    people: int = 20_000
    apps: int = 10
    manual_apps: int = 2
    groups: int = 300
    rules: int = 30
    seed: int = 8
    converge_minutes: float = 15.0
    work: Path | None = None
    ldap_share: float = 0.2  # of the people come from LDAP, the rest from the HR CSV
    app_down_seconds: float | None = None  # default: a fifth of the storm, at most 3 minutes


@dataclass
class SoakResult:
    seed: int
    changes: dict[str, Counter] = field(default_factory=dict)  # writer -> acknowledged changes by operation
    refused: dict[str, int] = field(default_factory=dict)  # writer -> changes refused or failed (not acknowledged)
    kills: Counter = field(default_factory=Counter)  # "worker", "writer cli", "writer svc"
    calls: dict[str, int] = field(default_factory=dict)  # app -> SCIM requests received
    faults: dict[str, Counter] = field(default_factory=dict)  # app -> faults injected by kind
    app_down: dict[str, Any] = field(default_factory=dict)
    requeued: dict[str, int] = field(default_factory=dict)  # what the admin did after the storm
    mails: int = 0
    converged: bool = False
    converge_seconds: float | None = None
    acknowledged: int = 0
    report: Any = None

    @property
    def ok(self) -> bool:
        return self.converged and self.report is not None and self.report.ok


# --------------------------------------------------------------------------- the acknowledgement log


class AckLog:
    """Append-only JSON lines, fsync'd after each: "start" per incarnation, "intent" before a change, then "ack" or "refused"."""

    def __init__(self, path: Path):
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the writer's life

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())


def read_acknowledged(path: Path) -> tuple[list[dict], Counter, int]:
    """The acknowledged changes in a writer's log, for invariants.check_acknowledged; with the counts by
    operation and how many were refused.

    A change is the last word on its key unless a later one to the same key was acknowledged, or was
    started by an incarnation that was killed before hearing the answer (then it may have happened).
    """
    records = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else ():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # the torn last line of a killed writer
            continue
    acked: list[dict] = []
    last: dict[str, int] = {}  # key -> index in acked of its latest acknowledgement
    pending: dict[int, dict] = {}
    refused = 0

    def unresolved_in_flight() -> None:
        for intent in pending.values():  # the answer never came: the change may or may not have happened
            if intent["key"] in last:
                acked[last.pop(intent["key"])]["holds"] = None
        pending.clear()

    for record in records:
        if record["kind"] == "start":
            unresolved_in_flight()
        elif record["kind"] == "intent":
            pending[record["n"]] = record
        elif record["kind"] == "refused":
            pending.pop(record["n"], None)
            refused += 1
        elif record["kind"] == "ack":
            intent = pending.pop(record["n"])
            if intent["key"] in last:
                acked[last[intent["key"]]]["holds"] = None  # superseded by this one
            last[intent["key"]] = len(acked)
            acked.append({"op": intent["op"], "audit": intent["audit"], "holds": intent["holds"]})
    unresolved_in_flight()
    return acked, Counter(c["op"] for c in acked), refused


# --------------------------------------------------------------------------- the writers


def owner(login: str) -> int:
    """Which writer may change this user: its own hires, else by a stable hash of the login."""
    for index, name in enumerate(WRITERS):
        if login.startswith(f"{name}-"):
            return index
    return zlib.crc32(login.encode()) % len(WRITERS)


@dataclass
class Change:
    op: str
    key: str  # what the change sets: a later change to the same key replaces it
    audit: tuple[str, str]  # (action, target) of the audit event it must leave
    holds: dict | None  # what must be true afterwards (see invariants.check_acknowledged)
    argv: list[str]  # as a CLI command
    call: Any  # as a Service call: service -> result


class Writer:
    def __init__(self, index: int, store: Path, log: Path, seed: int, incarnation: int):
        self.index, self.name = index, WRITERS[index]
        self.store = store
        self.service = Service.open(store)
        self.rng = random.Random(seed * 1000 + index * 100 + incarnation)
        self.incarnation = incarnation
        self.log = AckLog(log)
        self.log.write({"kind": "start", "incarnation": incarnation})
        self.counter = 0
        self.stop = False

    # -- choosing a change ------------------------------------------------------------

    def _mine(self, state: str | None = None) -> list[dict]:
        return [u for u in self.service.store.all(USERS).values()
                if owner(u["login"]) == self.index and (state is None or u["state"] == state)]

    def _pick(self, users: list[dict]) -> dict | None:
        return self.rng.choice(users) if users else None

    def next_change(self) -> Change | None:
        self.service.refresh()
        op = self.rng.choices(list(OPERATIONS), weights=list(OPERATIONS.values()))[0]
        return getattr(self, f"_{op}")()

    def _hire(self) -> Change:
        self.counter += 1
        login = f"{self.name}-{self.incarnation}-{self.counter}-{secrets.token_hex(2)}"
        department = self.rng.choice(DEPARTMENTS)
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        return Change("hire", f"state:{login}", ("user.create", login), {"user": login, "state": "active"},
                      ["user", "create", login, "--email", f"{login}@example.com", "--first", first, "--last", last,
                       "--set", f"department={department}", "--activate"],
                      lambda s: s.create_user(login, f"{login}@example.com", first, last, {"department": department}, activate=True))

    def _lifecycle(self, op: str, state: str, action: str, target: str) -> Change | None:
        user = self._pick(self._mine(state))
        if user is None:
            return None
        login = user["login"]
        return Change(op, f"state:{login}", (f"user.{action}", login), {"user": login, "state": target},
                      ["user", action, login], lambda s: s.change_state(login, action))

    def _leave(self) -> Change | None:
        return self._lifecycle("leave", "active", "deactivate", "deprovisioned")

    def _return(self) -> Change | None:
        return self._lifecycle("return", "deprovisioned", "reactivate", "active")

    def _move(self) -> Change | None:
        # Only provtui's own users: an imported user's department is mastered by their source.
        user = self._pick([u for u in self._mine() if u.get("source") == "provtui" and u["state"] != "deleted"])
        if user is None:
            return None
        login, department = user["login"], self.rng.choice([d for d in DEPARTMENTS if d != user["profile"].get("department")])
        return Change("move", f"department:{login}", ("user.update", login), {"user": login, "attribute": "department", "value": department},
                      ["user", "update", login, "--set", f"department={department}"],
                      lambda s: s.update_user(login, {"department": department}))

    def _manual_groups(self) -> list[dict]:
        ruled = {g for rule in self.service.store.all(RULES).values() for g in rule["groups"]}
        return [g for g in self.service.list_groups() if g.get("kind", "provtui") == "provtui" and g["id"] not in ruled]

    def _membership(self) -> Change | None:
        user, groups = self._pick(self._mine()), self._manual_groups()
        if user is None or not groups:
            return None
        group = self.rng.choice(groups)
        login, name = user["login"], group["name"]
        add = "manual" not in self.service.directory.membership_paths(group["id"], user["id"])
        verb = "add-member" if add else "remove-member"
        return Change("membership", f"member:{name}:{login}", (f"group.{verb}", name), {"user": login, "group": name, "manual_member": add},
                      ["group", verb, name, login], lambda s: s.add_members(name, [login]) if add else s.remove_members(name, [login]))

    def _assignment(self) -> Change | None:
        user = self._pick(self._mine())
        apps = self.service.list_apps()
        if user is None or not apps:
            return None
        app, login = self.rng.choice(apps), user["login"]
        add = self.service.store.get(ASSIGNMENTS, assignment_key(app["id"], user_subject(user["id"]))) is None
        verb = "assign" if add else "unassign"
        return Change("assignment", f"assigned:{app['name']}:{login}", (f"app.{verb}", app["name"]),
                      {"user": login, "app": app["name"], "assigned": add}, ["app", verb, app["name"], "--user", login],
                      lambda s: s.assign(app["name"], login=login) if add else s.unassign(app["name"], login=login))

    def _rule(self) -> Change | None:
        rules = sorted((r for r in self.service.store.all(RULES).values() if int(r["name"].rsplit("-", 1)[1]) % len(WRITERS) == self.index),
                       key=lambda r: r["name"])
        if not rules:
            return None
        rule = self.rng.choice(rules)
        expr = rule_expression(self.rng)
        while expr == rule["expr"]:
            expr = rule_expression(self.rng)
        name = rule["name"]
        return Change("rule", f"rule:{name}", ("rule.update", name), {"rule": name, "expr": expr},
                      ["rule", "update", name, "--expr", expr, "--confirm"], lambda s: s.rules().change(name, expr=expr, confirm=True))

    def _group(self) -> Change:
        self.counter += 1
        name = f"{self.name}-team-{self.incarnation}-{self.counter}-{secrets.token_hex(2)}"
        return Change("group", f"group:{name}", ("group.create", name), {"group": name, "exists": True},
                      ["group", "create", name], lambda s: s.create_group(name))

    def _password(self) -> Change | None:
        from provtui.cli.users import cmd_password

        active = self._mine("active")
        for user in self.rng.sample(active, min(5, len(active))):
            if self.service.password_targets(user["login"]):
                login = user["login"]
                args = argparse.Namespace(login=login, random=True, json=True)
                return Change("password", f"password:{login}", ("user.password", login), None,
                              ["user", "password", login, "--random"], lambda s: _expect_ok(cmd_password(args, s)))
        return None

    def _task(self) -> Change | None:
        users = self.service.store.all(USERS)
        tasks = [t for t in self.service.store.all(TASKS).values()
                 if t["state"] == "open" and t["user"] in users and owner(users[t["user"]]["login"]) == self.index]
        if not tasks:
            return None
        task = self.rng.choice(tasks)
        app = self.service.store.get("apps", task["app"])["name"]
        return Change("task", f"task:{task['id']}", ("task.done", app), {"task": task["id"], "state": "done"},
                      ["tasks", "done", task["id"]], lambda s: s.complete_task(task["id"]))

    # -- running it -------------------------------------------------------------------

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop", True))
        n = 0
        while not self.stop:
            change = self.next_change()
            if change is None:
                time.sleep(0.05)  # nothing of that kind to do now
                continue
            n += 1
            self.log.write({"kind": "intent", "n": n, "op": change.op, "key": change.key, "audit": list(change.audit), "holds": change.holds})
            ok = self._run_cli(change) if self.name == "cli" else self._run_service(change)
            self.log.write({"kind": "ack" if ok else "refused", "n": n})
            if self.name == "svc":
                time.sleep(self.rng.uniform(0.02, 0.2))  # an admin's pace, not a benchmark's

    def _run_cli(self, change: Change) -> bool:
        result = subprocess.run([sys.executable, "-m", "provtui", *change.argv, "--store", str(self.store), "--json"],
                                capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode not in (0, 1, 2):  # 1: a downstream failure (a password push), 2: refused input
            print(f"{change.argv}: exit {result.returncode}: {result.stderr}", flush=True)
        return result.returncode == 0

    def _run_service(self, change: Change) -> bool:
        try:
            change.call(self.service)
        except ProvtuiError as error:
            print(f"{change.op}: refused: {error}", flush=True)
            return False
        return True


def _expect_ok(code: int) -> None:
    if code != 0:
        raise ProvtuiError(f"exit {code}")


def rule_expression(rng: random.Random) -> str:
    department, title = rng.choice(DEPARTMENTS), rng.choice(TITLES)
    return rng.choice([f'user.department == "{department}" AND user.title == "{title}"',
                       f'user.title == "{title}" AND user.department != "{department}"',
                       f'user.department == "{department}"'])


# --------------------------------------------------------------------------- processes


def _die_with_parent() -> None:
    """In the child: be SIGKILLed if the soak itself dies (its own session keeps it from the soak's signals),
    so a killed soak leaves no writer or worker behind changing its store.  Linux only; elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Child:
    """A subprocess in its own session, so a SIGKILL takes its children (a CLI writer's command) with it."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str]):
        self.name, self.argv, self.log, self.env = name, argv, log, env
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen([*self.argv, *self._extra()], stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=self.env, start_new_session=True,
                                            preexec_fn=_die_with_parent)

    def _extra(self) -> list[str]:
        return ["--incarnation", str(self.starts)] if "--writer" in self.argv else []

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def terminate(self, timeout: float = 60.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def ensure_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            if self.process is not None:
                print(f"  {self.name} exited on its own ({self.process.returncode}): restarted; see {self.log}", flush=True)
            self.start()


# --------------------------------------------------------------------------- building the organisation


def _log(message: str, started: float) -> None:
    print(f"[{time.monotonic() - started:7.1f}s] {message}", flush=True)


def hr_csv(count: int) -> bytes:
    lines = [CSV_HEADER]
    for n in range(count):
        first, last = FIRST[n % len(FIRST)], LAST[(n // len(FIRST)) % len(LAST)]
        status = "On Leave" if n % 50 == 7 else "Active"
        lines.append(f"E{n:06d},{first},{last},{first.lower()}.{last.lower()}.{n}@example.com,"
                     f"{DEPARTMENTS[n % len(DEPARTMENTS)]},{TITLES[(n // 7) % len(TITLES)]},{status}")
    return ("\r\n".join(lines) + "\r\n").encode()


def build(stack: ExitStack, options: Options, work: Path, env: dict[str, str], started: float):
    """Servers started, store built and populated; returns (service, fault servers by app name, mail server)."""
    from aiosmtpd.controller import Controller

    from provtui.testing.fault_server import FaultServerProcess
    from provtui.testing.slapd import SlapdProcess, generate_people, group_entry, slapd_available

    rng = random.Random(options.seed)
    store = work / "store"
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
    _log(f"{options.apps} SCIM apps (fault-injecting scim2-servers), {options.manual_apps} manual apps, SMTP on {controller.port}", started)

    ldap_people = int(options.people * options.ldap_share) if slapd_available() else 0
    csv_file = work / "hr.csv"
    csv_file.write_bytes(hr_csv(options.people - ldap_people))
    result = subprocess.run([sys.executable, "-m", "provtui", "import", "csv", str(csv_file), "--store", str(store), "--json"],
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"provtui import csv: exit {result.returncode}: {result.stderr}")
    _log(f"imported {options.people - ldap_people} people from an HR CSV (provtui import csv)", started)
    if ldap_people:
        slapd = stack.enter_context(SlapdProcess(ad_schema=False))
        people = list(generate_people(slapd.people_dn, ldap_people, prefix="ldap"))
        slapd.add_ldif(people)
        dns = [dn for dn, _ in people]
        slapd.add_ldif([group_entry(slapd.groups_dn, f"ldap-group{g}", dns[g::5]) for g in range(5) if dns[g::5]])
        env[LDAP_PASSWORD_ENV] = slapd.reader_password
        os.environ[LDAP_PASSWORD_ENV] = slapd.reader_password
        service.importer().add_ldap_source("corp", uri=slapd.uri, bind_dn=slapd.reader_dn, password_env=LDAP_PASSWORD_ENV,
                                           base_dn=slapd.base_dn, page_size=500, max_clock_skew=0)
        imported = service.importer().import_ldap("corp")
        _log(f"imported {imported['created']} people and 5 groups from LDAP (slapd)", started)
    else:
        _log("slapd is not installed: every person comes from the CSV", started)

    groups = [service.create_group(f"team-{g:03d}")["name"] for g in range(options.groups)]
    for r in range(options.rules):
        name = f"rule-{r:03d}"
        service.rules().create(name, groups=[groups[r]], expr=rule_expression(rng), exclude=[])
        service.rules().change(name, state=_active(), confirm=True)
    logins = sorted(u["login"] for u in service.store.all(USERS).values())
    manual_groups = groups[options.rules:]
    for name in manual_groups:
        service.add_members(name, rng.sample(logins, min(len(logins), max(1, options.people // 100))))
    _log(f"{options.groups} groups ({options.rules} by rule), {options.rules} rules, {len(manual_groups)} groups filled by hand", started)
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
    _log(f"{service.user_count()} people, {service.pending_work()} accounts queued to provision", started)
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


# --------------------------------------------------------------------------- the storm


def schedule(options: Options, rng: random.Random) -> list[tuple[float, str]]:
    """(second of the storm, event): worker and writer kills, and the app-down window."""
    storm = options.minutes * 60
    events = [(rng.uniform(0.1, 0.9) * storm, "kill worker") for _ in range(max(1, round(storm / 120)))]
    writer_kills = max(2, round(storm / 150))
    events += [(rng.uniform(0.1, 0.9) * storm, f"kill writer {WRITERS[k % len(WRITERS)]}") for k in range(writer_kills)]
    down = options.app_down_seconds if options.app_down_seconds is not None else min(180.0, storm / 5)
    start = rng.uniform(0.2, 0.5) * storm
    events += [(start, "app down"), (start + down, "app up")]
    return sorted(events)


def run_soak(options: Options) -> SoakResult:
    started = time.monotonic()
    rng = random.Random(options.seed)
    result = SoakResult(seed=options.seed)
    print(f"soak: seed {options.seed}, {options.people} people, {options.apps} SCIM + {options.manual_apps} manual apps, "
          f"{options.groups} groups, {options.rules} rules, {options.minutes:g} minutes of storm", flush=True)
    with ExitStack() as stack:
        work = options.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="provtui-soak-")))
        work.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        saved = dict(os.environ)
        stack.callback(lambda: (os.environ.clear(), os.environ.update(saved)))
        service, servers, mail = build(stack, options, work, env, started)
        os.environ.update(env)  # the checker reads the tokens from the environment, as the app config says
        store = service.location
        worker = Child("worker", [sys.executable, "-m", "provtui", "worker", "--store", str(store)], work / "worker.log", env)
        writers = {name: Child(f"writer {name}", [sys.executable, "-m", "provtui.testing.soak", "--writer", name, "--store", str(store),
                                                  "--ack-log", str(work / f"acks-{name}.jsonl"), "--seed", str(options.seed)],
                               work / f"writer-{name}.log", env) for name in WRITERS}
        children = [worker, *writers.values()]
        stack.callback(lambda: [c.kill() for c in children if c.process is not None and c.process.poll() is None])
        for name, server in servers.items():
            server.set_faults(reset=True, seed=options.seed, **STORM_FAULTS)
        for child in children:
            child.start()
        _log(f"storm: a worker and two writers (cli, svc); faults on; work dir {work}", started)
        storm_start = time.monotonic()
        events = schedule(options, rng)
        down_app = rng.choice(sorted(servers)) if servers else None
        while True:
            now = time.monotonic() - storm_start
            if now >= options.minutes * 60:
                break
            while events and events[0][0] <= now:
                _, event = events.pop(0)
                _storm_event(event, worker, writers, servers, down_app, service, result, now, started)
            for child in children:
                child.ensure_running()
            time.sleep(0.2)
        _log("storm over: writers stopping", started)
        for child in writers.values():
            child.terminate()
        if result.app_down and "seconds" not in result.app_down:
            _storm_event("app up", worker, writers, servers, down_app, service, result, time.monotonic() - storm_start, started)
        converge(options, service, servers, worker, result, started)
        worker.terminate()
        for name, server in servers.items():
            stats = server.stats()
            result.calls[name] = sum(stats["requests"].values())
            result.faults[name] = Counter(stats["faults"])
        result.mails = mail.count
        acknowledged = []
        for name in WRITERS:
            changes, counts, refused = read_acknowledged(work / f"acks-{name}.jsonl")
            acknowledged += changes
            result.changes[name], result.refused[name] = counts, refused
        result.acknowledged = len(acknowledged)
        _log(f"checking the invariants and {len(acknowledged)} acknowledged changes", started)
        from provtui.invariants import check

        service.refresh()
        result.report = asyncio.run(check(service, acknowledged=acknowledged))
        _log("checked", started)
    return result


def _storm_event(event: str, worker: Child, writers: dict[str, Child], servers: dict, down_app: str | None,
                 service: Service, result: SoakResult, now: float, started: float) -> None:
    if event == "kill worker" or event.startswith("kill writer"):
        child = worker if event == "kill worker" else writers[event.rsplit(" ", 1)[1]]
        child.ensure_running()
        child.kill()
        result.kills[child.name] += 1
        _log(f"SIGKILL {child.name}", started)
        child.start()
    elif event == "app down" and down_app:
        servers[down_app].set_faults(app_down={"mode": "503"})
        result.app_down = {"app": down_app, "from": round(now)}
        _log(f"{down_app} down (every call 503)", started)
    elif event == "app up" and down_app:
        servers[down_app].set_faults(app_down=None)
        result.app_down["seconds"] = round(now - result.app_down["from"])
        service.refresh()
        health = service.store.get(APP_HEALTH, service.directory.app(down_app)["id"]) or {}
        result.app_down["quarantined"] = bool(health.get("quarantined"))
        if health.get("quarantined"):
            service.resume_app(down_app)  # as the admin told of the quarantine would, once the app is back
        _log(f"{down_app} up again after {result.app_down['seconds']} s (quarantined: {result.app_down['quarantined']})", started)


def converge(options: Options, service: Service, servers: dict, worker: Child, result: SoakResult, started: float) -> None:
    """Faults off; the admin resumes quarantined apps and queues failed accounts again until nothing is left."""
    for server in servers.values():
        server.clear_faults()
    began = time.monotonic()
    deadline = began + options.converge_minutes * 60
    result.requeued = Counter()
    service.refresh()
    _log(f"faults off; {service.pending_work()} queued: draining", started)
    while time.monotonic() < deadline:
        worker.ensure_running()
        service.refresh()
        quarantined = [service.store.get("apps", app_id)["name"] for app_id, health in service.store.all(APP_HEALTH).items()
                       if health.get("quarantined")]
        for name in quarantined:
            service.resume_app(name)
            result.requeued["apps resumed"] += 1
        dirty = service.store.all(DIRTY)
        failed = sum(1 for key, a in service.store.all(ACCOUNTS).items() if a.get("state") == "failed" and key not in dirty)
        if failed:  # those no longer queued: a 4xx or attempts run out
            result.requeued["failed accounts queued again"] += service.retry()
        if not quarantined and not failed and service.pending_work() == 0:
            result.converged = True
            result.converge_seconds = round(time.monotonic() - began, 1)
            _log(f"converged in {result.converge_seconds} s", started)
            return
        time.sleep(1.0)
    _log(f"did not converge within {options.converge_minutes} minutes: {service.pending_work()} still queued", started)


# --------------------------------------------------------------------------- the summary


def summary(result: SoakResult) -> str:
    lines = [f"seed: {result.seed}"]
    for name in WRITERS:
        counts = result.changes.get(name, Counter())
        lines.append(f"writer {name}: {sum(counts.values())} acknowledged changes ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}), "
                     f"{result.refused.get(name, 0)} refused or failed")
    lines.append(f"calls sent: {sum(result.calls.values())} ({', '.join(f'{k} {v}' for k, v in sorted(result.calls.items()))})")
    faults = sum((result.faults.values()), Counter())
    lines.append(f"faults injected (each call retried or deferred): {sum(faults.values())} ({', '.join(f'{k} {v}' for k, v in sorted(faults.items()))})")
    lines.append(f"kills survived: {', '.join(f'{k} {v}' for k, v in sorted(result.kills.items()))}")
    if result.app_down:
        down = result.app_down
        lines.append(f"app down: {down['app']} from second {down['from']} for {down.get('seconds')} s (quarantined: {down.get('quarantined')})")
    lines.append(f"after the storm: {', '.join(f'{k} {v}' for k, v in sorted(result.requeued.items())) or 'nothing to resume or retry'}")
    lines.append(f"task emails received: {result.mails}")
    lines.append(f"time to converge (faults off): {result.converge_seconds} s" if result.converged else "did NOT converge")
    report = result.report
    if report is not None:
        lines.append(f"invariants: {'all hold' if report.ok else f'{len(report.violations)} violations'} "
                     f"({report.checked_users} users, {report.checked_accounts} downstream accounts, {result.acknowledged} acknowledged changes)")
        lines += [f"  - {v}" for v in report.violations[:50]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provtui.testing.soak", description=__doc__.split("\n\n")[0])
    defaults = Options()
    parser.add_argument("--minutes", type=float, default=defaults.minutes, help="length of the storm")
    parser.add_argument("--people", type=int, default=defaults.people)
    parser.add_argument("--apps", type=int, default=defaults.apps, help="SCIM apps")
    parser.add_argument("--manual-apps", type=int, default=defaults.manual_apps)
    parser.add_argument("--groups", type=int, default=defaults.groups)
    parser.add_argument("--rules", type=int, default=defaults.rules)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--converge-minutes", type=float, default=defaults.converge_minutes, help="bound on draining the queue")
    parser.add_argument("--work", type=Path, help="keep the store, logs and acknowledgement logs here")
    # The writer processes the soak starts:
    parser.add_argument("--writer", choices=WRITERS, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ack-log", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--incarnation", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.writer:
        Writer(WRITERS.index(args.writer), args.store, args.ack_log, args.seed, args.incarnation).run()
        return 0
    if args.groups < args.rules:
        parser.error("--groups must be at least --rules (each rule fills a group)")
    result = run_soak(Options(minutes=args.minutes, people=args.people, apps=args.apps, manual_apps=args.manual_apps,
                              groups=args.groups, rules=args.rules, seed=args.seed, converge_minutes=args.converge_minutes,
                              work=args.work))
    print(summary(result), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
