"""The examples in the engine's docstrings run and give the documented output."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch

MODULES = ["callbacks", "checkpoint", "config", "divergence", "ema", "loading", "logging", "optim", "predictions", "run_dir",
           "run_lock", "samplers",
           "trainer"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    flag = torch.are_deterministic_algorithms_enabled()
    try:
        module = importlib.import_module(f"labelwise.engine.{name}")
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    finally:
        torch.use_deterministic_algorithms(flag)
    assert result.failed == 0
    assert result.attempted > 0
