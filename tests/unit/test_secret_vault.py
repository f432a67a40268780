"""The server's secrets file (provtui.store.vault): its user's alone, replaced whole, values never listed."""

from __future__ import annotations

import os

import pytest

from provtui.store.vault import SecretVault, VaultError


def test_a_secret_is_kept_0600_and_listed_without_its_value(tmp_path):
    vault = SecretVault(tmp_path / "secrets.json")
    vault.set("slack", "xoxb-1\nline two", by="alice", at="2026-12-02T10:00:00Z")
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600
    assert vault.entries() == [{"name": "slack", "set_by": "alice", "set_at": "2026-12-02T10:00:00Z"}]
    again = SecretVault(tmp_path / "secrets.json")  # as the server finds it after a restart
    assert again.lookup("slack") == "xoxb-1\nline two" and "slack" in again and again.lookup("nope") is None
    assert again.delete("slack") and not again.delete("slack") and SecretVault(tmp_path / "secrets.json").entries() == []
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.json"]  # no temporary file left behind


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_secrets_file_others_may_read_is_refused(tmp_path, mode):
    SecretVault(tmp_path / "secrets.json").set("a", "b", by="x", at="t")
    os.chmod(tmp_path / "secrets.json", mode)
    with pytest.raises(VaultError, match="may be read by others"):
        SecretVault(tmp_path / "secrets.json")


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'{"a": {"novalue": 1}}'])
def test_a_file_this_did_not_write_is_refused(tmp_path, content):
    path = tmp_path / "secrets.json"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(VaultError, match="not a secrets file"):
        SecretVault(path)


def test_a_link_where_the_file_belongs_is_refused(tmp_path):
    (tmp_path / "elsewhere").write_text("{}")
    (tmp_path / "secrets.json").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(VaultError):
        SecretVault(tmp_path / "secrets.json")
