"""The configs shipped inside the package: `labelwise configs list|show|copy` and `--config NAME`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labelwise.cli import main
from labelwise.config import load_config
from labelwise.continual.config import load_continual_config
from labelwise.continual.online.cli import load_online_config
from labelwise.shipped_configs import config_dir, config_names, config_path, resolve_config

ROOT = Path(__file__).resolve().parents[2]


def test_configs_live_in_the_package_and_the_wheel_declares_them():
    assert config_dir() == ROOT / "src" / "labelwise" / "configs"
    assert not (ROOT / "configs").exists(), "configs/ moved into src/labelwise/configs"
    names = config_names()
    assert {"quickstart", "dlfl/multidigits20_ofml", "continual/voc_b4c2", "online/multidigits"} <= set(names)
    assert len(names) == len(list(config_dir().rglob("*.yaml")))
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"configs/**/*.yaml"' in pyproject and '"configs/*.md"' in pyproject


def test_list_and_show(capsys):
    assert main(["configs", "list"]) == 0
    listed = capsys.readouterr().out.split()
    assert listed == config_names()
    assert main(["configs", "list", "--long"]) == 0
    assert re.search(r"^quickstart +Quickstart: the OFML baseline", capsys.readouterr().out, re.M)
    assert main(["configs", "show", "dlfl/multidigits20_ofml"]) == 0
    assert capsys.readouterr().out == config_path("dlfl/multidigits20_ofml").read_text()


def test_copy_refuses_to_overwrite_without_force(tmp_path, capsys):
    dest = tmp_path / "mine.yaml"
    assert main(["configs", "copy", "quickstart", str(dest)]) == 0
    assert dest.read_text() == config_path("quickstart").read_text()
    dest.write_text("edited: true\n")
    assert main(["configs", "copy", "quickstart", str(dest)]) == 2
    assert "exists" in capsys.readouterr().err and dest.read_text() == "edited: true\n"
    assert main(["configs", "copy", "quickstart", str(dest), "--force"]) == 0
    assert dest.read_text() == config_path("quickstart").read_text()
    assert main(["configs", "copy", "two_stage/multidigits20", str(tmp_path)]) == 0
    assert (tmp_path / "multidigits20.yaml").is_file()


def test_config_names_resolve_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config("quickstart", check=False).name == "quickstart"
    assert load_config("dlfl/multidigits20_ofml", check=False).model.name == "ofml_cosine"
    for spelling in ("configs/quickstart.yaml", "quickstart.yaml", "quickstart"):
        assert resolve_config(spelling) == config_dir() / "quickstart.yaml"
    assert resolve_config("multidigits20_ofml") == config_dir() / "dlfl" / "multidigits20_ofml.yaml"
    assert load_continual_config("continual/multidigits20_b4c2", check=False).continual.scenario
    assert load_online_config("online/multidigits").sequence.name == "multidigits"


def test_an_explicit_path_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart").write_text("name: mine\ndata: {name: multidigits20}\nmodel: {name: ofml}\n")
    assert load_config("quickstart", check=False).name == "mine"


def test_unknown_name_lists_close_matches(capsys):
    with pytest.raises(FileNotFoundError, match=r"did you mean: .*dlfl/multidigits20_ofml"):
        resolve_config("dlfl/multidigit20_ofml")
    with pytest.raises(FileNotFoundError, match="ambiguous: give one of dlfl/coco_r101_448, two_stage/coco_r101_448"):
        resolve_config("coco_r101_448")
    assert main(["train", "--config", "quikstart"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("labelwise: error: config file not found: quikstart; not a shipped config name")
    assert "did you mean: quickstart?" in err


def test_ci_runs_the_wheel_check():
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".ci/wheel_check" in ci and (ROOT / ".ci" / "wheel_check").stat().st_mode & 0o111
    check = (ROOT / ".ci" / "wheel_check").read_text()
    assert "pip wheel" in check and "labelwise --help" in check and "--config quickstart" in check


def test_jpeg_recipes_use_the_machine():
    import yaml

    checked = 0
    for name in config_names():
        raw = yaml.safe_load(config_path(name).read_text())
        data = str((raw.get("data") or {}).get("name", ""))
        if data.startswith(("coco", "voc", "nuswide")):
            assert raw["trainer"].get("num_workers") == "auto", name
            assert raw["trainer"].get("precision", "auto") == "auto", name
            checked += 1
    assert checked >= 15
