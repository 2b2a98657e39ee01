"""labelwise pretrain: the quick recipes run end to end and write weights + a card that load by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labelwise.cli import main
from labelwise.models import Backbone
from labelwise.models.shipped import resolve_shipped, sha256_file
from labelwise.pretrain import load_recipe

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("recipe", ["md_resnet10t.yaml", pytest.param("md_vit_tiny.yaml", marks=pytest.mark.slow)])
def test_quick_recipe_runs_and_writes_a_card(recipe, tmp_path, monkeypatch):
    monkeypatch.setenv("LABELWISE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    status = main(["pretrain", "--config", str(ROOT / "src" / "labelwise" / "configs" / "pretrain" / recipe), "--quick", "-o", str(out)])
    assert status == 0
    name = load_recipe(ROOT / "src" / "labelwise" / "configs" / "pretrain" / recipe)["name"]
    card = json.loads((out / f"{name}.json").read_text())
    assert card["sha256"] == sha256_file(out / f"{name}.safetensors")
    assert card["quick"] is True and card["data"]["name"] == "multidigits40"
    assert 0.0 <= card["probe"]["mAP"] <= 100.0 and card["probe"]["dataset"] == "multidigits20"
    assert (out / f"{name}.md").read_text().startswith(f"# {name}")
    stem = card["architecture"]["backbone_kwargs"].get("hybrid_stem")
    if stem is not None:  # the card holds the hybrid's shapes only: the file has the stem, no stem weights needed
        assert set(stem) == {"backbone", "backbone_kwargs"} and "channels" in stem["backbone_kwargs"]
    resolved = resolve_shipped(name, out)  # the written pair is a valid registry entry
    body = Backbone(resolved.backbone, weights=resolved.path, **resolved.backbone_kwargs)
    assert not body.load_result.missing


def test_recipe_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\narchitecture: {backbone: resnet10t}\nrun: {}\nprobe: {}\nextra: 1\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: .*extra: unknown key"):
        load_recipe(bad)
    assert main(["pretrain", "--config", str(tmp_path / "missing.yaml")]) == 2
