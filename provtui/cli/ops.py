"""Operations: sync, the worker, retries, manual tasks and settings (the audit trail: cli/audit.py)."""

from __future__ import annotations

import asyncio
import sys

from provtui.cli.output import EXIT_DOWNSTREAM, EXIT_OK, emit, warn
from provtui.cli.safe_input import ranged
from provtui.domain.errors import InvalidInput
from provtui.domain.numbers import MAX_WAIT


def report_problems(report) -> None:
    for failure in report.failed:
        warn(f"{failure['action']} {failure['user']} in {failure['app']} failed: {failure['error']}")
    for failure in report.deferred:
        warn(
            f"{failure['action']} {failure['user']} in {failure['app']} failed for now, queued again after "
            f"{failure['retry_at']}: {failure['error']}"
        )
    for app in report.quarantined:
        warn(f"{app} is quarantined after repeated failures (`provtui app resume {app}` when it is fixed)")
    for rejected in report.credentials_rejected:
        status = f"HTTP {rejected['status']}: " if rejected.get("status") else ""
        warn(
            f"{rejected['app']}: credentials rejected ({status}{rejected['error']}); its accounts stay queued and "
            f"proceed once a sync (or the worker, next at {rejected['next_probe']}) finds the credentials work"
        )
    digests = report.digests
    if digests is not None:
        for failure in digests.failed:
            warn(f"emailing {failure['app']}'s tasks failed: {failure['error']}")
        if digests.skipped_no_smtp:
            warn(f"{digests.skipped_no_smtp} manual task(s) await an email: SMTP is not configured (provtui config set smtp.host ...)")


def _progress(done: int, total: int) -> None:
    sys.stderr.write(f"\rprovisioning: {done}/{total}")
    sys.stderr.flush()


DEFAULT_MAX_WAIT = 300.0


def cmd_sync(args, service) -> int:
    max_wait = MAX_WAIT.check("--max-wait", args.max_wait)  # NaN, negatives and the infinities are not in range

    from provtui.compose import sync  # the engine and its connectors: loaded only to run them

    progress = _progress if sys.stderr.isatty() else None  # progress for people, not for logs and pipes
    try:
        report = sync(service, max_wait=max_wait, progress=progress)
    finally:
        if progress is not None:
            sys.stderr.write("\n")
    report_problems(report)
    data = {
        "done": report.done,
        "failed": report.failed,
        "deferred": report.deferred,
        "quarantined": report.quarantined,
        "calls": report.calls,
        "retries": report.retries,
        "credentials_rejected": report.credentials_rejected,
    }
    rejected = (
        f", credentials rejected by {', '.join(r['app'] for r in report.credentials_rejected)}" if report.credentials_rejected else ""
    )
    emit(
        args,
        data,
        text=f"synced: {report.done} done, {len(report.failed)} failed, {len(report.deferred)} deferred, "
        f"{report.calls} calls, {report.retries} retries{rejected}",
    )
    return EXIT_OK if report.ok else EXIT_DOWNSTREAM


def cmd_worker(args, service) -> int:
    from provtui.engine.worker import run_worker

    if getattr(service, "remote", False):
        raise InvalidInput("--server", "the server runs the provisioning worker itself: `provtui sync` runs pending work now")

    def log(report) -> None:
        if report.done or not report.ok:
            print(f"provisioned {report.done}, {len(report.failed)} failed, {len(report.deferred)} deferred", flush=True)
            report_problems(report)

    def log_import(outcome: dict) -> None:
        if outcome.get("outcome") != "applied":
            warn(f"scheduled import from {outcome['source']}: {outcome['outcome']}: {outcome.get('message', '')}")

    from provtui.compose import build_engine

    def log_live(message: str) -> None:  # a live source's session: its mode, and each change of its state
        print(message, flush=True)

    asyncio.run(run_worker(service, engine=build_engine(service), on_report=log, on_import=log_import, on_live=log_live))
    return EXIT_OK


def cmd_retry(args, service) -> int:
    count = service.retry(app_name=args.app, login=args.user)
    return emit(args, {"queued": count}, text=f"queued {count} failed account(s) again")


def cmd_tasks(args, service) -> int:
    if args.verb == "done":
        if not args.ids:
            raise InvalidInput("ID", "name at least one task")
        done = [service.complete_task(task_id) for task_id in args.ids]
        return emit(args, done, text=f"done: {', '.join(t['id'] for t in done)}")
    return emit(args, service.task_list(), ["id", "app", "user", "action", "state", "created"])


def cmd_config(args, service) -> int:
    if args.verb == "set":
        entry = service.set_config(args.key, args.value)
        return emit(args, entry, text=f"{entry['key']} = {entry['value']}")
    return emit(args, service.config(), text="\n".join(f"{k} = {v}" for k, v in service.config().items()) or "(no settings)")


def register(cli) -> None:
    command = cli.command
    p = command(cli.nouns, "sync", cmd_sync, "run all pending provisioning to completion")
    p.add_argument(
        "--max-wait",
        type=ranged(MAX_WAIT),
        default=DEFAULT_MAX_WAIT,
        metavar="SECONDS",
        help="retry transient faults (timeouts, 429, 5xx) for up to this long (default 300; 0: one attempt each)",
    )
    command(cli.nouns, "worker", cmd_worker, "provision continuously until SIGTERM/SIGINT")
    p = command(cli.nouns, "retry", cmd_retry, "queue failed accounts again")
    p.add_argument("--app")
    p.add_argument("--user", metavar="LOGIN")
    p = command(cli.nouns, "tasks", cmd_tasks, "manual apps' tasks; `tasks done ID...` marks them done")
    p.add_argument("verb", nargs="?", choices=["done"])
    p.add_argument("ids", nargs="*", metavar="ID")
    config = cli.noun("config", "store-wide settings (smtp.host, smtp.port, smtp.from, smtp.user, smtp.password-env)")
    p = command(config, "set", cmd_config, "set a setting")
    p.add_argument("key")
    p.add_argument("value")
    command(config, "show", cmd_config, "show the settings")
