"""Lazy package exports: a package names what it offers, and each name's module is imported when first used.

A console attached to a server needs the service's error types, not the service; importing a package's
``__init__`` must not import everything under it (PEP 562).  The package keeps its imports under
``TYPE_CHECKING`` for the type checker and hands ``exports`` the same names at run time.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, where: Mapping[str, tuple[str, ...]]) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``: ``where`` maps each submodule to the names it gives the package."""
    module_of = {name: module for module, names in where.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next lookup is an ordinary attribute
        return value

    return __getattr__


def names(where: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Every name ``where`` exports: the package's ``__all__``."""
    return sorted(name for module_names in where.values() for name in module_names)
