"""A console attached to a server imports no store, service, engine or parser: its first frame waits on nothing
it does not use (issue #16).  And every name a lazy package exports resolves to the object its module defines."""

import importlib
import subprocess
import sys

import pytest

LAZY_PACKAGES = ["provtui.store", "provtui.service", "provtui.domain.expressions"]
NOT_FOR_A_REMOTE_CONSOLE = [
    "provtui.service.facade",
    "provtui.store.journal_store",
    "provtui.model.directory",
    "provtui.engine",
    "provtui.connectors",
    "lark",
    "tinydb",
    "filelock",
    "httpx",  # the client speaks HTTP with http.client (provtui/client/unix_http.py)
]


def test_a_remote_console_imports_only_the_faces_and_the_client():
    code = (
        "import sys, provtui.cli.main, provtui.tui.app, provtui.client.remote, provtui.protocol.wire\n"
        f"print(','.join(m for m in {NOT_FOR_A_REMOTE_CONSOLE!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def test_an_embedded_store_imports_no_postgresql_driver(tmp_path):
    """psycopg is imported only for a postgresql:// store: an embedded console or command never pays for it."""
    code = (
        "import sys\nfrom provtui.service import Service\n"
        f"s = Service.init({str(tmp_path / 'store')!r}, actor='admin'); s.create_user('ada', 'ada@example.com', 'A', 'L')\n"
        "s.user_history('ada'); print(','.join(m for m in ('psycopg', 'provtui.store.postgres_schema') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_exported_name_resolves_to_its_module_s_object(package):
    module = importlib.import_module(package)
    assert module.__all__, package
    for name in module.__all__:
        value = getattr(module, name)
        source = next(m for m, names in module._WHERE.items() if name in names)
        assert value is getattr(importlib.import_module(source), name)


def test_an_unknown_name_is_an_attribute_error():
    import provtui.service

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        provtui.service.Nope  # noqa: B018
