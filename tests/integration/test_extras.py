"""The extra, provtui[demo] (aiosmtpd, the tests' SMTP server): nothing but the demo and provtui/testing imports
it, and `provtui demo` without its SCIM servers says what to install.  (scim2-server is a dependency of
provtui's own since the inbound SCIM endpoint, #20.)"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

from provtui.cli.main import main

DEMO_ONLY = ("aiosmtpd",)

# Import every module of provtui but the demo and the test harness, then list what of the demo's extra got loaded.
PROBE = """
import importlib, json, pkgutil, sys
import provtui
for info in pkgutil.walk_packages(provtui.__path__, "provtui."):
    if info.name == "provtui.demo" or info.name.startswith("provtui.testing") or info.name == "provtui.__main__":
        continue
    importlib.import_module(info.name)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(sys.argv[1])))))
"""


def test_nothing_outside_the_demo_and_the_harness_imports_the_demo_extra():
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(DEMO_ONLY)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_the_demo_without_its_extra_says_what_to_install(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "scim2_server" else real(name, *a))
    assert main(["demo"]) == 2
    assert "pip install 'provtui[demo]'" in capsys.readouterr().err
