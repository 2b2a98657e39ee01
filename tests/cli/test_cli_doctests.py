"""The docstring examples of the run/CLI modules run and are right."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["labelwise.config", "labelwise.config.yaml_io", "labelwise.config.overrides", "labelwise.config.schema",
           "labelwise.config.transform", "labelwise.config.loader", "labelwise.analysis.report", "labelwise.export", "labelwise.inference",
           "labelwise.run.build", "labelwise.run.checkpoints", "labelwise.run.formatting", "labelwise.cli",
           "labelwise.shipped_configs", "labelwise.analyze", "labelwise.errors"]


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
@pytest.mark.parametrize("name", MODULES)
def test_doctests(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} doctest failure(s) in {name}"
    assert result.attempted > 0
