"""``labelwise``'s public face: every exported name resolves, lazily."""

from __future__ import annotations

import doctest
import subprocess
import sys

import pytest

import labelwise


@pytest.mark.parametrize("name", labelwise.__all__)
def test_every_exported_name_resolves(name):
    value = getattr(labelwise, name)
    assert value is not None
    if name != "__version__":
        assert value is getattr(__import__(labelwise._EXPORTS[name], fromlist=[name]), name)


def test_all_and_dir_list_the_exports():
    assert labelwise.__all__ == ["__version__", *labelwise._EXPORTS]
    assert set(labelwise.__all__) <= set(dir(labelwise))
    for name in ("create_model", "create_loss", "load_dataset", "Trainer", "TrainerConfig", "multilabel_report",
                 "mulan_report", "load_config", "train_from_config", "Evaluator"):
        assert name in labelwise.__all__


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'create_modle'"):
        labelwise.create_modle  # noqa: B018


def test_import_labelwise_is_cheap():
    code = "import sys, labelwise; print(sorted(m for m in ('torch', 'timm', 'lightning') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_doctests():
    assert doctest.testmod(labelwise, optionflags=doctest.ELLIPSIS).failed == 0


def test_version_matches_the_package_metadata():
    import tomllib
    from pathlib import Path

    from labelwise._version import __version__

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    assert labelwise.__version__ == __version__ == project["version"]
