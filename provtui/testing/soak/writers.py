"""The writers: two processes changing the organisation at random, one through the CLI, one through the Service.

Writers own disjoint parts of the organisation (users by login hash, rules by index), so each one's acknowledged
changes have a well-defined final value.  Each logs its intent before a change and its answer after (acks).
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import signal
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provtui.domain.errors import ProvtuiError
from provtui.model.schema import ASSIGNMENTS, RULES, TASKS, USERS, assignment_key, user_subject
from provtui.service import Service
from provtui.testing.soak.acks import AckLog

WRITERS = ("cli", "svc")  # index 0 drives the CLI in subprocesses, index 1 the Service in its own process

DEPARTMENTS = ("Engineering", "Sales", "Finance", "Support", "People", "Marketing", "Legal")
TITLES = ("Engineer", "Manager", "Analyst", "Director", "Associate", "Specialist")
FIRST = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth")
LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson", "Moore")
# What each writer does, by weight.
OPERATIONS = {
    "hire": 14,
    "leave": 10,
    "return": 7,
    "move": 14,
    "membership": 20,
    "assignment": 8,
    "rule": 4,
    "group": 3,
    "password": 8,
    "task": 6,
}


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
    def __init__(self, index: int, store: Path | str, log: Path, seed: int, incarnation: int):
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
        return [
            u for u in self.service.store.all(USERS).values() if owner(u["login"]) == self.index and (state is None or u["state"] == state)
        ]

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
        return Change(
            "hire",
            f"state:{login}",
            ("user.create", login),
            {"user": login, "state": "active"},
            [
                "user",
                "create",
                login,
                "--email",
                f"{login}@example.com",
                "--first",
                first,
                "--last",
                last,
                "--set",
                f"department={department}",
                "--activate",
            ],
            lambda s: s.create_user(login, f"{login}@example.com", first, last, {"department": department}, activate=True),
        )

    def _lifecycle(self, op: str, state: str, action: str, target: str) -> Change | None:
        user = self._pick(self._mine(state))
        if user is None:
            return None
        login = user["login"]
        return Change(
            op,
            f"state:{login}",
            (f"user.{action}", login),
            {"user": login, "state": target},
            ["user", action, login],
            lambda s: s.change_state(login, action),
        )

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
        return Change(
            "move",
            f"department:{login}",
            ("user.update", login),
            {"user": login, "attribute": "department", "value": department},
            ["user", "update", login, "--set", f"department={department}"],
            lambda s: s.update_user(login, {"department": department}),
        )

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
        return Change(
            "membership",
            f"member:{name}:{login}",
            (f"group.{verb}", name),
            {"user": login, "group": name, "manual_member": add},
            ["group", verb, name, login],
            lambda s: s.add_members(name, [login]) if add else s.remove_members(name, [login]),
        )

    def _assignment(self) -> Change | None:
        user = self._pick(self._mine())
        apps = self.service.list_apps()
        if user is None or not apps:
            return None
        app, login = self.rng.choice(apps), user["login"]
        add = self.service.store.get(ASSIGNMENTS, assignment_key(app["id"], user_subject(user["id"]))) is None
        verb = "assign" if add else "unassign"
        return Change(
            "assignment",
            f"assigned:{app['name']}:{login}",
            (f"app.{verb}", app["name"]),
            {"user": login, "app": app["name"], "assigned": add},
            ["app", verb, app["name"], "--user", login],
            lambda s: s.assign(app["name"], login=login) if add else s.unassign(app["name"], login=login),
        )

    def _rule(self) -> Change | None:
        rules = sorted(
            (r for r in self.service.store.all(RULES).values() if int(r["name"].rsplit("-", 1)[1]) % len(WRITERS) == self.index),
            key=lambda r: r["name"],
        )
        if not rules:
            return None
        rule = self.rng.choice(rules)
        expr = rule_expression(self.rng)
        while expr == rule["expr"]:
            expr = rule_expression(self.rng)
        name = rule["name"]
        return Change(
            "rule",
            f"rule:{name}",
            ("rule.update", name),
            {"rule": name, "expr": expr},
            ["rule", "update", name, "--expr", expr, "--confirm"],
            lambda s: s.rules().change(name, expr=expr, confirm=True),
        )

    def _group(self) -> Change:
        self.counter += 1
        name = f"{self.name}-team-{self.incarnation}-{self.counter}-{secrets.token_hex(2)}"
        return Change(
            "group",
            f"group:{name}",
            ("group.create", name),
            {"group": name, "exists": True},
            ["group", "create", name],
            lambda s: s.create_group(name),
        )

    def _password(self) -> Change | None:
        from provtui.cli.users import cmd_password

        active = self._mine("active")
        for user in self.rng.sample(active, min(5, len(active))):
            if self.service.password_targets(user["login"]):
                login = user["login"]
                args = argparse.Namespace(login=login, random=True, json=True)
                return Change(
                    "password",
                    f"password:{login}",
                    ("user.password", login),
                    None,
                    ["user", "password", login, "--random"],
                    lambda s, args=args: expect_ok(cmd_password(args, s) if s.password_targets(args.login) else NOTHING_TO_DO),
                )
        return None

    def _task(self) -> Change | None:
        users = self.service.store.all(USERS)
        tasks = [
            t
            for t in self.service.store.all(TASKS).values()
            if t["state"] == "open" and t["user"] in users and owner(users[t["user"]]["login"]) == self.index
        ]
        if not tasks:
            return None
        task = self.rng.choice(tasks)
        app = self.service.store.get("apps", task["app"])["name"]
        return Change(
            "task",
            f"task:{task['id']}",
            ("task.done", app),
            {"task": task["id"], "state": "done"},
            ["tasks", "done", task["id"]],
            lambda s: s.complete_task(task["id"]),
        )

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
            self.log.write(
                {"kind": "intent", "n": n, "op": change.op, "key": change.key, "audit": list(change.audit), "holds": change.holds}
            )
            ok = self._run_cli(change) if self.name == "cli" else self._run_service(change)
            self.log.write({"kind": "ack" if ok else "refused", "n": n})
            if self.name == "svc":
                time.sleep(self.rng.uniform(0.02, 0.2))  # an admin's pace, not a benchmark's

    def _run_cli(self, change: Change) -> bool:
        result = subprocess.run(
            [sys.executable, "-m", "provtui", *change.argv, "--store", str(self.store), "--json"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode not in (0, 1, 2):  # 1: a downstream failure (a password push), 2: refused input
            print(f"{change.argv}: exit {result.returncode}: {result.stderr}", flush=True)
        if change.op == "password" and result.returncode == 0 and not json.loads(result.stdout).get("apps"):
            return False  # its account went (a leave, a move) since the writer looked: nothing done, nothing audited
        return result.returncode == 0

    def _run_service(self, change: Change) -> bool:
        try:
            change.call(self.service)
        except ProvtuiError as error:
            print(f"{change.op}: refused: {error}", flush=True)
            return False
        return True


NOTHING_TO_DO = -1  # a password change that found no app to push to (its account went since the writer looked)


def expect_ok(code: int) -> None:
    if code != 0:
        raise ProvtuiError(f"exit {code}")


def rule_expression(rng: random.Random) -> str:
    department, title = rng.choice(DEPARTMENTS), rng.choice(TITLES)
    return rng.choice(
        [
            f'user.department == "{department}" AND user.title == "{title}"',
            f'user.title == "{title}" AND user.department != "{department}"',
            f'user.department == "{department}"',
        ]
    )
