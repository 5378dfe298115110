"""Names of a package imported on first use (PEP 562), one implementation for every package
that keeps heavy imports (torch, pandas, WeasyPrint, Dask) out of ``rcsa --help``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``where`` maps each lazy name to the module
    that defines it (a submodule name, or a full ``rcsa.`` module path). The value is cached
    in the package's namespace on first use."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        mod = where[name] if where[name].startswith("rcsa.") else f"{package}.{where[name]}"
        value = getattr(importlib.import_module(mod), name)
        vars(sys.modules[package])[name] = value
        return value

    return __getattr__
