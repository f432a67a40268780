"""The domain is pure: every module under provtui/domain, imported alone, pulls in no I/O library
and nothing of provtui outside the domain (found by walking the package: a new module is covered)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import provtui.domain

# I/O libraries: the console, the store, HTTP, LDAP, mail and sockets, file locks.
FORBIDDEN_LIBRARIES = ("textual", "tinydb", "httpx", "ldap3", "smtplib", "aiosmtpd", "socket", "filelock")
# The shell around the domain, named so a failure says which; any provtui module outside the domain is refused too.
FORBIDDEN_PROVTUI = ("provtui.store", "provtui.service", "provtui.connectors", "provtui.engine", "provtui.tui", "provtui.cli")


def domain_modules() -> list[str]:
    names = ["provtui.domain"]
    names += [m.name for m in pkgutil.walk_packages(provtui.domain.__path__, "provtui.domain.")]
    return sorted(names)


MODULES = domain_modules()

# provtui.lazy (a package's lazy exports: importlib and nothing else) is the one module outside the domain it may use.
PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
libraries, shell = json.loads(sys.argv[2]), json.loads(sys.argv[3])
def under(name, prefix):
    return name == prefix or name.startswith(prefix + ".")
bad = sorted({m for m in sys.modules for p in libraries + shell if under(m, p)}
             | {m for m in sys.modules if under(m, "provtui") and m not in ("provtui", "provtui.lazy") and not under(m, "provtui.domain")})
print(json.dumps(bad))
"""


def test_the_walk_finds_the_domain_modules():
    for name in (
        "provtui.domain.lifecycle",
        "provtui.domain.expressions",
        "provtui.domain.expressions.compiler",
        "provtui.domain.hr_import",
        "provtui.domain.import_plan",
    ):
        assert name in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_domain_module_is_pure(module: str):
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module, json.dumps(FORBIDDEN_LIBRARIES), json.dumps(FORBIDDEN_PROVTUI)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [], f"importing {module} pulls in {done.stdout.strip()}"
