"""Benchmark: live sources (#21) — a change in the directory, seen in provtui's directory and in a downstream SCIM
app, beside a bare consumer's notification of the same change in the same run.

    python tests/bench/bench_live.py [--changes 200] [--people 50] [--directories openldap,ad] [--json]

For each directory: OpenLDAP (slapd with syncprov: provtui's syncrepl session) and Active Directory (a Samba AD
DC: provtui's DirSync session, a round a second).  ``--people`` people in one directory group, assigned a SCIM
app (a real scim2-server); a real `provtui worker` on the store, the source ``--live``.  Then ``--changes``
times, one at a time: a person's title replaced (ldap3's modify, as an admin's ldapmodify), and from the moment
it returns:

- ``floor``: a bare consumer of the same directory in the same process — python-ldap's syncrepl consumer
  (refreshAndPersist) for OpenLDAP, a bare DirSync loop at provtui's interval for AD — hears of the change
  (on OpenLDAP it may hear before the modify's reply is read: a floor below 0);
- ``directory``: provtui's store shows the new title (a reader refreshing as the console does);
- ``app``: the SCIM app's user shows it (GET /Users?filter=userName eq ...).

p50/p95 of each, in ms.  Targets: directory p95 <= 1 s, app p95 <= 2 s.  On AD each change waits a random
part of a round first, so that it falls anywhere in DirSync's rounds (provtui's and the floor's alike).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from provtui.connectors.ldap.dirsync import POLL_SECONDS as DIRSYNC_POLL_SECONDS  # noqa: E402
from provtui.service import Service  # noqa: E402
from provtui.testing.scim_server import ScimServerProcess  # noqa: E402
from tests.bench.bench_console import ms, p95  # noqa: E402
from tests.helpers.live import start_worker_process  # noqa: E402

PASSWORD_ENV = "PROVTUI_BENCH_LIVE_PW"
TOKEN_ENV = "PROVTUI_BENCH_LIVE_TOKEN"
TARGETS = {"directory_p95_ms": 1000, "app_p95_ms": 2000}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Heard:
    """When the bare consumer heard of each title (title -> time.monotonic())."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.stop = threading.Event()

    def note(self, values: list[Any]) -> None:
        now = time.monotonic()
        for value in values:
            text = value.decode() if isinstance(value, bytes) else str(value)
            self.times.setdefault(text, now)


# -- the directories -------------------------------------------------------------------------------


@contextlib.contextmanager
def openldap(people: int) -> Iterator[dict[str, Any]]:
    from provtui.testing.slapd import SlapdProcess, group_entry, person_entry

    with SlapdProcess(syncprov=True) as slapd:
        ou = slapd.add_ou("bench")
        entries = [person_entry(ou, f"p{n:04d}", "P", f"Erson{n}", title="start") for n in range(people)]
        slapd.add_ldif([*entries, group_entry(ou, "everyone", [dn for dn, _ in entries])])
        connection = slapd.connection()

        def change(n: int, title: str) -> None:
            assert connection.modify(entries[n][0], {"title": [("MODIFY_REPLACE", [title])]})

        yield {
            # the rootdn: a refresh is one search of everyone, past the reader's 500-entry limit (a consumer's account
            # has no size limit, as OpenLDAP's replication accounts are given)
            "source": {"uri": slapd.uri, "bind_dn": slapd.bind_dn, "base_dn": ou, "flavor": "openldap"},
            "password": slapd.admin_password,
            "logins": [f"p{n:04d}" for n in range(people)],
            "change": change,
            "interval": 0.0,
            "floor": lambda heard: syncrepl_floor(slapd.uri, slapd.bind_dn, slapd.admin_password, ou, heard),
        }
        connection.unbind()


@contextlib.contextmanager
def active_directory(people: int) -> Iterator[dict[str, Any]]:
    from provtui.testing.samba import SambaDC, free_loopback_ip

    with SambaDC(free_loopback_ip(70)) as dc:
        ou = dc.add_ou("bench-live")
        dns = [dc.add_user(ou, f"lp{n:04d}", "P", f"Erson{n}", title="start", mail=f"lp{n:04d}@example.test")[0] for n in range(people)]
        dc.add_group(ou, "everyone", dns)

        def change(n: int, title: str) -> None:
            dc.modify(dns[n], {"title": title})

        yield {
            "source": {
                "uri": dc.ldaps_uri,
                "bind_dn": dc.admin_dn,
                "base_dn": ou,
                "flavor": "ad",
                "ca_certificates": Path(dc.ca_file).read_text(),
            },
            "password": dc.admin_password,
            "logins": [f"lp{n:04d}" for n in range(people)],
            "change": change,
            "interval": DIRSYNC_POLL_SECONDS,
            "floor": lambda heard: dirsync_floor(dc, heard),
        }


def syncrepl_floor(uri: str, bind_dn: str, password: str, base: str, heard: Heard) -> None:
    """A bare refreshAndPersist consumer noting each title it is sent."""
    import ldap
    from ldap.ldapobject import SimpleLDAPObject
    from ldap.syncrepl import SyncreplConsumer

    class Bare(SimpleLDAPObject, SyncreplConsumer):
        cookie = None

        def syncrepl_get_cookie(self) -> str | None:
            return self.cookie

        def syncrepl_set_cookie(self, cookie: str) -> None:
            self.cookie = cookie

        def syncrepl_entry(self, dn: str, attrs: dict[str, list[bytes]], uuid: str) -> None:
            heard.note(attrs.get("title", []))

        def syncrepl_delete(self, uuids: list[str]) -> None: ...
        def syncrepl_present(self, uuids: list[str] | None, refreshDeletes: bool = False) -> None: ...  # noqa: N803
        def syncrepl_refreshdone(self) -> None: ...

    consumer = Bare(uri)
    consumer.simple_bind_s(bind_dn, password)
    msgid = consumer.syncrepl_search(
        base, ldap.SCOPE_SUBTREE, mode="refreshAndPersist", filterstr="(objectClass=inetOrgPerson)", attrlist=["title"]
    )
    while not heard.stop.is_set():
        with contextlib.suppress(ldap.TIMEOUT):
            consumer.syncrepl_poll(msgid=msgid, timeout=0.2)
    consumer.unbind_s()


def dirsync_floor(dc: Any, heard: Heard) -> None:
    """A bare DirSync loop at provtui's interval, noting each title it is sent."""
    connection = dc.connection()
    cookie = None
    more = True
    while more:  # the cookie of now
        sync = connection.extend.microsoft.dir_sync(dc.base_dn, "(objectClass=user)", attributes=["title"], cookie=cookie)
        sync.loop()
        cookie, more = sync.cookie, sync.more_results
    while not heard.stop.is_set():
        started = time.monotonic()
        sync = connection.extend.microsoft.dir_sync(dc.base_dn, "(objectClass=user)", attributes=["title"], cookie=cookie)
        for entry in sync.loop():
            heard.note((entry.get("attributes") or {}).get("title") or [])
        cookie = sync.cookie
        time.sleep(max(0.0, DIRSYNC_POLL_SECONDS - (time.monotonic() - started)))
    connection.unbind()


# -- one run ---------------------------------------------------------------------------------------


def until(check: Callable[[], bool], timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic()
        time.sleep(0.005)
    return None


def run(name: str, directory: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    token = "bench-live-token"
    with tempfile.TemporaryDirectory(prefix="provtui-bench-live-") as tmp, ScimServerProcess(token=token) as scim:
        os.environ[PASSWORD_ENV], os.environ[TOKEN_ENV] = directory["password"], token
        store = Path(tmp) / "store"
        admin = Service.init(store)
        admin.set_config("safeguard.threshold", "0.9")
        admin.create_app("Chat", scim_url=scim.url, token_env=TOKEN_ENV, concurrency=4)
        admin.importer().add_ldap_source("corp", password_env=PASSWORD_ENV, live=True, **directory["source"])
        worker = start_worker_process(store, {PASSWORD_ENV: directory["password"], TOKEN_ENV: token})
        app = httpx.Client(base_url=scim.url, headers={"Authorization": f"Bearer {token}"})
        heard = Heard()
        floor = threading.Thread(target=directory["floor"], args=(heard,), daemon=True)
        try:
            reader = Service.open(store)
            logins = directory["logins"]

            def everyone_there() -> bool:
                reader.refresh()
                return reader.user_count() >= len(logins) and any(g["name"] == "everyone" for g in reader.list_groups())

            assert until(everyone_there, 120), "the live session's first read did not arrive"
            admin.refresh()
            admin.assign("Chat", group="everyone")
            assert until(lambda: app.get("/Users", params={"count": 0}).json()["totalResults"] >= len(logins), 120), "not provisioned"
            floor.start()
            time.sleep(1.5)  # the bare consumer's own first read done
            samples: dict[str, list[float]] = {"floor": [], "directory": [], "app": []}
            rounds = random.Random(21)
            for i in range(args.changes):
                n = i % len(logins)
                if directory["interval"]:  # a polled directory: changes at any moment of a round, as people make them
                    time.sleep(rounds.uniform(0, directory["interval"]))
                title = f"{name}-title-{i}"
                directory["change"](n, title)
                changed = time.monotonic()

                def in_directory(n: int = n, title: str = title) -> bool:
                    reader.refresh()
                    return reader.user_view(logins[n])["profile"].get("title") == title

                def in_app(n: int = n, title: str = title) -> bool:
                    found = app.get("/Users", params={"filter": f'userName eq "{logins[n]}"'}).json().get("Resources") or []
                    return bool(found) and found[0].get("title") == title

                seen = until(in_directory, 30)
                shown = until(in_app, 30)
                assert seen is not None and shown is not None, f"change {i} did not arrive"
                heard_at = until(lambda title=title: title in heard.times, 10) and heard.times[title]
                samples["directory"].append(seen - changed)
                samples["app"].append(shown - changed)
                samples["floor"].append((heard_at or changed) - changed)
        finally:
            heard.stop.set()
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
            app.close()
    return {
        **{f"{k}_p50_ms": ms(statistics.median(v)) for k, v in samples.items()},
        **{f"{k}_p95_ms": ms(p95(v)) for k, v in samples.items()},
        "changes": args.changes,
        "people": args.people,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--directories", default="openldap,ad", help="which directories: openldap, ad, or both")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"targets": TARGETS}
    for name in [d.strip() for d in args.directories.split(",") if d.strip()]:
        log(f"{name}: {args.people} people, {args.changes} changes")
        with (openldap if name == "openldap" else active_directory)(args.people) as directory:
            results[name] = run(name, directory, args)
        figures = results[name]
        log(
            f"{name}: floor p50/p95 {figures['floor_p50_ms']}/{figures['floor_p95_ms']} ms; directory "
            f"{figures['directory_p50_ms']}/{figures['directory_p95_ms']} ms; app {figures['app_p50_ms']}/{figures['app_p95_ms']} ms"
        )
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
