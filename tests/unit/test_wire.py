"""The server protocol's values and errors (provtui.protocol.wire): what goes over the socket comes back
the same, only the types it names can be built from it, and errors keep their class and exit code."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from provtui.domain.errors import HeldForConfirmation, InvalidInput, NotAllowed, NotFound
from provtui.domain.expressions.errors import ExpressionError
from provtui.domain.roles import Action, Scope
from provtui.engine.outcomes import SyncReport
from provtui.protocol import wire
from provtui.protocol.api import served
from provtui.service import StoreUnreadable


def round_trip(value, *, enums=True):
    return wire.loads(wire.dumps(value, enums=enums))


def test_values_json_has_no_word_for_travel_tagged_and_come_back_as_they_went():
    when = datetime(2026, 12, 2, 13, 0, tzinfo=UTC)
    value = {"csv": b"login,email\n\xff", "since": when, "apps": frozenset({"b", "a"}), "action": Action.READ}
    assert round_trip(value) == value
    assert isinstance(round_trip(value)["action"], Action)
    assert round_trip(Scope(apps=frozenset({"x"}))) == Scope(apps=frozenset({"x"}))
    report = round_trip(SyncReport(done=3, failed=[{"app": "Slack"}]))
    assert isinstance(report, SyncReport) and report.done == 3 and not report.ok


def test_results_send_enums_as_their_values_and_plain_json_untouched():
    assert orjson.loads(wire.dumps({"role": Action.READ})) == {"role": Action.READ.value}
    rows = [{"login": f"u{n}", "profile": {"$note": "a key that starts with $"}} for n in range(3)]
    assert wire.loads(wire.dumps(rows)) == rows


@pytest.mark.parametrize(
    "data",
    [
        b'{"$t": ["object", "os.system", "id"]}',
        b'{"$t": ["dataclass", "Popen", {}]}',
        b'{"$t": ["enum", "Signals", 9]}',
        b'{"$t": ["bytes", "not base64!"]}',
        b'{"$t": "no list"}',
        b"not json",
    ],
)
def test_a_peer_cannot_make_the_other_side_build_anything_else(data):
    with pytest.raises(wire.WireError):
        wire.loads(data)


def test_a_value_with_no_wire_form_is_refused_when_sent():
    with pytest.raises(TypeError, match="not JSON serializable"):
        wire.dumps({"x": object()})


@pytest.mark.parametrize(
    "error, exit_code",
    [
        (InvalidInput("--email", "not an address"), 2),
        (NotFound("user", "ghost"), 2),
        (NotAllowed("mallory may not create users"), 4),
        (HeldForConfirmation("held: 7 would lose access", {"held": "h-1", "losses": 7}), 3),
        (ExpressionError("unexpected token", "a == == b", 5), 2),
        (StoreUnreadable("the store is damaged: journal-0.jsonl at byte 12"), 5),
    ],
)
def test_the_client_raises_the_error_the_service_raised(error, exit_code):
    sent = orjson.loads(wire.dumps(wire.error_object(error)))
    with pytest.raises(type(error)) as raised:
        wire.raise_error(sent)
    assert str(raised.value) == str(error) and raised.value.__dict__ == error.__dict__
    assert getattr(raised.value, "exit_code", 5) == exit_code
    if isinstance(error, ExpressionError):
        assert raised.value.caret() == error.caret()


def test_an_unexpected_error_is_named_by_its_type_only():
    sent = wire.error_object(KeyError("/etc/shadow line 3"))
    assert "shadow" not in str(sent)
    with pytest.raises(wire.ServerFailed) as raised:
        wire.raise_error(sent)
    assert raised.value.exit_code == 1


def test_only_the_api_s_methods_are_served():
    assert served("list_users") and served("rules.change") and served("sync")
    for name in ("store", "directory", "open", "repair_store", "rules.reevaluate", "changes", "_users.create_user", "rules._x"):
        assert not served(name)
