"""The manual apps' task digest: pure composition of subject and body."""

from __future__ import annotations

from provtui.domain.digest import compose_digest, describe_task, format_time


def _task(id, action, login, name=None, email=None, created="2026-01-02T09:30:00.000Z"):
    return {"id": id, "action": action, "login": login, "name": name, "email": email, "created": created}


def test_subject_counts_tasks_and_names_the_app():
    tasks = [_task("a1", "provision", "ada"), _task("b2", "deprovision", "bob"), _task("c3", "provision", "cy")]
    subject, _ = compose_digest("Payroll", tasks)
    assert subject == "provtui: 3 tasks for Payroll"
    assert compose_digest("Payroll", tasks[:1])[0] == "provtui: 1 task for Payroll"


def test_each_task_is_described_with_user_details_and_id():
    task = _task("1a2b3c4d", "deprovision", "ada", "Ada Lovelace", "ada@example.com", "2026-03-04T05:06:07.000Z")
    assert describe_task("Payroll", task) == (
        "Deprovision ada (Ada Lovelace, ada@example.com) from Payroll — task 1a2b3c4d, opened 2026-03-04 05:06 UTC"
    )
    provision = _task("9f9f9f9f", "provision", "bob", None, "bob@example.com", "2026-03-04T05:06:07+02:00")
    assert describe_task("Payroll", provision) == (
        "Provision bob (bob@example.com) in Payroll — task 9f9f9f9f, opened 2026-03-04 03:06 UTC"
    )


def test_deprovisions_come_first_then_provisions_each_oldest_first():
    tasks = [
        _task("p2", "provision", "zed", created="2026-01-03T00:00:00Z"),
        _task("d2", "deprovision", "yan", created="2026-01-05T00:00:00Z"),
        _task("p1", "provision", "amy", created="2026-01-01T00:00:00Z"),
        _task("d1", "deprovision", "xia", created="2026-01-04T00:00:00Z"),
    ]
    _, body = compose_digest("Payroll", tasks)
    assert body.index("To deprovision (2):") < body.index("To provision (2):")
    order = [body.index(f"task {i},") for i in ("d1", "d2", "p1", "p2")]
    assert order == sorted(order)
    assert "provtui tasks done d1 d2 p1 p2" in body


def test_a_digest_of_only_provisions_has_no_deprovision_heading():
    _, body = compose_digest("Payroll", [_task("p1", "provision", "amy")])
    assert "To provision (1):" in body
    assert "deprovision" not in body.lower().replace("pending-deprovisions", "")
    assert "1 task is waiting in Payroll" in body


def test_missing_details_and_odd_values_do_not_break_it():
    tasks = [
        {"id": "x1", "action": "deprovision", "login": "ghost", "created": "not a time"},
        {"id": "x2", "action": "rename", "login": "odd\nline", "created": None},
    ]
    subject, body = compose_digest("Pay\r\nroll", tasks)
    assert subject == "provtui: 2 tasks for Pay roll"  # no header injection through a name
    assert "Deprovision ghost from Pay roll — task x1, opened not a time" in body
    assert "Rename odd line in Pay roll — task x2" in body
    assert body.index("To deprovision (1):") < body.index("Rename (1):")  # unknown actions last


def test_format_time():
    assert format_time("2026-01-02T09:30:59.123Z") == "2026-01-02 09:30 UTC"
    assert format_time(None) == ""
    assert format_time("yesterday") == "yesterday"
