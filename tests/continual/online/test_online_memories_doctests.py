"""The examples in the stream memories' docstrings run and give the documented output."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["memory", "memory_kinds", "gss", "exstream", "ocdm"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"labelwise.continual.online.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
