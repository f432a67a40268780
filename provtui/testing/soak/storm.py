"""The storm and after: the worker and writers run while faults fire and processes are killed; then the faults
stop, the admin resumes and retries until the queue drains, and the invariants are checked; the summary."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from provtui.model.schema import ACCOUNTS, APP_HEALTH, DIRTY
from provtui.service import Service
from provtui.testing.soak.acks import read_acknowledged
from provtui.testing.soak.options import Options, SoakResult, log
from provtui.testing.soak.organisation import build
from provtui.testing.soak.processes import Child
from provtui.testing.soak.writers import WRITERS

# Background faults on every SCIM app during the storm: each transient, so the engine must retry through them.
STORM_FAULTS = {
    "slow": {"probability": 0.02, "delay_ms": 300},
    "rate_limit": {"probability": 0.02, "retry_after": 1},
    "unavailable": {"probability": 0.02},
    "drop": {"probability": 0.005},
    "malformed": {"probability": 0.005, "method": "GET"},
    "after_commit": {"probability": 0.01, "method": "POST", "path": "/Users"},
}


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
    print(
        f"soak: seed {options.seed}, {options.people} people, {options.apps} SCIM + {options.manual_apps} manual apps, "
        f"{options.groups} groups, {options.rules} rules, {options.minutes:g} minutes of storm",
        flush=True,
    )
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
        writers = {
            name: Child(
                f"writer {name}",
                [
                    sys.executable,
                    "-m",
                    "provtui.testing.soak",
                    "--writer",
                    name,
                    "--store",
                    str(store),
                    "--ack-log",
                    str(work / f"acks-{name}.jsonl"),
                    "--seed",
                    str(options.seed),
                ],
                work / f"writer-{name}.log",
                env,
            )
            for name in WRITERS
        }
        children = [worker, *writers.values()]
        stack.callback(lambda: [c.kill() for c in children if c.process is not None and c.process.poll() is None])
        for server in servers.values():
            server.set_faults(reset=True, seed=options.seed, **STORM_FAULTS)
        for child in children:
            child.start()
        log(f"storm: a worker and two writers (cli, svc); faults on; work dir {work}", started)
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
        log("storm over: writers stopping", started)
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
        log(f"checking the invariants and {len(acknowledged)} acknowledged changes", started)
        from provtui.testing.invariants import check

        service.refresh()
        result.report = asyncio.run(check(service, acknowledged=acknowledged))
        log("checked", started)
    return result


def _storm_event(
    event: str,
    worker: Child,
    writers: dict[str, Child],
    servers: dict,
    down_app: str | None,
    service: Service,
    result: SoakResult,
    now: float,
    started: float,
) -> None:
    if event == "kill worker" or event.startswith("kill writer"):
        child = worker if event == "kill worker" else writers[event.rsplit(" ", 1)[1]]
        child.ensure_running()
        child.kill()
        result.kills[child.name] += 1
        log(f"SIGKILL {child.name}", started)
        child.start()
    elif event == "app down" and down_app:
        servers[down_app].set_faults(app_down={"mode": "503"})
        result.app_down = {"app": down_app, "from": round(now)}
        log(f"{down_app} down (every call 503)", started)
    elif event == "app up" and down_app:
        servers[down_app].set_faults(app_down=None)
        result.app_down["seconds"] = round(now - result.app_down["from"])
        service.refresh()
        health = service.store.get(APP_HEALTH, service.directory.app(down_app)["id"]) or {}
        result.app_down["quarantined"] = bool(health.get("quarantined"))
        if health.get("quarantined"):
            service.resume_app(down_app)  # as the admin told of the quarantine would, once the app is back
        log(f"{down_app} up again after {result.app_down['seconds']} s (quarantined: {result.app_down['quarantined']})", started)


def converge(options: Options, service: Service, servers: dict, worker: Child, result: SoakResult, started: float) -> None:
    """Faults off; the admin resumes quarantined apps and queues failed accounts again until nothing is left."""
    for server in servers.values():
        server.clear_faults()
    began = time.monotonic()
    deadline = began + options.converge_minutes * 60
    result.requeued = Counter()
    service.refresh()
    log(f"faults off; {service.pending_work()} queued: draining", started)
    while time.monotonic() < deadline:
        worker.ensure_running()
        service.refresh()
        quarantined = [
            service.store.get("apps", app_id)["name"]
            for app_id, health in service.store.all(APP_HEALTH).items()
            if health.get("quarantined")
        ]
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
            log(f"converged in {result.converge_seconds} s", started)
            return
        time.sleep(1.0)
    log(f"did not converge within {options.converge_minutes} minutes: {service.pending_work()} still queued", started)


# --------------------------------------------------------------------------- the summary


def summary(result: SoakResult) -> str:
    lines = [f"seed: {result.seed}"]
    for name in WRITERS:
        counts = result.changes.get(name, Counter())
        lines.append(
            f"writer {name}: {sum(counts.values())} acknowledged changes ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}), "
            f"{result.refused.get(name, 0)} refused or failed"
        )
    lines.append(f"calls sent: {sum(result.calls.values())} ({', '.join(f'{k} {v}' for k, v in sorted(result.calls.items()))})")
    faults = sum((result.faults.values()), Counter())
    lines.append(
        f"faults injected (each call retried or deferred): {sum(faults.values())} ({', '.join(f'{k} {v}' for k, v in sorted(faults.items()))})"
    )
    lines.append(f"kills survived: {', '.join(f'{k} {v}' for k, v in sorted(result.kills.items()))}")
    if result.app_down:
        down = result.app_down
        lines.append(
            f"app down: {down['app']} from second {down['from']} for {down.get('seconds')} s (quarantined: {down.get('quarantined')})"
        )
    lines.append(f"after the storm: {', '.join(f'{k} {v}' for k, v in sorted(result.requeued.items())) or 'nothing to resume or retry'}")
    lines.append(f"task emails received: {result.mails}")
    lines.append(f"time to converge (faults off): {result.converge_seconds} s" if result.converged else "did NOT converge")
    report = result.report
    if report is not None:
        lines.append(
            f"invariants: {'all hold' if report.ok else f'{len(report.violations)} violations'} "
            f"({report.checked_users} users, {report.checked_accounts} downstream accounts, {result.acknowledged} acknowledged changes)"
        )
        lines += [f"  - {v}" for v in report.violations[:50]]
    return "\n".join(lines)
