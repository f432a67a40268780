"""Outgoing mail over SMTP (stdlib smtplib): the manual apps' task digests.

Settings come from the store's config table (``smtp.host``, ``smtp.port``,
``smtp.from``, ``smtp.user``, ``smtp.password-env``, ``smtp.starttls``).  The
store holds the *name* of the environment variable with the password, never the
password: it is read from the environment at send time, used for the login, and
appears in no message, log line or exception.

Every failure is a :class:`MailError` saying whether trying again later may help
(connection refused, timeouts, dropped connections, 4xx replies) or not (5xx
replies, a refused login, a missing password variable, a TLS failure).
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

DEFAULT_TIMEOUT = 30.0  # seconds, for the connection and for each SMTP command


class MailError(Exception):
    """Mail could not be sent.  ``retryable``: a later attempt may succeed unchanged."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.message = message
        self.retryable = retryable

    def __str__(self) -> str:
        return self.message


_NO_PASSWORD = "smtp.user is set but neither smtp.password-secret nor smtp.password-env (what holds its password) is"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    sender: str
    port: int = 25
    user: str | None = None
    password_env: str | None = None  # the NAME of the environment variable holding the password (embedded)
    starttls: bool = False
    timeout: float = DEFAULT_TIMEOUT
    password_secret: str | None = None  # or the name of a server's secret holding it
    secret_value: str | None = field(default=None, repr=False)  # that secret's value, looked up when the settings were read

    @classmethod
    def from_config(cls, config: Mapping[str, Any], secrets: Callable[[str], str | None] | None = None) -> SmtpSettings | None:
        """Settings from the store's config (``Service.config()``: key -> value); None if smtp.host is unset.

        ``secrets`` looks up a server's secret by name (``smtp.password-secret``).  Raises MailError (not
        retryable) when smtp.host is set but the rest cannot work.
        """
        host = str(config.get("smtp.host") or "").strip()
        if not host:
            return None
        sender = str(config.get("smtp.from") or "").strip()
        if not sender:
            raise MailError("smtp.host is set but smtp.from (the sender address) is not", retryable=False)
        user = str(config.get("smtp.user") or "").strip() or None
        password_env = str(config.get("smtp.password-env") or "").strip() or None
        password_secret = str(config.get("smtp.password-secret") or "").strip() or None
        if user and not password_env and not password_secret:
            raise MailError(_NO_PASSWORD, retryable=False)
        secret_value = None
        if password_secret:
            secret_value = secrets(password_secret) if secrets is not None else None
            if secret_value is None:
                raise MailError(f"secret {password_secret} (smtp.password-secret) is not held by this server", retryable=False)
        starttls = bool(config.get("smtp.starttls") or False)
        if user and not starttls and host not in ("127.0.0.1", "::1", "localhost"):
            # Never send a password in clear to another host.
            raise MailError("smtp.user is set for a remote host but smtp.starttls is off: set smtp.starttls true", retryable=False)
        try:
            port = int(config.get("smtp.port") or 25)
        except (TypeError, ValueError):
            raise MailError(f"smtp.port {config.get('smtp.port')!r} is not a port number", retryable=False) from None
        return cls(
            host=host,
            sender=sender,
            port=port,
            user=user,
            password_env=password_env,
            starttls=starttls,
            password_secret=password_secret,
            secret_value=secret_value,
        )

    def password(self) -> str | None:
        """The login password: the server's secret, else read now from the environment; None when no login is configured."""
        if not self.user:
            return None
        if self.password_secret:
            if not self.secret_value:
                raise MailError(f"secret {self.password_secret} (the SMTP password for {self.user}) is empty", retryable=False)
            return self.secret_value
        if not self.password_env:
            raise MailError(_NO_PASSWORD, retryable=False)
        password = os.environ.get(self.password_env)
        if not password:
            raise MailError(f"environment variable {self.password_env} (the SMTP password for {self.user}) is not set", retryable=False)
        return password


def build_message(settings: SmtpSettings, to: list[str], subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = settings.sender.rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    # quoted-printable keeps non-ASCII text (names, the dash) 7-bit clean for any relay.
    message.set_content(body, charset="utf-8", cte="quoted-printable")
    return message


def send_mail(settings: SmtpSettings, to: list[str], subject: str, body: str) -> dict[str, tuple[int, str]]:
    """Send one message to ``to``; raises MailError.

    Returns the recipients the server refused while accepting the others
    (usually empty); if it refuses them all, that is a MailError.
    """
    recipients = list(dict.fromkeys(addr.strip() for addr in to if addr and addr.strip()))
    if not recipients:
        raise MailError("no recipients", retryable=False)
    password = settings.password()  # before connecting: a missing variable is a setup error, not a network one
    where = f"{settings.host}:{settings.port}"
    try:
        message = build_message(settings, recipients, subject, body)
    except (ValueError, TypeError) as error:  # e.g. a header with a line break
        raise MailError(f"cannot build the message: {error}", retryable=False) from None
    try:
        refused = _deliver(settings, password, message, recipients)
    except MailError as error:
        raise _scrubbed(error, password) from None
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        details = "; ".join(f"{addr}: {_reply(code, text)}" for addr, (code, text) in error.recipients.items())
        raise _scrubbed(
            MailError(
                f"SMTP server {where} refused every recipient ({details})", retryable=bool(codes) and all(_transient(c) for c in codes)
            ),
            password,
        ) from None
    except smtplib.SMTPResponseException as error:  # sender refused, data refused, any other reply
        raise _scrubbed(
            MailError(f"SMTP server {where} answered {_reply(error.smtp_code, error.smtp_error)}", retryable=_transient(error.smtp_code)),
            password,
        ) from None
    except smtplib.SMTPServerDisconnected as error:
        raise _scrubbed(MailError(f"SMTP server {where} closed the connection: {error}", retryable=True), password) from None
    except smtplib.SMTPNotSupportedError as error:  # e.g. no STARTTLS or no AUTH offered
        raise _scrubbed(MailError(f"SMTP server {where} does not support what is configured: {error}", retryable=False), password) from None
    except smtplib.SMTPException as error:  # e.g. no usable AUTH mechanism
        raise _scrubbed(MailError(f"SMTP with {where} failed: {error}", retryable=False), password) from None
    except ssl.SSLError as error:  # before OSError: it is one; a certificate problem will not fix itself
        raise _scrubbed(MailError(f"TLS with SMTP server {where} failed: {error}", retryable=False), password) from None
    except TimeoutError:  # socket.timeout is TimeoutError
        raise MailError(f"SMTP server {where} timed out after {settings.timeout:g}s", retryable=True) from None
    except ConnectionRefusedError:
        raise MailError(f"SMTP server {where} refused the connection", retryable=True) from None
    except OSError as error:  # unreachable, reset, name not resolved (yet)
        raise _scrubbed(MailError(f"cannot reach SMTP server {where}: {error}", retryable=True), password) from None
    return {addr: (code, _text(text)) for addr, (code, text) in (refused or {}).items()}


def _deliver(settings: SmtpSettings, password: str | None, message: EmailMessage, recipients: list[str]) -> dict:
    smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        smtp.ehlo()
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.user:
            try:
                smtp.login(settings.user, password or "")
            except smtplib.SMTPAuthenticationError as error:
                raise MailError(
                    f"SMTP server {settings.host}:{settings.port} refused the login as {settings.user}: "
                    f"{_reply(error.smtp_code, error.smtp_error)}",
                    retryable=_transient(error.smtp_code),
                ) from None
        return smtp.send_message(message, from_addr=settings.sender, to_addrs=recipients)
    finally:
        # Not `with SMTP(...)`: its exit raises when QUIT is answered oddly, which after a
        # delivered message would make us report a failure and send the digest twice.
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def _transient(code: int | None) -> bool:
    return code is not None and 400 <= code < 500


def _text(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)


def _reply(code: int | None, text: bytes | str) -> str:
    return f"{code} {_text(text)}".strip()


def _scrubbed(error: MailError, password: str | None) -> MailError:
    """Belt and braces: a server that echoes what it was sent must not put the password in our messages."""
    if password and password in error.message:
        return MailError(error.message.replace(password, "********"), error.retryable)
    return error
