"""Benchmark: group rules (compiled expressions) against a tree-walking interpreter, on the same users.

    python tests/bench/bench_rules.py [--users 50000] [--rules 50] [--changes 500] [--quick] [--json]

It builds synthetic user profiles (department, title, location, country, division,
costCenter, employeeType, level, startYear, tags, isManager, mobilePhone, unique logins,
emails and employee numbers) with group memberships, and 50 realistic rules (==, !=,
< >=, AND/OR/NOT, ternary, +, String.startsWith/endsWith/stringContains/toLowerCase/
toUpperCase/substring/len, Arrays.contains, isMemberOfGroupName), then measures:

- compile: parsing, checking and compiling every rule (the interpreter: parse + check);
- full evaluation, one by one: every rule for every user, ``rule(scope, groups)``;
- full evaluation, population: ``rule.evaluate_all(Population(...))`` per rule, which
  reads each attribute into a column once and evaluates a rule once per distinct
  combination of the plain values it reads (a fresh Population each run, so the column
  extraction is inside the time);
- one user's change: one attribute of one user changes (or, one change in five, a group membership);
  only the rules whose ``attributes_read`` (``groups_read``) include it are
  re-evaluated and compared with the user's previous results; median and p95 over
  ``--changes`` changes.

The interpreter row is the baseline: the same parsed and checked trees, walked on every
evaluation.  All three evaluations must agree (checked).  Ratios are interpreter /
compiled: above 1 means the compiled form is faster.  Times are wall clock, best of
``--repeat`` runs (the interpreter runs once); the CPU time of the same runs is printed
too, since on a busy machine the wall clock mostly measures the other processes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from baseline_interpreter import TreeInterpreter  # tests/bench/, this script's directory

from provtui.domain.expressions import Population, compile_expression

FIRST = (
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Chris",
    "Karen",
)
LAST = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
)
DEPARTMENTS = (
    "Engineering",
    "Sales",
    "Finance",
    "Support",
    "People",
    "Marketing",
    "Legal",
    "Product",
    "Design",
    "Security",
    "IT",
    "Operations",
)
ROLES = (
    "Engineer",
    "Software Engineer",
    "Account Executive",
    "Analyst",
    "Manager",
    "Designer",
    "Support Specialist",
    "Recruiter",
    "Counsel",
    "Product Manager",
    "Administrator",
)
SENIORITY = ("", "", "Junior ", "Senior ", "Staff ", "Principal ", "Lead ")
LOCATIONS = (
    ("New York", "US", "AMER"),
    ("San Francisco", "US", "AMER"),
    ("Austin", "US", "AMER"),
    ("Toronto", "CA", "AMER"),
    ("London", "GB", "EMEA"),
    ("Paris", "FR", "EMEA"),
    ("Berlin", "DE", "EMEA"),
    ("Dublin", "IE", "EMEA"),
    ("Madrid", "ES", "EMEA"),
    ("Tel Aviv", "IL", "EMEA"),
    ("Singapore", "SG", "APAC"),
    ("Tokyo", "JP", "APAC"),
    ("Sydney", "AU", "APAC"),
    ("Bangalore", "IN", "APAC"),
    ("Sao Paulo", "BR", "LATAM"),
)
EMPLOYEE_TYPES = ("Employee",) * 16 + ("Contractor",) * 2 + ("Intern", "Vendor")
TAGS = ("vpn", "github", "aws", "jira", "okta-admin", "gpu", "salesforce", "figma")
GROUPS = (
    "all-staff",
    "eng",
    "eng-platform",
    "eng-data",
    "sales-emea",
    "sales-amer",
    "finance-ops",
    "support-t1",
    "support-t2",
    "people-team",
    "managers",
    "contractors",
    "interns",
    "security",
    "it-admins",
    "on-call",
    "design",
    "legal",
    "product",
    "execs",
)

RULES = (
    'user.department == "Engineering"',
    'user.department == "Engineering" AND user.employeeType == "Employee"',
    'user.department == "Sales" AND (user.location == "London" OR user.location == "Paris" OR user.location == "Berlin")',
    'String.startsWith(user.title, "Senior")',
    'String.startsWith(user.costCenter, "CC-01")',
    'String.stringContains(String.toLowerCase(user.title), "engineer")',
    'String.toLowerCase(user.location) == "new york"',
    'Arrays.contains(user.tags, "vpn")',
    'Arrays.contains(user.tags, "aws") AND user.department == "Engineering"',
    'isMemberOfGroupName("contractors") OR user.employeeType == "Contractor"',
    'String.endsWith(user.email, "@contractors.example.com")',
    'user.employeeType != "Employee" AND NOT isMemberOfGroupName("all-staff")',
    "user.level >= 7",
    'user.level >= 5 AND String.stringContains(user.title, "Manager")',
    'user.startYear < 2015 AND user.employeeType == "Employee"',
    'user.country == "US" AND user.department == "Finance"',
    'user.division == "EMEA" || user.division == "APAC"',
    'user.isManager == true AND user.department == "Support"',
    'String.startsWith(user.employeeNumber, "E00")',
    "user.mobilePhone == null",
    'user.mobilePhone != null AND user.employeeType == "Employee"',
    'isMemberOfGroupName("eng") AND NOT isMemberOfGroupName("eng-platform")',
    "String.len(user.lastName) > 6",
    'String.substring(user.costCenter, 0, 4) == "CC-0"',
    'user.title == "Principal Engineer" OR user.title == "Staff Engineer" OR user.title == "Lead Engineer"',
    '(user.country == "US" ? user.level >= 5 : user.level >= 6) AND user.employeeType == "Employee"',
    'user.firstName + " " + user.lastName == "Mary Smith"',
    'String.toUpperCase(user.division) == "LATAM"',
    'user.department == "Security" OR isMemberOfGroupName("security")',
    'NOT (user.employeeType == "Employee") AND user.level < 3',
    'user.department == "IT" AND Arrays.contains(user.tags, "okta-admin")',
    'String.stringContains(user.email, "+")',
    'user.location == "Tokyo" AND user.startYear >= 2020',
    'user.login == "mary.smith12"',
    'user.department == "Product" AND (String.stringContains(user.title, "Product") OR user.level >= 8)',
    'user.employeeType == "Intern" OR isMemberOfGroupName("interns")',
    'String.startsWith(user.title, "Junior") AND user.startYear >= 2022',
    'user.division == "AMER" AND user.department == "Sales" AND user.level >= 4',
    'user.costCenter == "CC-042" OR user.costCenter == "CC-043"',
    'isMemberOfGroupName("managers") AND user.isManager != true',
    'String.toLowerCase(user.department) == "people" OR isMemberOfGroupName("people-team")',
    'Arrays.contains(user.tags, "gpu") OR (user.department == "Engineering" AND user.level >= 6)',
    'user.location != "London" AND user.country == "GB"',
    "user.startYear <= 2010",
    'user.department + "/" + user.division == "Sales/EMEA"',
    'user.level > 3 && user.level < 7 && user.employeeType == "Contractor"',
    'String.endsWith(user.title, "Manager") AND NOT isMemberOfGroupName("managers")',
    '!isMemberOfGroupName("all-staff") AND user.employeeType == "Employee"',
    'user.department == "Design" OR isMemberOfGroupName("design") OR Arrays.contains(user.tags, "figma")',
    'String.substring(user.employeeNumber, 0, 2) == "E1" AND user.division == "APAC"',
)
CHANGED = ("department", "title", "location", "level", "employeeType", "tags", "costCenter", "mobilePhone")


def make_user(n: int, rng: random.Random) -> tuple[dict, frozenset[str]]:
    """One profile (as the directory holds it) and its group names."""
    first, last = FIRST[n % len(FIRST)], LAST[(n * 7 + n // len(FIRST)) % len(LAST)]
    login = f"{first}.{last}{n}".lower()
    department = rng.choice(DEPARTMENTS)
    location, country, division = rng.choice(LOCATIONS)
    employee_type = rng.choice(EMPLOYEE_TYPES)
    level = rng.randint(1, 9)
    title = (rng.choice(SENIORITY) + rng.choice(ROLES)).strip()
    domain = "contractors.example.com" if employee_type == "Contractor" else "example.com"
    profile = {
        "login": login,
        "email": f"{login}@{domain}",
        "firstName": first,
        "lastName": last,
        "displayName": f"{first} {last}",
        "department": department,
        "title": title,
        "location": location,
        "country": country,
        "division": division,
        "costCenter": f"CC-{rng.randrange(97):03d}",
        "employeeType": employee_type,
        "employeeNumber": f"E{n:07d}",
        "level": level,
        "startYear": rng.randint(2005, 2025),
        "isManager": level >= 6 and rng.random() < 0.5,
        "tags": sorted(rng.sample(TAGS, rng.randint(0, 3))),
    }
    if rng.random() < 0.7:
        profile["mobilePhone"] = f"+1555{n:07d}"
    groups = {"all-staff"} if employee_type == "Employee" else set()
    groups.update(rng.sample(GROUPS, rng.randint(1, 3)))
    return profile, frozenset(groups)


def make_users(count: int, seed: int = 7) -> tuple[list[dict], list[frozenset[str]]]:
    rng = random.Random(seed)
    pairs = [make_user(n, rng) for n in range(count)]
    return [p for p, _ in pairs], [g for _, g in pairs]


def rule_texts(count: int) -> list[str]:
    """The first ``count`` rules; beyond the 50, variants that also require a minimum level."""
    return [
        RULES[i % len(RULES)] if i < len(RULES) else f"({RULES[i % len(RULES)]}) AND user.level >= {i // len(RULES)}" for i in range(count)
    ]


def changed_profile(profile: dict, attribute: str, rng: random.Random) -> dict:
    new = dict(profile)
    if attribute == "department":
        new[attribute] = rng.choice([d for d in DEPARTMENTS if d != profile[attribute]])
    elif attribute == "title":
        new[attribute] = (rng.choice(SENIORITY) + rng.choice(ROLES)).strip()
    elif attribute == "location":
        new["location"], new["country"], new["division"] = rng.choice(LOCATIONS)
    elif attribute == "level":
        new[attribute] = profile[attribute] % 9 + 1
    elif attribute == "employeeType":
        new[attribute] = rng.choice([t for t in set(EMPLOYEE_TYPES) if t != profile[attribute]])
    elif attribute == "tags":
        new[attribute] = sorted(rng.sample(TAGS, rng.randint(0, 3)))
    elif attribute == "costCenter":
        new[attribute] = f"CC-{rng.randrange(97):03d}"
    elif attribute in new:  # mobilePhone: removed, or added
        del new[attribute]
    else:
        new[attribute] = "+15550000000"
    return new


CPU: dict[str, float] = {}  # label -> CPU seconds of the best run


def timed(fn, repeat: int, label: str = "") -> tuple[float, object]:
    """Best wall time of ``repeat`` runs (seconds) and the last result; that run's CPU time in CPU[label]."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall = time.perf_counter() - start
        if wall < best:
            best, CPU[label] = wall, time.process_time() - cpu
    return best, result


def one_by_one(rules, scopes, groups) -> list[list]:
    return [[rule(s, g) for s, g in zip(scopes, groups, strict=False)] for rule in rules]


def run(users: int, rules: int, changes: int, repeat: int, seed: int = 7) -> dict:
    profiles, groups = make_users(users, seed)
    scopes = [{"user": p} for p in profiles]
    texts = rule_texts(rules)

    compile_expression("user.warm == 'up'")  # build the parser outside the timings
    compile_s, compiled = timed(lambda: [compile_expression(t, kind="boolean") for t in texts], repeat)
    parse_s, interpreted = timed(lambda: [TreeInterpreter(t, kind="boolean") for t in texts], repeat)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    interp_s, expected = timed(lambda: one_by_one(interpreted, scopes, groups), 1, "interpreter")
    closures_s, by_closure = timed(lambda: one_by_one(compiled, scopes, groups), repeat, "compiled")

    def by_population_run() -> list[list]:
        population = Population(scopes, groups)
        population.prefetch(compiled)
        return [rule.evaluate_all(population) for rule in compiled]

    population_s, by_population = timed(by_population_run, repeat, "population")
    if by_closure != expected or by_population != expected:
        raise SystemExit("bench: compiled results differ from the interpreter's")

    # One user's change: re-evaluate only the rules that read what changed.
    by_attribute: dict[tuple[str, str], list[int]] = defaultdict(list)
    by_group: dict[str, list[int]] = defaultdict(list)
    for i, rule in enumerate(compiled):
        for key in rule.attributes_read:
            by_attribute[key].append(i)
        for name in rule.groups_read:
            by_group[name].append(i)
    rng = random.Random(seed + 1)
    cases = []
    for k in range(changes):
        u = rng.randrange(users)
        if k % 5 == 4:  # every fifth change is a group membership
            name = rng.choice(GROUPS)
            cases.append((u, scopes[u], groups[u] ^ {name}, sorted(set(by_group.get(name, ())))))
        else:
            attribute = CHANGED[k % len(CHANGED)]
            new = changed_profile(profiles[u], attribute, rng)
            touched = {a for a in new.keys() | profiles[u].keys() if new.get(a) != profiles[u].get(a)}
            affected = sorted({i for a in touched for i in by_attribute.get(("user", a), ())})
            cases.append((u, {"user": new}, groups[u], affected))

    def change_times(rule_set) -> tuple[list[float], int]:
        times, flips = [], 0
        for u, scope, user_groups, affected in cases:
            start = time.perf_counter()
            changed = [i for i in affected if rule_set[i](scope, user_groups) != expected[i][u]]
            times.append(time.perf_counter() - start)
            flips += len(changed)
        return times, flips

    change_compiled, flips = change_times(compiled)
    change_interp, flips_interp = change_times(interpreted)
    if flips != flips_interp:
        raise SystemExit("bench: compiled and interpreted changes differ")
    affected_counts = [len(c[3]) for c in cases]

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "users": users,
        "rules": rules,
        "evaluations": users * rules,
        "changes": changes,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "compile_ms": compile_s * 1e3,
        "parse_ms": parse_s * 1e3,
        "full_interpreter_s": interp_s,
        "full_compiled_s": closures_s,
        "full_population_s": population_s,
        "full_interpreter_cpu_s": CPU["interpreter"],
        "full_compiled_cpu_s": CPU["compiled"],
        "full_population_cpu_s": CPU["population"],
        "load_average": load,
        "change_compiled_p50_ms": statistics.median(change_compiled) * 1e3,
        "change_compiled_p95_ms": pct(change_compiled, 0.95) * 1e3,
        "change_compiled_max_ms": max(change_compiled) * 1e3,
        "change_interpreter_p50_ms": statistics.median(change_interp) * 1e3,
        "change_interpreter_p95_ms": pct(change_interp, 0.95) * 1e3,
        "change_rules_mean": statistics.fmean(affected_counts),
        "change_rules_max": max(affected_counts),
        "change_results_flipped": flips,
        "matches": [sum(r) for r in expected],
    }


def ratio(base: float, value: float) -> str:
    return f"{base / value:,.1f}x" if value > 0 else "-"


def table(r: dict) -> str:
    def secs(s: float) -> str:
        return f"{s:.3f} s" if s >= 0.1 else f"{s * 1e3:.1f} ms"

    def msec(v: float) -> str:
        return f"{v * 1e3:.0f} µs" if v < 1 else f"{v:.2f} ms"

    rows = [
        ("compile (interpreter: parse + check)", f"{r['parse_ms']:.1f} ms", f"{r['compile_ms']:.1f} ms", ""),
        (
            "full evaluation, one by one",
            secs(r["full_interpreter_s"]),
            secs(r["full_compiled_s"]),
            ratio(r["full_interpreter_s"], r["full_compiled_s"]),
        ),
        (
            "full evaluation, population",
            secs(r["full_interpreter_s"]),
            secs(r["full_population_s"]),
            ratio(r["full_interpreter_s"], r["full_population_s"]),
        ),
        (
            "one user's change p50",
            msec(r["change_interpreter_p50_ms"]),
            msec(r["change_compiled_p50_ms"]),
            ratio(r["change_interpreter_p50_ms"], r["change_compiled_p50_ms"]),
        ),
        (
            "one user's change p95",
            msec(r["change_interpreter_p95_ms"]),
            msec(r["change_compiled_p95_ms"]),
            ratio(r["change_interpreter_p95_ms"], r["change_compiled_p95_ms"]),
        ),
    ]
    lines = [
        (f"{r['rules']} rules x {r['users']:,} users = {r['evaluations']:,} evaluations (Python {r['python']}, {r['machine']})"),
        (
            f"one user's change: {r['changes']} changes, {r['change_rules_mean']:.1f} rules re-evaluated on average "
            f"(max {r['change_rules_max']}), {r['change_results_flipped']} results flipped"
        ),
        "",
        f"{'':40} {'interpreter':>12} {'compiled':>12} {'interp/compiled':>16}",
    ]
    lines += [f"{name:40} {a:>12} {b:>12} {c:>16}" for name, a, b, c in rows]
    lines.append("")
    load = "" if r["load_average"] is None else f"; load average {r['load_average']:.1f} at the start"
    lines.append(
        f"CPU time of the full evaluations: interpreter {secs(r['full_interpreter_cpu_s'])}, one by one "
        f"{secs(r['full_compiled_cpu_s'])}, population {secs(r['full_population_cpu_s'])}{load}"
    )
    lines.append(
        f"targets: full evaluation < 1 s: {'met' if r['full_population_s'] < 1 else 'MISSED'} "
        f"({secs(r['full_population_s'])}); one user's change < 5 ms: "
        f"{'met' if r['change_compiled_p95_ms'] < 5 else 'MISSED'} (p95 {msec(r['change_compiled_p95_ms'])})"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--changes", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each compiled measurement; the best counts")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="5,000 users, 100 changes, one run each")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.changes, args.repeat = min(args.users, 5_000), min(args.changes, 100), 1
    result = run(args.users, args.rules, args.changes, args.repeat, args.seed)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
