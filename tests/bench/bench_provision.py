"""Benchmark: provisioning throughput of provtui against a bare httpx client, on scim2-server.

    python tests/bench/bench_provision.py [--users 2000] [--concurrency 8|4,8,16] [--repeat 3] [--quick] [--json]
                                    [--profile [--profile-out DIR]]

For each concurrency C it starts one fresh scim2-server per side (so no side pays
for users another side stored) and measures, wall clock and CPU:

- ``bare POST``     : a bare ``httpx.AsyncClient`` POSTs the N create payloads at
                      concurrency C (an ``asyncio.Semaphore``);
- ``bare GET+POST`` : the same client first looks each user up by externalId
                      (``GET /Users?filter=externalId eq "..."``), then POSTs, holding
                      the semaphore across both calls (what provtui does only for a key a
                      dead worker may have created already);
- ``provtui``       : a store holding N active users in one group assigned to one SCIM
                      app with ``concurrency=C``;
                      ``await build_engine(service).run_until_idle()`` provisions them.

The bare client sends exactly provtui's bytes: the payloads are built with
provtui's own ``to_resource(map_attributes(user_id, profile))`` from the same
users (same ids, so the same externalIds), encoded with orjson, with the same
headers and the same connection limits.  The payloads are encoded before the
clock starts (a bare client's best case); provtui builds its own at run time.

The target (provtui >= 0.8 of the bare client) is judged against the bare POST
client, which sends the same creates.  Provtui looks an account up before creating
it only when a create may already have reached the app (a dead worker's lease, an
earlier failed create, a retry), so fresh users cost it one POST too; the GET+POST
ratio is printed for comparison with a client that always looks first.

Each side runs ``--repeat`` times, the sides interleaved; the table shows the
median run.  Single runs are noisy: scim2-server listens with a backlog of 5 and
closes every connection (HTTP/1.0), so from about 8 concurrent calls its accept
queue overflows now and then and the client's kernel resends the SYN after 1 s.
The SYN column counts those retransmissions (from /proc/net/netstat, so
namespace-wide: other processes' connections count too).

CPU: ``client CPU`` is ``time.process_time()`` of this process over the timed
section (the servers are other processes); ``server CPU`` is utime+stime of the
scim2-server process from /proc/<pid>/stat.  Both per provisioned user.  On a
2-core machine client and server compete for the same cores, so the client's CPU
per user bounds throughput as much as the server's.

Without a server: the GET+POST baseline and provtui also run against an in-process
``httpx.MockTransport`` (lookups find nothing, creates succeed), which isolates
provtui's own CPU per user from the network, the server and its stalls.

The store is built untimed, with a loop of ``service.create_user(activate=True)``
(one commit each), one group and ``add_members`` in chunks of 100; the template is
copied for each run.  Verification after each run: every account active in the
store (provtui), and the server holding N users (every side).

``--profile`` adds untimed runs of the GET+POST baseline and of provtui under
cProfile (wall clock), with the server and without, and prints self time by
package, the top 25 cumulative entries of provtui's run restricted to provtui/
and httpx, and provtui's own work (its functions that are not the HTTP calls).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import io
import itertools
import json
import os
import platform
import pstats
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx
import orjson

from provtui.compose import build_engine
from provtui.connectors import config as connector_config
from provtui.connectors.scim import SCIM_JSON, quote_filter_value, to_resource
from provtui.domain.mapping import map_attributes
from provtui.model.schema import ACCOUNTS, USERS
from provtui.service import Service
from provtui.testing.scim_server import ScimServerProcess

ACTOR = "bench"
TOKEN = "bench-token"
TOKEN_ENV = "PROVTUI_BENCH_SCIM_TOKEN"
APP = "Bench"
GROUP = "everyone"
TARGET = 0.8
CLK_TCK = os.sysconf("SC_CLK_TCK")
FIRST = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth")
LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson", "Moore")
DEPARTMENTS = ("Engineering", "Sales", "Finance", "Support", "People", "Marketing", "Legal")
TITLES = ("Engineer", "Manager", "Analyst", "Director", "Associate", "Specialist")

SIDES = ("bare POST", "bare GET+POST", "provtui")


# --------------------------------------------------------------------------- helpers


def server_cpu(server: ScimServerProcess) -> float:
    """utime + stime (seconds) of the server process, all threads."""
    with open(f"/proc/{server._process.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after "pid (comm)": fields[0] is state (field 3); utime, stime are fields 14, 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def server_users(server: ScimServerProcess) -> int:
    headers = {"Authorization": f"Bearer {server.token}", "Accept": SCIM_JSON}
    response = httpx.get(f"{server.url}/Users", params={"count": 1}, headers=headers, timeout=30)
    response.raise_for_status()
    return int(response.json()["totalResults"])


_TCP_COUNTERS = ("ListenOverflows", "TCPSynRetrans")


def tcp_counters() -> dict[str, int]:
    """The kernel's listen-queue overflows and SYN retransmissions (this network namespace).

    scim2-server listens with a backlog of 5 and closes every connection: when its
    accept thread falls behind, a connection attempt is dropped and the client's
    kernel retries the SYN after 1 s, a stall that dwarfs the work measured here.
    """
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return {}
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], map(int, values.split()[1:]), strict=False))
            return {k: table.get(k, 0) for k in _TCP_COUNTERS}
    return {}


class Measure:
    """Wall clock, this process's CPU, the server's CPU and TCP stalls over a block."""

    def __init__(self, server: ScimServerProcess | None):
        self.server = server

    def __enter__(self):
        self.tcp0 = tcp_counters()
        self.srv0 = server_cpu(self.server) if self.server else 0.0
        self.cpu0 = time.process_time()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self.client_cpu = time.process_time() - self.cpu0
        self.server_cpu = server_cpu(self.server) - self.srv0 if self.server else 0.0
        tcp1 = tcp_counters()
        self.tcp = {k: tcp1[k] - self.tcp0.get(k, 0) for k in tcp1}


def row(side: str, concurrency: int, users: int, done: int, m: Measure, server_count: int, **extra) -> dict:
    per = max(done, 1)
    return {
        "side": side,
        "concurrency": concurrency,
        "users": users,
        "done": done,
        "server_users": server_count,
        "seconds": m.seconds,
        "rate": done / m.seconds if m.seconds else 0.0,
        "client_cpu_ms_per_user": m.client_cpu * 1000 / per,
        "server_cpu_ms_per_user": m.server_cpu * 1000 / per,
        "client_cpu_util": m.client_cpu / m.seconds if m.seconds else 0.0,
        "server_cpu_util": m.server_cpu / m.seconds if m.seconds else 0.0,
        "listen_overflows": m.tcp.get("ListenOverflows", 0),
        "syn_retrans": m.tcp.get("TCPSynRetrans", 0),
        **extra,
    }


# --------------------------------------------------------------------------- the template store


def build_template(path: Path, count: int) -> list[tuple[str, dict]]:
    """A store with ``count`` active users, all in one group; returns (user id, profile) pairs."""
    service = Service.init(path, actor=ACTOR)
    logins = []
    for n in range(count):
        first, last = FIRST[n % len(FIRST)], LAST[(n // len(FIRST)) % len(LAST)]
        login = f"{first}.{last}.{n}".lower()
        service.create_user(
            login,
            f"{login}@example.com",
            first,
            last,
            {"department": DEPARTMENTS[n % len(DEPARTMENTS)], "title": TITLES[n % len(TITLES)]},
            activate=True,
        )
        logins.append(login)
    service.create_group(GROUP)
    for i in range(0, count, 100):  # one transaction per 100: Transaction.lookup scans its pending writes
        service.add_members(GROUP, logins[i : i + 100])
    service.store.compact()
    users = service.store.all(USERS)
    return [(uid, users[uid]["profile"]) for uid in sorted(users, key=lambda u: users[u]["login"])]


def payloads(users: list[tuple[str, dict]]) -> list[tuple[str, bytes]]:
    """(externalId, POST body) pairs: provtui's own mapping and encoding."""
    out = []
    for uid, profile in users:
        attributes = map_attributes(uid, profile)
        out.append((attributes["externalId"], orjson.dumps(to_resource(attributes, True))))
    return out


# --------------------------------------------------------------------------- the sides


async def bare_client(
    server: ScimServerProcess | None,
    bodies: list[tuple[str, bytes]],
    concurrency: int,
    lookup: bool,
    profiler: cProfile.Profile | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[int, Measure]:
    """The baseline: the same bytes, headers and connection limits as provtui's ScimConnector, nothing else."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": SCIM_JSON}
    post_headers = {"Content-Type": SCIM_JSON}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    base_url = server.url if server else OFFLINE_URL
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10.0, limits=limits, transport=transport) as client:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(external_id: str, body: bytes) -> bool:
            async with semaphore:
                if lookup:
                    params = {"filter": f"externalId eq {quote_filter_value(external_id)}", "count": 2}
                    response = await client.get("/Users", params=params)
                    if response.status_code != 200 or orjson.loads(response.content).get("totalResults"):
                        return False
                response = await client.post("/Users", content=body, headers=post_headers)
                return response.status_code == 201

        with Measure(server) as m:
            if profiler:
                profiler.enable()
            try:
                results = await asyncio.gather(*(one(e, b) for e, b in bodies), return_exceptions=True)
            finally:
                if profiler:
                    profiler.disable()
    return sum(r is True for r in results), m


def prepare_store(template: Path, dest: Path, server: ScimServerProcess | None, concurrency: int) -> Service:
    shutil.copytree(template, dest)
    service = Service.open(dest, actor=ACTOR)
    service.create_app(APP, scim_url=server.url if server else OFFLINE_URL, token_env=TOKEN_ENV, concurrency=concurrency)
    service.assign(APP, group=GROUP)
    return service


async def provtui_side(
    service: Service, server: ScimServerProcess | None, profiler: cProfile.Profile | None = None
) -> tuple[int, Measure, dict]:
    reconciler = build_engine(service)
    try:
        with Measure(server) as m:
            if profiler:
                profiler.enable()
            try:
                report = await reconciler.run_until_idle()
            finally:
                if profiler:
                    profiler.disable()
    finally:
        await reconciler.aclose()
    app_id = service.directory.app(APP)["id"]
    accounts = [service.store.get(ACCOUNTS, k) for k in service.store.lookup(ACCOUNTS, "app", app_id)]
    active = sum(1 for a in accounts if a.get("state") == "active" and a.get("active") and a.get("remote_id"))
    info = {
        "report_done": report.done,
        "failed": len(report.failed),
        "deferred": len(report.deferred),
        "retries": report.retries,
        "calls": report.calls,
        "queued_after": service.pending_work(),
    }
    return active, m, info


# --------------------------------------------------------------------------- one concurrency


def run_side(side: str, concurrency: int, count: int, bodies, template: Path, work: Path, profiler: cProfile.Profile | None = None) -> dict:
    with ScimServerProcess(TOKEN) as server:
        if side == "provtui":
            dest = work / f"store-{concurrency}-{time.monotonic_ns()}"
            service = prepare_store(template, dest, server, concurrency)
            done, m, info = asyncio.run(provtui_side(service, server, profiler))
            shutil.rmtree(dest, ignore_errors=True)
        else:
            done, m = asyncio.run(bare_client(server, bodies, concurrency, lookup=side == "bare GET+POST", profiler=profiler))
            info = {}
        stored = server_users(server)
    result = row(side, concurrency, count, done, m, stored, **info)
    result["verified"] = done == count and stored == count
    return result


# --------------------------------------------------------------------------- without a server

OFFLINE_URL = "http://scim.invalid/v2"
_EMPTY_PAGE = orjson.dumps(
    {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }
)


def offline_transport() -> httpx.MockTransport:
    """An in-process SCIM service provider that answers at once: lookups find nothing, creates succeed.

    It yields to the event loop once per call, so calls interleave as they would over a network.
    """
    ids = itertools.count(1)
    created: set[str] = set()

    async def handle(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)
        headers = {"Content-Type": SCIM_JSON}
        if request.method == "GET":
            return httpx.Response(200, content=_EMPTY_PAGE, headers=headers)
        resource = orjson.loads(request.content)
        resource["id"] = f"{next(ids):032x}"
        resource["meta"] = {"resourceType": "User", "location": f"{OFFLINE_URL}/Users/{resource['id']}"}
        created.add(resource["externalId"])
        return httpx.Response(201, content=orjson.dumps(resource), headers=headers)

    transport = httpx.MockTransport(handle)
    transport.created = created  # type: ignore[attr-defined]
    return transport


def run_offline(
    side: str, concurrency: int, count: int, bodies, template: Path, work: Path, profiler: cProfile.Profile | None = None
) -> dict:
    """One side against ``offline_transport``: the client's CPU per user with no server and no sockets.

    provtui runs unchanged except that the ScimConnector its connector factory builds is handed the
    transport (the module attribute is swapped for the run), so its audit hook and limits stay as shipped.
    """
    transport = offline_transport()
    if side == "provtui":
        dest = work / f"store-offline-{concurrency}-{time.monotonic_ns()}"
        service = prepare_store(template, dest, None, concurrency)
        original = connector_config.ScimConnector
        connector_config.ScimConnector = functools.partial(original, transport=transport)
        try:
            done, m, info = asyncio.run(provtui_side(service, None, profiler))
        finally:
            connector_config.ScimConnector = original
            shutil.rmtree(dest, ignore_errors=True)
    else:
        done, m = asyncio.run(bare_client(None, bodies, concurrency, lookup=True, profiler=profiler, transport=transport))
        info = {}
    result = row(side, concurrency, count, done, m, len(transport.created), **info)
    result["verified"] = done == count == len(transport.created)
    return result


def offline(concurrency: int, count: int, bodies, template: Path, work: Path, repeat: int) -> dict:
    """Client CPU per user, bare GET+POST vs provtui, without a server: provtui's own cost, noise-free."""
    sides = {}
    for side in ("bare GET+POST", "provtui"):
        runs = [run_offline(side, concurrency, count, bodies, template, work) for _ in range(repeat)]
        sides[side] = min(runs, key=lambda r: r["client_cpu_ms_per_user"])
        sides[side]["verified"] = all(r["verified"] for r in runs)
    bare, ours = (sides[s]["client_cpu_ms_per_user"] for s in ("bare GET+POST", "provtui"))
    return {"concurrency": concurrency, "sides": sides, "provtui_extra_ms_per_user": ours - bare}


def best(rows: list[dict]) -> dict:
    """The median run by rate (all runs kept under "runs")."""
    ordered = sorted(rows, key=lambda r: r["rate"])
    pick = dict(ordered[len(ordered) // 2])
    if len(rows) > 1:
        pick["runs"] = [round(r["rate"], 1) for r in rows]
    pick["verified"] = all(r["verified"] for r in rows)
    return pick


def measure(concurrency: int, count: int, bodies, template: Path, work: Path, repeat: int, log) -> dict:
    runs: dict[str, list[dict]] = defaultdict(list)
    for i in range(repeat):
        for side in SIDES:  # interleaved, so drift over time hits every side alike
            result = run_side(side, concurrency, count, bodies, template, work)
            runs[side].append(result)
            log(
                f"  c={concurrency} run {i + 1}/{repeat} {side:<14} {result['rate']:8.1f} users/s "
                f"{result['seconds']:6.2f} s  SYN retrans {result['syn_retrans']:3}"
                f"{'' if result['verified'] else '  NOT VERIFIED'}"
            )
    sides = {side: best(runs[side]) for side in SIDES}
    p = sides["provtui"]["rate"]
    return {
        "concurrency": concurrency,
        "sides": sides,
        "ratio_get_post": p / sides["bare GET+POST"]["rate"],
        "ratio_post_only": p / sides["bare POST"]["rate"],
    }


# --------------------------------------------------------------------------- profile


IMPORTLIB = "importlib (httpcore's per-call `import sniffio`: not installed)"
OWN = "the caller's own code (provtui/, or the bench's bare client; orjson, fsync, sha256)"
GROUPS = {  # category prefix -> group, for the summary
    "provtui/": OWN,
    "bench": OWN,
    "os.fsync": OWN,
    "hashlib": OWN,
    "orjson": OWN,
    "importlib": "failed imports (sniffio)",
    "epoll": "idle (waiting for the server)",
}


def _category(filename: str, func: str) -> str:
    path = filename.replace("\\", "/")
    if filename == "~":
        name = func
        if "fsync" in name:
            return "os.fsync (store commit, blocks the event loop)"
        if "epoll" in name:
            return "epoll wait (idle: waiting for the server)"
        if "orjson" in name:
            return "orjson"
        if "sha256" in name or "hashlib" in name or "hexdigest" in name:
            return "hashlib (audit chain)"
        if "socket" in name:
            return "socket syscalls"
        if "posix.stat" in name or "listdir" in name or "imp" in name:
            return IMPORTLIB
        return "other builtins"
    if filename.startswith("<frozen importlib"):
        return IMPORTLIB
    if path.startswith(str(ROOT / "bench")):
        return "bench (the bare client's own code)"
    if "/provtui/" in path:
        return "provtui/" + path.rsplit("/provtui/", 1)[1]
    for package in ("httpx", "httpcore", "h11", "anyio", "idna", "certifi"):
        if f"/{package}/" in path:
            return package
    if "/site-packages/" not in path:
        stem = path.rsplit("/lib/python", 1)[-1].split("/", 1)[-1]
        return "stdlib " + (stem.split("/", 1)[0].removesuffix(".py") or "?")
    return "other python"


def _group(category: str) -> str:
    for prefix, group in GROUPS.items():
        if category.startswith(prefix):
            return group
    return "HTTP stack (httpx, httpcore, h11, anyio, asyncio, sockets)"


def self_time_by_package(stats: pstats.Stats) -> list[tuple[str, float]]:
    totals: dict[str, float] = defaultdict(float)
    for (filename, _line, func), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():
        totals[_category(filename, func)] += tt
    return sorted(totals.items(), key=lambda kv: -kv[1])


PROFILED = (  # (label, offline?, side)
    ("bare GET+POST", False, "bare GET+POST"),
    ("provtui", False, "provtui"),
    ("bare GET+POST, no server", True, "bare GET+POST"),
    ("provtui, no server", True, "provtui"),
)


def profile_runs(concurrency: int, count: int, bodies, template: Path, work: Path, dump: Path | None = None) -> dict:
    out = {}
    for label, no_server, side in PROFILED:
        profiler = cProfile.Profile()
        runner = run_offline if no_server else run_side
        result = runner(side, concurrency, count, bodies, template, work, profiler)
        if dump is not None:
            dump.mkdir(parents=True, exist_ok=True)
            name = label.replace(" ", "-").replace("+", "-").replace(",", "")
            profiler.dump_stats(dump / f"{name}-c{concurrency}.pstats")
        stats = pstats.Stats(profiler)
        by_package = self_time_by_package(stats)
        groups: dict[str, float] = defaultdict(float)
        for name, seconds in by_package:
            groups[_group(name)] += seconds
        entry = {
            "users": count,
            "concurrency": concurrency,
            "rate_under_profile": result["rate"],
            "seconds": result["seconds"],
            "self_time": by_package,
            "groups": sorted(groups.items(), key=lambda kv: -kv[1]),
            "total": sum(t for _, t in by_package),
        }
        if side == "provtui":
            buf = io.StringIO()
            pstats.Stats(profiler, stream=buf).sort_stats("cumulative").print_stats(r"provtui/|httpx", 25)
            entry["top_cumulative"] = buf.getvalue()
            buf = io.StringIO()
            pstats.Stats(profiler, stream=buf).sort_stats("cumulative").print_stats(
                r"provtui/(?!connectors/scim.py:\d+\((_request|create_user|find_user|_find_one)\))"
                r"(?!engine/(reconciler|accounts|sending).py:\d+\((_reconcile|reconcile|send|_apply)\))"
                r"|asyncio/tasks.py:\d+\((wait|_wait)\)|fsync",
                25,
            )
            entry["provtui_own"] = buf.getvalue()
        out[label] = entry
    return out


def _trim(text: str) -> str:
    """pstats output without its preamble (keeps the column header and rows)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("ncalls")), 0)
    return "\n".join(line.replace(str(ROOT) + "/", "") for line in lines[start:] if line.strip())


# --------------------------------------------------------------------------- output


def print_table(count: int, results: list[dict]) -> None:
    head = (
        f"{'side':<14} {'conc':>4} {'users':>6} {'seconds':>8} {'users/s':>8} {'client CPU':>11} {'server CPU':>11} "
        f"{'ratio':>6} {'SYN':>5}  verified"
    )
    print(head)
    print(" " * 49 + "ms/user     ms/user")
    print("-" * len(head))
    for result in results:
        for side in SIDES:
            r = result["sides"][side]
            ratio = (
                result["ratio_get_post"]
                if side == "provtui"
                else (1.0 if side == "bare GET+POST" else result["sides"]["provtui"]["rate"] / r["rate"])
            )
            runs = f"  runs: {r['runs']}" if r.get("runs") else ""
            print(
                f"{side:<14} {r['concurrency']:>4} {count:>6} {r['seconds']:>8.2f} {r['rate']:>8.1f} "
                f"{r['client_cpu_ms_per_user']:>11.2f} {r['server_cpu_ms_per_user']:>11.2f} {ratio:>6.2f} "
                f"{r['syn_retrans']:>5}  "
                f"{'yes' if r['verified'] else 'NO'}{runs}"
            )
        print("-" * len(head))
    print("ratio column: provtui users/s / that row's users/s (bare POST row: provtui vs POST-only; provtui row: vs GET+POST)")
    print(
        "SYN: SYN retransmissions during the run (scim2-server's backlog of 5 overflowed; each costs"
        " a connection ~1 s); with --repeat the row is the median run"
    )
    print()
    for result in results:
        c, g, p = result["concurrency"], result["ratio_get_post"], result["ratio_post_only"]
        verdict = "PASS" if p >= TARGET else "FAIL"
        print(
            f"ratio c={c}: provtui / bare POST = {p:.2f} (the same creates; target >= {TARGET}: {verdict}); "
            f"provtui / bare GET+POST = {g:.2f} (for information: a client that looks each user up first)"
        )
    print()
    print(f"CPU per user (ms; this machine has {os.cpu_count()} cores):")
    for result in results:
        for side in SIDES:
            r = result["sides"][side]
            print(
                f"  c={r['concurrency']:<3} {side:<14} client {r['client_cpu_ms_per_user']:6.2f} "
                f"(busy {r['client_cpu_util'] * 100:4.0f}% of a core)   server {r['server_cpu_ms_per_user']:6.2f} "
                f"(busy {r['server_cpu_util'] * 100:4.0f}% of a core)   together "
                f"{r['client_cpu_util'] + r['server_cpu_util']:4.2f} cores"
            )
    for result in results:
        p = result["sides"]["provtui"]
        extra = {k: p[k] for k in ("calls", "retries", "failed", "deferred", "queued_after") if k in p}
        print(f"  c={result['concurrency']} provtui report: {extra}")


def print_profile(profile: dict) -> None:
    print()
    print("Where the time goes (cProfile, wall clock: self time summed by package; the profiler roughly")
    print("doubles the cost of Python calls, so compare the shares, not the absolute figures)")
    for label, entry in profile.items():
        users = entry["users"]
        total = entry["total"] or 1.0
        print()
        print(f"{label}: c={entry['concurrency']}, {entry['seconds']:.2f} s under the profiler ({entry['rate_under_profile']:.1f} users/s)")
        for name, seconds in entry["groups"]:
            print(f"  = {name:<58} {seconds:7.3f} s {seconds / total * 100:5.1f}%  {seconds * 1000 / users:6.3f} ms/user")
        for name, seconds in entry["self_time"][:14]:
            print(f"    {name:<56} {seconds:7.3f} s {seconds / total * 100:5.1f}%  {seconds * 1000 / users:6.3f} ms/user")
    for label in ("provtui", "provtui, no server"):
        entry = profile.get(label)
        if not entry:
            continue
        if label == "provtui":
            print()
            print(f"{label}: top 25 cumulative, restricted to provtui/ and httpx")
            print(_trim(entry["top_cumulative"]))
        print()
        print(f"{label}: provtui's own work, cumulative (the HTTP calls left out)")
        print(_trim(entry["provtui_own"]))


def print_offline(offline_results: list[dict]) -> None:
    print()
    print("Client CPU without a server (httpx.MockTransport answering in-process: no sockets, no SYN stalls):")
    for result in offline_results:
        bare, ours = result["sides"]["bare GET+POST"], result["sides"]["provtui"]
        print(
            f"  c={result['concurrency']:<3} bare GET+POST {bare['client_cpu_ms_per_user']:6.3f} ms/user   "
            f"provtui {ours['client_cpu_ms_per_user']:6.3f} ms/user   provtui's own work "
            f"{result['provtui_extra_ms_per_user']:+6.3f} ms/user"
            f"{'' if bare['verified'] and ours['verified'] else '   NOT VERIFIED'}"
        )


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000, help="users to provision (default 2000)")
    parser.add_argument("--concurrency", default="8", help="comma-separated list, e.g. 4,8,16 (default 8)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per side, interleaved; the median is reported (default 3: a single run is at the mercy of 1-s SYN retransmissions)",
    )
    parser.add_argument("--quick", action="store_true", help="200 users")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile one run of bare GET+POST and of provtui (first concurrency), with and without a server",
    )
    parser.add_argument("--profile-out", type=Path, metavar="DIR", help="with --profile: also write the raw .pstats files to DIR")
    args = parser.parse_args(argv)
    count = 200 if args.quick else args.users
    try:
        concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        parser.error("--concurrency: a comma-separated list of whole numbers")
    if count < 1 or not concurrencies or any(not 1 <= c <= 64 for c in concurrencies) or args.repeat < 1:
        parser.error("--users, --repeat >= 1 and --concurrency from 1 to 64")
    os.environ[TOKEN_ENV] = TOKEN

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    work = Path(tempfile.mkdtemp(prefix="provtui-bench-provision-"))
    try:
        started = time.perf_counter()
        template = work / "template"
        users = build_template(template, count)
        bodies = payloads(users)
        log(f"store with {count} users built in {time.perf_counter() - started:.1f} s (service.create_user loop, one commit each)")
        offline_results = [offline(c, count, bodies, template, work, args.repeat) for c in concurrencies]
        results = [measure(c, count, bodies, template, work, args.repeat, log) for c in concurrencies]
        profile = profile_runs(concurrencies[0], count, bodies, template, work, args.profile_out) if args.profile else None
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # The bare client does not retry: a connection scim2-server dropped is a lost create, reported, not fatal.
    ok = all(result["sides"]["provtui"]["verified"] for result in [*results, *offline_results])
    if args.json:
        data = {
            "users": count,
            "target": TARGET,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(),
            "results": results,
            "no_server": offline_results,
            "verified": ok,
        }
        if profile:
            data["profile"] = profile
        print(json.dumps(data, indent=2))
    else:
        print(
            f"provisioning {count} new users into scim2-server (one fresh server per side), "
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average now "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        print()
        print_table(count, results)
        print_offline(offline_results)
        if profile:
            print_profile(profile)
        if not ok:
            print("\nVERIFICATION FAILED: provtui did not provision every user")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
