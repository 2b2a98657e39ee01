"""The examples of the data modules that other layers lean on run and give the documented output."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["labelwise.data.label_groups", "labelwise.data.dataset_kind", "labelwise.data.formats.image_list"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_label_groups_is_one_class_under_both_names():
    from labelwise.analysis.grouping import LabelGroups as from_analysis
    from labelwise.data.label_groups import LabelGroups

    assert from_analysis is LabelGroups
