"""The worked examples in gdmcd_core's docstrings are true: every doctest in the package runs."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import gdmcd_core

MODULES = sorted(m.name for m in pkgutil.walk_packages(gdmcd_core.__path__, "gdmcd_core."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples fail in {name}"


def test_the_package_has_docstring_examples() -> None:
    attempted = sum(doctest.testmod(importlib.import_module(n), verbose=False).attempted for n in MODULES)
    assert attempted >= 20
