"""The soak's short form: a small organisation, a minute of storm with faults, kills and an app
down, then every invariant must hold (the long form: `python -m provtui.testing.soak --minutes 30`)."""

from provtui.testing.soak import WRITERS, AckLog, Options, read_acknowledged, run_soak, summary


def test_a_short_soak_survives_kills_and_an_app_down_window_and_every_invariant_holds(tmp_path):
    result = run_soak(
        Options(
            minutes=0.75,
            people=1500,
            apps=3,
            manual_apps=1,
            groups=24,
            rules=6,
            app_down_seconds=10,
            converge_minutes=4,
            work=tmp_path / "soak",
        )
    )
    print(summary(result))
    assert result.kills["worker"] >= 1
    assert all(result.kills[f"writer {name}"] >= 1 for name in WRITERS)
    assert result.app_down["seconds"] >= 10 and sum(result.faults[result.app_down["app"]].values()) > 0
    assert all(sum(result.changes[name].values()) > 0 for name in WRITERS)
    assert result.converged, summary(result)
    assert result.report.ok, result.report.violations
    assert result.acknowledged == sum(sum(c.values()) for c in result.changes.values())


def test_a_change_in_flight_when_its_writer_was_killed_leaves_the_earlier_one_unchecked(tmp_path):
    """Only the last acknowledged change to a thing must still hold, and not even that if a later
    change to it was started by a writer killed before it heard the answer."""
    log = AckLog(tmp_path / "acks.jsonl")
    fact = {"user": "ada", "state": "active"}
    for record in (
        {"kind": "start"},
        {"kind": "intent", "n": 1, "op": "hire", "key": "state:ada", "audit": ["user.create", "ada"], "holds": fact},
        {"kind": "ack", "n": 1},
        {
            "kind": "intent",
            "n": 2,
            "op": "move",
            "key": "dept:ada",
            "audit": ["user.update", "ada"],
            "holds": {"user": "ada", "attribute": "department", "value": "Sales"},
        },
        {"kind": "refused", "n": 2},
        {
            "kind": "intent",
            "n": 3,
            "op": "leave",
            "key": "state:ada",
            "audit": ["user.deactivate", "ada"],
            "holds": {"user": "ada", "state": "deprovisioned"},
        },
        {"kind": "start"},
    ):  # killed before the answer to 3
        log.write(record)
    (tmp_path / "acks.jsonl").open("a").write('{"kind": "intent", "n"')  # a torn last line
    changes, counts, refused = read_acknowledged(tmp_path / "acks.jsonl")
    assert changes == [{"op": "hire", "audit": ["user.create", "ada"], "holds": None}]
    assert counts == {"hire": 1} and refused == 1


def test_a_short_soak_on_postgresql_survives_kills_and_every_invariant_holds(tmp_path, pg_url):
    """The same storm on a PostgreSQL store (#19): writers and the worker SIGKILLed mid-batch, several times;
    every acknowledged change still there, every account converged, the audit chain whole."""
    result = run_soak(
        Options(
            minutes=0.5,
            people=800,
            apps=2,
            manual_apps=1,
            groups=16,
            rules=4,
            app_down_seconds=8,
            converge_minutes=4,
            work=tmp_path / "soak",
            store=pg_url,
        )
    )
    print(summary(result))
    assert result.kills["worker"] >= 1
    assert all(result.kills[f"writer {name}"] >= 1 for name in WRITERS)
    assert result.converged, summary(result)
    assert result.report.ok, result.report.violations
    assert result.acknowledged == sum(sum(c.values()) for c in result.changes.values())
