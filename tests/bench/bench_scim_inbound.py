"""Benchmark: inbound SCIM (#20) — people pushed into `provtui server --scim-listen` while its worker provisions
them to a SCIM app, against scim2-server's own rate for the same creates in the same run.

    python tests/bench/bench_scim_inbound.py [--users 1000] [--concurrency 8] [--patches 200] [--rounds 3] [--json]

``--rounds`` times, interleaved: the floor's creates, then provtui's (the floor's rate drifts by a third between
runs on a shared machine; each round's ratio is of two pushes a moment apart, and the figures are the medians).

- the floor: the same ``--users`` User creates sent straight to a fresh scim2-server (the reference SCIM
  server, in memory) by the same httpx client at the same concurrency: creates a second;
- provtui: a store whose rule puts everyone of department "Bench" in a group assigned a SCIM app (another
  scim2-server), served by a real `provtui server` with its worker; the same creates pushed to its endpoint:
  creates a second (each one a commit, audited, its rule run and its account queued), the ratio to the floor
  (target >= 0.7), and how long until every account exists downstream;
- one PATCH (a path-less replace of title, as Okta sends it) p50/p95 over ``--patches``, one at a time;
- the CPU each process spent a create (the floor's server and client; the client, provtui's server with its
  worker, and the app's scim2-server while provtui's creates are pushed and provisioned): on two cores, what
  bounds the ratio.

The client's rate limit is lifted for the run (``scim.rate``): it measures the endpoint, not its limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from provtui.testing.scim_server import ScimServerProcess  # noqa: E402
from tests.bench.bench_console import ms, p95  # noqa: E402
from tests.helpers.scim_endpoint import patch, scim_endpoint, user_body  # noqa: E402

TOKEN_ENV = "PROVTUI_BENCH_SCIM_TOKEN"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def bodies(count: int, tag: str) -> list[dict]:
    return [
        {**user_body(f"{tag}{n:06d}.bench"), "schemas": [user_body("x")["schemas"][0], ENTERPRISE], ENTERPRISE: {"department": "Bench"}}
        for n in range(count)
    ]


async def push(url: str, token: str, users: list[dict], concurrency: int) -> tuple[float, list[str]]:
    """Seconds to create ``users`` at ``concurrency`` requests at once, and their ids."""
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for body in users:
        queue.put_nowait(body)
    ids: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                response = await client.post("/Users", json=body)
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, ids


def cpu_s(pid: int) -> float:
    """The CPU seconds (user + system) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def floor_round(args: argparse.Namespace, tag: str, cpu: dict[str, float]) -> float:
    """One push of the creates to a fresh bare scim2-server: creates a second."""
    with ScimServerProcess(token="floor") as floor:
        before, mine = cpu_s(floor._process.pid), time.process_time()  # type: ignore[union-attr]
        floor_s, _ = asyncio.run(push(floor.url, "floor", bodies(args.users, tag), args.concurrency))
        cpu["floor_server"] += cpu_s(floor._process.pid) - before  # type: ignore[union-attr]
        cpu["floor_client"] += time.process_time() - mine
    return args.users / floor_s


def run(args: argparse.Namespace) -> dict:
    # CPU ms a create, by process: what the machine's two cores had to give each side
    cpu = dict.fromkeys(("floor_server", "floor_client", "client", "provtui_server", "app_server"), 0.0)
    floor_rates: list[float] = []
    rates: list[float] = []
    provisioned: list[float] = []
    with ScimServerProcess(token="app") as app:
        os.environ[TOKEN_ENV] = "app"

        def org(store: Path) -> None:
            for command in (
                ["config", "set", "scim.rate", "1000000"],
                ["app", "create", "Chat", "--scim-url", app.url, "--token-env", TOKEN_ENV],
                ["group", "create", "everyone"],
                ["app", "assign", "Chat", "--group", "everyone"],
                ["rule", "create", "bench", "--group", "everyone", "--expr", 'user.department == "Bench"'],
                ["rule", "activate", "bench"],
            ):
                done = subprocess.run([sys.executable, "-m", "provtui", "--store", str(store), *command], capture_output=True, text=True)
                assert done.returncode == 0, (command, done.stderr)

        with scim_endpoint(setup=org) as endpoint:
            downstream = httpx.Client(base_url=app.url, headers={"Authorization": "Bearer app"}, timeout=60)
            ids: list[str] = []
            for round_ in range(args.rounds):  # interleaved: each round's floor and provtui run a moment apart
                floor_rates.append(floor_round(args, f"f{round_}-", cpu))
                server_before, app_before, mine = cpu_s(endpoint.process.pid), cpu_s(app._process.pid), time.process_time()  # type: ignore[union-attr]
                started = time.perf_counter()
                pushed_s, pushed = asyncio.run(push(endpoint.url, endpoint.token, bodies(args.users, f"p{round_}-"), args.concurrency))
                cpu["client"] += time.process_time() - mine
                while downstream.get("/Users", params={"count": 0}).json()["totalResults"] < args.users * (round_ + 1):
                    assert time.perf_counter() - started < 600, "the accounts did not all arrive within 10 minutes"
                    time.sleep(0.05)
                provisioned.append(time.perf_counter() - started)
                cpu["provtui_server"] += cpu_s(endpoint.process.pid) - server_before
                cpu["app_server"] += cpu_s(app._process.pid) - app_before  # type: ignore[union-attr]
                rates.append(args.users / pushed_s)
                ids.extend(pushed)
            latencies = []
            with endpoint.client() as client:
                for n, user_id in enumerate(ids[: args.patches]):
                    started = time.perf_counter()
                    response = client.patch(f"/Users/{user_id}", json=patch({"op": "replace", "value": {"title": f"Title {n}"}}))
                    latencies.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text
    ratios = [rate / floor for rate, floor in zip(rates, floor_rates, strict=True)]
    return {
        "users": args.users,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "floor_creates_per_s": round(statistics.median(floor_rates), 1),
        "creates_per_s": round(statistics.median(rates), 1),
        "ratio": round(statistics.median(ratios), 2),  # (of each round's pair: the floor's rate drifts between runs)
        "round_ratios": [round(r, 2) for r in ratios],
        "target_ratio": 0.7,
        "provisioned_s": round(statistics.median(provisioned), 2),
        "patch_p50_ms": ms(statistics.median(latencies)),
        "patch_p95_ms": ms(p95(latencies)),
        "cpu_ms_per_create": {name: round(1000 * seconds / (args.users * args.rounds), 2) for name, seconds in cpu.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for option, default in (("--users", 1000), ("--concurrency", 8), ("--patches", 200), ("--rounds", 3)):
        parser.add_argument(option, type=int, default=default)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"inbound SCIM creates, {result['users']:,} at {result['concurrency']} at once, provisioning running")
        print(f"  scim2-server alone   {result['floor_creates_per_s']:>8.1f} creates/s")
        print(f"  provtui              {result['creates_per_s']:>8.1f} creates/s   ratio {result['ratio']} (target >= 0.7)")
        print(f"  each round's ratio   {', '.join(str(r) for r in result['round_ratios'])}")
        print(f"  every account downstream after {result['provisioned_s']} s")
        print(f"  one PATCH p50 / p95  {result['patch_p50_ms']} / {result['patch_p95_ms']} ms")
        print("  CPU ms a create: " + ", ".join(f"{name} {value}" for name, value in result["cpu_ms_per_create"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
