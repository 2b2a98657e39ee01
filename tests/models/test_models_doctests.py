"""The examples in the models modules (GateVPT, E2VPT, initial weights, hybrid ViT) and block_forward run and give the
documented output."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["gated_prompt_vit", "kv_prompt_vit", "initial_weights", "hybrid_vit"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"labelwise.models.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_block_forward_example():
    from labelwise.models import prompted_vit

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(prompted_vit.block_forward, "block_forward", globs=dict(vars(prompted_vit))):
        runner.run(test)
    assert runner.failures == 0 and runner.tries > 0
