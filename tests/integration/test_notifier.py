"""Task digests for manual apps, mailed to a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from pathlib import Path

import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from provtui.compose import build_engine
from provtui.connectors.smtp import MailError, SmtpSettings, send_mail
from provtui.engine.notifier import CLAIM_FIELD, send_task_digests
from provtui.model.schema import TASKS
from provtui.service import Service
from provtui.testing.scim_server import free_port

# aiosmtpd warns that AUTH without TLS is unsafe: true, and irrelevant on 127.0.0.1 in a test.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

PASSWORD = "s3cret-Pa55word-never-stored"
PASSWORD_ENV = "PROVTUI_TEST_SMTP_PASSWORD"


class MailServer:
    """An aiosmtpd server in a thread that keeps what it receives; stoppable and restartable on one port."""

    def __init__(self, *, port: int | None = None, login: str | None = None, password: str | None = None):
        self.port = port or free_port()
        self.credentials = (login.encode(), password.encode()) if login else None
        self.messages: list[dict] = []
        self.logins: list[tuple[bytes, bytes]] = []
        self.refuse: dict[str, str] = {}  # recipient -> SMTP reply to RCPT TO
        self.data_reply: str | None = None  # a reply to DATA instead of accepting the message
        self.controller: Controller | None = None

    def start(self) -> MailServer:
        kwargs = {}
        if self.credentials:
            kwargs = {"auth_required": True, "auth_require_tls": False, "authenticator": self._authenticate}
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=(auth_data.login, auth_data.password) == self.credentials, handled=False)


class _Handler:
    def __init__(self, owner: MailServer):
        self.owner = owner

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.owner.refuse:
            return self.owner.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.owner.data_reply:
            return self.owner.data_reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.owner.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "raw": envelope.content,
                "message": message,
                "subject": str(message["Subject"]),
                "body": message.get_body().get_content(),
            }
        )
        return "250 Message accepted for delivery"


@pytest.fixture
def mail_server():
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture
def auth_mail_server(monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    server = MailServer(login="provtui", password=PASSWORD).start()
    yield server
    server.stop()


def _service(tmp_path: Path) -> Service:
    service = Service.init(tmp_path / "store", actor="admin")
    service.create_user("ada", "ada@example.com", "Ada", "Lovelace", activate=True)
    service.create_user("bob", "bob@example.com", "Bob", "Babbage", activate=True)
    service.create_user("cy", "cy@example.com", "Cy", "Young", activate=True)
    service.create_app("Payroll", manual=True, notify=["it@example.com"])
    service.create_app("Badges", manual=True, notify=["security@example.com", "facilities@example.com"])
    return service


def _smtp(service: Service, port: int, **extra: str) -> None:
    service.set_config("smtp.host", "127.0.0.1")
    service.set_config("smtp.port", str(port))
    service.set_config("smtp.from", "provtui@example.com")
    for key, value in extra.items():
        service.set_config(key, value)


def _reconcile(service: Service) -> None:
    """Open the tasks without mailing them: these tests drive send_task_digests themselves."""
    asyncio.run(build_engine(service, notify=False).run_until_idle())


def _tasks(service: Service) -> list[dict]:
    return list(service.store.all(TASKS).values())


def _notify_events(service: Service) -> list[dict]:
    return [e for e in service.audit() if e["action"] == "task.notify"]


def _never(*args, **kwargs):
    raise AssertionError("nothing should be sent")


def test_one_digest_per_app_to_its_notify_list(tmp_path, mail_server):
    service = _service(tmp_path)
    _smtp(service, mail_server.port)
    service.assign("Payroll", login="ada")
    service.assign("Payroll", login="bob")
    service.assign("Badges", login="ada")
    _reconcile(service)
    assert len(_tasks(service)) == 3

    report = send_task_digests(service.store)

    assert report.ok and not report.failed and report.skipped_no_smtp == 0
    assert [s["app"] for s in report.sent] == ["Badges", "Payroll"]
    by_subject = {m["subject"]: m for m in mail_server.messages}
    assert set(by_subject) == {"provtui: 2 tasks for Payroll", "provtui: 1 task for Badges"}
    payroll, badges = by_subject["provtui: 2 tasks for Payroll"], by_subject["provtui: 1 task for Badges"]
    assert payroll["to"] == ["it@example.com"]
    assert badges["to"] == ["security@example.com", "facilities@example.com"]
    assert payroll["from"] == "provtui@example.com"
    assert payroll["message"]["To"] == "it@example.com"
    assert "Provision ada (Ada Lovelace, ada@example.com) in Payroll — task" in payroll["body"]
    assert "Provision bob (Bob Babbage, bob@example.com) in Payroll — task" in payroll["body"]
    assert "bob" not in badges["body"]

    tasks = _tasks(service)
    assert all(t["notified"] for t in tasks) and not any(CLAIM_FIELD in t for t in tasks)
    events = {e["target"]: e for e in _notify_events(service)}
    assert set(events) == {"Payroll", "Badges"}
    payroll_ids = sorted(t["id"] for t in tasks if service.store.get("apps", t["app"])["name"] == "Payroll")
    assert events["Payroll"]["actor"] == "provtui-engine"
    assert events["Payroll"]["before"] is None and events["Payroll"]["correlation"] is None
    assert events["Payroll"]["after"]["to"] == ["it@example.com"]
    assert sorted(events["Payroll"]["after"]["tasks"]) == payroll_ids
    assert f"provtui tasks done {' '.join(events['Payroll']['after']['tasks'])}" in payroll["body"]


def test_notified_tasks_are_not_mailed_again_new_ones_are(tmp_path, mail_server):
    service = _service(tmp_path)
    _smtp(service, mail_server.port)
    service.assign("Payroll", login="ada")
    _reconcile(service)
    assert len(send_task_digests(service.store).sent) == 1

    seq = service.store.seq
    report = send_task_digests(service.store)
    assert report.sent == [] and report.failed == []
    assert service.store.seq == seq  # nothing to do writes nothing
    assert len(mail_server.messages) == 1

    service.assign("Payroll", login="cy")
    _reconcile(service)
    report = send_task_digests(service.store)
    assert [len(s["tasks"]) for s in report.sent] == [1]
    assert len(mail_server.messages) == 2
    latest = mail_server.messages[-1]
    assert latest["subject"] == "provtui: 1 task for Payroll"
    assert "cy (Cy Young" in latest["body"] and "ada (" not in latest["body"]  # (not "ada": a task id in hex may hold it)


def test_deprovision_tasks_come_first(tmp_path, mail_server):
    service = _service(tmp_path)
    _smtp(service, mail_server.port)
    service.assign("Payroll", login="ada")
    _reconcile(service)
    send_task_digests(service.store)
    for task in _tasks(service):
        service.complete_task(task["id"])
    _reconcile(service)
    service.change_state("ada", "deactivate")
    service.assign("Payroll", login="bob")
    _reconcile(service)

    report = send_task_digests(service.store)

    assert len(report.sent) == 1 and len(report.sent[0]["tasks"]) == 2
    body = mail_server.messages[-1]["body"]
    assert "Deprovision ada (Ada Lovelace, ada@example.com) from Payroll" in body
    assert body.index("To deprovision (1):") < body.index("To provision (1):")


def test_smtp_down_keeps_tasks_waiting_then_sends_when_it_is_back(tmp_path):
    service = _service(tmp_path)
    server = MailServer()  # its port, nothing listening yet
    _smtp(service, server.port)
    service.assign("Payroll", login="ada")
    _reconcile(service)

    report = send_task_digests(service.store)

    assert report.sent == []
    assert report.failed == [
        {"app": "Payroll", "error": f"SMTP server 127.0.0.1:{server.port} refused the connection", "retryable": True, "tasks": 1}
    ]
    assert not report.ok
    task = _tasks(service)[0]
    assert "notified" not in task and CLAIM_FIELD not in task  # the claim was released
    assert _notify_events(service) == []

    server.start()
    try:
        report = send_task_digests(service.store)
        assert [s["app"] for s in report.sent] == ["Payroll"] and report.failed == []
        assert len(server.messages) == 1
        assert _tasks(service)[0]["notified"]
        # and stopped again: it was sent, so there is nothing left to fail on
        server.stop()
        assert send_task_digests(service.store).failed == []
    finally:
        server.stop()


def test_no_smtp_configured_sends_nothing_and_counts_the_waiting(tmp_path):
    service = _service(tmp_path)
    service.assign("Payroll", login="ada")
    service.assign("Badges", login="bob")
    _reconcile(service)
    seq = service.store.seq

    report = send_task_digests(service.store, send=_never)

    assert report.skipped_no_smtp == 2 and report.sent == [] and report.failed == []
    assert service.store.seq == seq
    assert not any("notified" in t for t in _tasks(service))


def test_smtp_configured_without_sender_is_reported(tmp_path):
    service = _service(tmp_path)
    service.set_config("smtp.host", "127.0.0.1")
    service.assign("Payroll", login="ada")
    _reconcile(service)

    report = send_task_digests(service.store, send=_never)

    assert report.failed == [
        {"app": "Payroll", "error": "smtp.host is set but smtp.from (the sender address) is not", "retryable": False, "tasks": 1}
    ]


def test_login_with_the_password_from_the_environment_and_it_is_never_stored(tmp_path, auth_mail_server):
    service = _service(tmp_path)
    _smtp(service, auth_mail_server.port, **{"smtp.user": "provtui", "smtp.password-env": PASSWORD_ENV})
    service.assign("Payroll", login="ada")
    _reconcile(service)

    report = send_task_digests(service.store)

    assert [s["app"] for s in report.sent] == ["Payroll"]
    assert auth_mail_server.logins == [(b"provtui", PASSWORD.encode())]
    assert PASSWORD.encode() not in auth_mail_server.messages[0]["raw"]
    assert PASSWORD not in orjson.dumps(service.audit()).decode()
    assert PASSWORD not in orjson.dumps(report.sent).decode()
    for path in (tmp_path / "store").rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
    assert service.config()["smtp.password-env"] == PASSWORD_ENV


def test_wrong_password_is_a_permanent_failure_that_does_not_show_it(tmp_path, auth_mail_server, monkeypatch):
    wrong = "wrong-Pa55word-xyz"
    monkeypatch.setenv(PASSWORD_ENV, wrong)
    service = _service(tmp_path)
    _smtp(service, auth_mail_server.port, **{"smtp.user": "provtui", "smtp.password-env": PASSWORD_ENV})
    service.assign("Payroll", login="ada")
    _reconcile(service)

    report = send_task_digests(service.store)

    [failure] = report.failed
    assert failure["retryable"] is False
    assert "refused the login as provtui: 535" in failure["error"]
    assert wrong not in failure["error"] and PASSWORD not in failure["error"]
    assert auth_mail_server.messages == []
    assert "notified" not in _tasks(service)[0]
    assert wrong not in orjson.dumps(service.audit()).decode()


def test_missing_password_variable_names_the_variable_and_connects_to_nothing(auth_mail_server, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV)
    settings = SmtpSettings(
        host="127.0.0.1", sender="provtui@example.com", port=auth_mail_server.port, user="provtui", password_env=PASSWORD_ENV
    )
    with pytest.raises(MailError) as caught:
        send_mail(settings, ["it@example.com"], "s", "b")
    assert PASSWORD_ENV in str(caught.value) and caught.value.retryable is False
    assert auth_mail_server.logins == []


def test_replies_4xx_are_retryable_5xx_are_not(mail_server):
    settings = SmtpSettings(host="127.0.0.1", sender="provtui@example.com", port=mail_server.port, timeout=5)
    mail_server.data_reply = "451 4.3.0 try again later"
    with pytest.raises(MailError) as caught:
        send_mail(settings, ["it@example.com"], "s", "b")
    assert caught.value.retryable is True and "451" in caught.value.message

    mail_server.data_reply = None
    mail_server.refuse["it@example.com"] = "550 5.1.1 no such user"
    with pytest.raises(MailError) as caught:
        send_mail(settings, ["it@example.com"], "s", "b")
    assert caught.value.retryable is False and "550 5.1.1 no such user" in caught.value.message
    assert mail_server.messages == []


def test_a_server_that_never_answers_times_out_retryably():
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never accepts: connect works, no greeting
        settings = SmtpSettings(host="127.0.0.1", sender="provtui@example.com", port=silent.getsockname()[1], timeout=0.3)
        with pytest.raises(MailError) as caught:
            send_mail(settings, ["it@example.com"], "s", "b")
    assert caught.value.retryable is True
    assert "timed out" in caught.value.message


def test_a_partly_refused_digest_counts_as_sent_and_says_who_was_refused(tmp_path, mail_server):
    mail_server.refuse["facilities@example.com"] = "550 5.1.1 no such user"
    service = _service(tmp_path)
    _smtp(service, mail_server.port)
    service.assign("Badges", login="ada")
    _reconcile(service)

    report = send_task_digests(service.store)

    assert report.sent[0]["refused"] == ["facilities@example.com"]
    assert mail_server.messages[0]["to"] == ["security@example.com"]
    assert _notify_events(service)[0]["after"]["refused"] == ["facilities@example.com"]
    assert _tasks(service)[0]["notified"]


def test_a_sender_busy_mailing_a_batch_has_it_to_itself(tmp_path, mail_server):
    """Two consoles on one store: the second finds the tasks claimed and sends nothing twice."""
    service = _service(tmp_path)
    _smtp(service, mail_server.port)
    service.assign("Payroll", login="ada")
    _reconcile(service)
    other = Service.open(tmp_path / "store", actor="admin")
    lock = threading.Lock()  # the send runs outside the guard: a nested call must not deadlock
    inner: list = []

    def send_while_another_runs(*args):
        inner.append(send_task_digests(other.store, guard=lock))
        return send_mail(*args)

    report = send_task_digests(service.store, guard=lock, send=send_while_another_runs)

    assert len(report.sent) == 1 and inner[0].sent == [] and inner[0].failed == []
    assert len(mail_server.messages) == 1
    other.refresh()
    assert send_task_digests(other.store).sent == []  # and once marked, for good


def test_an_app_with_nobody_to_notify_is_reported(tmp_path, mail_server):
    service = _service(tmp_path)
    _smtp(service, mail_server.port)
    service.update_app("Payroll", notify=[])
    service.assign("Payroll", login="ada")
    _reconcile(service)

    report = send_task_digests(service.store)

    assert report.no_recipients == ["Payroll"] and report.sent == [] and mail_server.messages == []
    assert "notified" not in _tasks(service)[0]


def test_every_reconcile_run_mails_the_tasks_it_opened(tmp_path, mail_server):
    """The engine sends the digest itself at the end of a run: `sync`, the worker and the console alike."""
    service = _service(tmp_path)
    _smtp(service, mail_server.port)
    service.assign("Payroll", login="ada")
    report = asyncio.run(build_engine(service).run_until_idle())
    assert report.ok and [s["app"] for s in report.digests.sent] == ["Payroll"]
    assert [m["subject"] for m in mail_server.messages] == ["provtui: 1 task for Payroll"]
    assert asyncio.run(build_engine(service).run_until_idle()).digests.sent == []  # nothing new: no second email


def test_a_run_whose_queue_stays_busy_still_mails_the_tasks_it_opened(tmp_path, mail_server, monkeypatch):
    """Regression (found by the soak): digests went out only when the queue emptied, so a worker kept busy
    by a stream of changes never mailed anyone."""
    from provtui.engine import reconciler as engine

    monkeypatch.setattr("provtui.engine.leases.CLAIM_BATCH", 1)  # one key a batch: the run has several batches
    monkeypatch.setattr(engine, "DIGEST_EVERY_SECONDS", 0)  # and mails after each
    service = _service(tmp_path)
    _smtp(service, mail_server.port)
    service.assign("Payroll", login="ada")
    service.assign("Payroll", login="bob")
    report = asyncio.run(build_engine(service).run_until_idle())
    assert report.ok and [len(s["tasks"]) for s in report.digests.sent] == [1, 1]  # each batch's task, as it opened
    assert [m["subject"] for m in mail_server.messages] == ["provtui: 1 task for Payroll"] * 2


def test_login_with_a_password_the_server_holds_as_a_secret(tmp_path, auth_mail_server, monkeypatch):
    from provtui.domain.errors import InvalidInput
    from provtui.store.vault import SecretVault

    monkeypatch.delenv(PASSWORD_ENV)  # the vault alone holds it
    opened = _service(tmp_path)
    vault = SecretVault(tmp_path / "store" / "secrets.json")
    service = Service(opened.store, "admin", directory=opened.directory, vault=vault)
    with pytest.raises(InvalidInput, match="holds no secret named 'mail-pw'"):
        service.set_config("smtp.password-secret", "mail-pw")
    service.set_secret("mail-pw", PASSWORD)
    _smtp(service, auth_mail_server.port, **{"smtp.user": "provtui", "smtp.password-secret": "mail-pw"})
    service.assign("Payroll", login="ada")
    _reconcile(service)

    assert send_task_digests(service.store).failed  # no vault to look in: refused, nothing sent
    assert auth_mail_server.logins == []
    report = send_task_digests(service.store, secrets=vault.lookup)

    assert [s["app"] for s in report.sent] == ["Payroll"] and not report.failed
    assert auth_mail_server.logins == [(b"provtui", PASSWORD.encode())]
    with pytest.raises(InvalidInput, match="smtp.password-secret"):
        service.delete_secret("mail-pw")
    for path in (tmp_path / "store").rglob("*"):
        if path.is_file():
            assert (PASSWORD.encode() in path.read_bytes()) == (path.name == "secrets.json"), path


def test_embedded_smtp_password_secret_is_refused(tmp_path):
    from provtui.domain.errors import InvalidInput

    service = _service(tmp_path)
    with pytest.raises(InvalidInput, match="held by a provtui server"):
        service.set_config("smtp.password-secret", "mail-pw")
