"""The service's part for store-wide settings."""

from __future__ import annotations

from typing import Any

from provtui.domain import numbers
from provtui.domain.errors import InvalidInput
from provtui.domain.roles import Action
from provtui.domain.secrets import validate_env_name
from provtui.domain.text import MAX_EMAIL, MAX_ENV_NAME, MAX_NAME, check_text
from provtui.model.schema import CONFIG, Reader
from provtui.service.part import Part
from provtui.service.secrets import held_secret
from provtui.service.validation import validate_name
from provtui.store.vault import SecretVault

DEFAULT_THRESHOLD = 0.2  # Okta's: a change that deprovisions more than 20% of the org (or an app's people) is held


def setting(reader: Reader, key: str, default: Any) -> Any:
    """A setting's value (``provtui config set KEY VALUE``) as ``reader`` holds it, of ``default``'s type; ``default``
    where none is set."""
    entry = reader.get(CONFIG, key)
    return type(default)(entry["value"]) if entry else default


def safeguard_threshold(reader: Reader) -> float:
    """``safeguard.threshold``: the share of people a change may deprovision before it is held."""
    return float(setting(reader, "safeguard.threshold", DEFAULT_THRESHOLD))


CONFIG_KEYS = {
    "password.min-length": int,
    "password.classes": int,
    "password.blocklist": list,
    "safeguard.threshold": float,
    "scim.safeguard.minimum": int,
    "scim.safeguard.window": int,
    "scim.rate": int,
    "live.safeguard.window": int,
    "smtp.host": str,
    "smtp.port": int,
    "smtp.from": str,
    "smtp.user": str,
    "smtp.password-env": str,
    "smtp.password-secret": str,
    "smtp.starttls": bool,
}
_CONFIG_RANGES = {
    "password.min-length": numbers.PASSWORD_MIN_LENGTH,
    "password.classes": numbers.PASSWORD_CLASSES,
    "safeguard.threshold": numbers.THRESHOLD,
    "scim.safeguard.minimum": numbers.SCIM_SAFEGUARD_MINIMUM,
    "scim.safeguard.window": numbers.SCIM_SAFEGUARD_WINDOW,
    "scim.rate": numbers.SCIM_RATE,
    "live.safeguard.window": numbers.LIVE_SAFEGUARD_WINDOW,
    "smtp.port": numbers.PORT,
}
_CONFIG_LENGTHS = {
    "password.blocklist": 4096,
    "smtp.host": 253,
    "smtp.from": MAX_EMAIL,
    "smtp.user": 256,
    "smtp.password-env": MAX_ENV_NAME,
    "smtp.password-secret": MAX_NAME,
}


class Settings(Part):
    """Store-wide settings."""

    def __init__(self, *parts: Any, vault: SecretVault | None = None):
        super().__init__(*parts)
        self.vault = vault  # a server's secrets: smtp.password-secret must name one of them

    def set_config(self, key: str, value: str) -> dict[str, Any]:
        """Store-wide settings such as smtp.host; secrets are referenced (smtp.password-secret: a server's secret;
        smtp.password-env, embedded: an environment variable), never stored."""
        entry = validate_config(key, value)
        with self.changes(Action.CONFIGURE) as tx:
            if key == "smtp.password-secret":  # once authorised: who may not configure learns no secret's name
                held_secret(self.vault, key, value)
            before = tx.get(CONFIG, key)
            tx.put(CONFIG, key, entry)
            tx.audit("config.set", key, before and before["value"], entry["value"])
        return entry

    def config(self) -> dict[str, Any]:
        self.access.read()
        return {key: entry["value"] for key, entry in sorted(self.store.all(CONFIG).items())}


def validate_config(key: str, value: str) -> dict[str, Any]:
    if key not in CONFIG_KEYS:
        raise InvalidInput("KEY", f"unknown setting {key!r} (known: {', '.join(sorted(CONFIG_KEYS))})")
    kind = CONFIG_KEYS[key]
    try:
        check_text(key, value, _CONFIG_LENGTHS.get(key, MAX_NAME))
        if key in _CONFIG_RANGES:
            try:
                parsed: Any = _CONFIG_RANGES[key].check(key, _CONFIG_RANGES[key].parse(value))
            except ValueError as error:
                raise InvalidInput(key, str(error)) from None
        elif kind is list:  # a file of words, one a line (a regular file, at most 16 MB): read now, kept lower-cased
            from provtui.input_files import MAX_BLOCKLIST, read_input

            lines = read_input(value, key, MAX_BLOCKLIST).decode("utf-8", errors="replace").splitlines()
            parsed = sorted({line.strip().lower() for line in lines if line.strip() and not line.startswith("#")})
        elif kind is bool:
            if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                raise ValueError(value)
            parsed = value.lower() in ("true", "yes", "1")
        else:
            parsed = value
    except ValueError:
        raise InvalidInput(key, f"{value!r} is not a valid {kind.__name__}") from None
    if key == "smtp.password-env":
        validate_env_name(key, value, "the SMTP password")
    if key == "smtp.password-secret":
        validate_name(key, value)
    return {"key": key, "value": parsed}
