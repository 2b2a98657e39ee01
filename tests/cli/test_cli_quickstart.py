"""The README's main job, shrunk: `labelwise train --config quickstart` on MultiDigits-20."""

from __future__ import annotations

import csv
import json

import pytest

from labelwise.cli import main
from labelwise.config import load_config
from labelwise.shipped_configs import config_dir

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

QUICKSTART = config_dir() / "quickstart.yaml"
TINY = ["data.options.n_train=64", "data.options.n_val=32", "data.options.n_test=32", "trainer.max_epochs=1",
        "trainer.batch_size=32", "model.backbone=test_resnet", "trainer.progress=false"]


def test_quickstart_config_is_valid():
    cfg = load_config(QUICKSTART)
    assert cfg.data.name == "multidigits20" and cfg.model.name == "ofml" and cfg.data.image_size == 64
    assert cfg.trainer.accelerator == "cpu"


def test_quickstart_tiny_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    cache = tmp_path / "cache"
    assert main(["train", "--config", str(QUICKSTART), *TINY, f"data.root={cache}", "--output", str(run)]) == 0
    out = capsys.readouterr().out
    assert "test metrics" in out and "mAP" in out and str(run) in out
    for rel in ("config.yaml", "metrics.csv", "test_metrics.json", "checkpoints/best.safetensors", "checkpoints/best.json",
                "checkpoints/last.safetensors", "checkpoints/last.state.safetensors", "report/ap_per_class_val.png",
                "report/pr_curves_test.png", "report/learning_curves.png"):
        assert (run / rel).is_file(), rel
    resolved = load_config(run / "config.yaml")
    assert resolved.data.options["n_train"] == 64 and resolved.model.kwargs["backbone"] == "test_resnet"
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert len(rows) == 1 and 0.0 <= float(rows[0]["mAP"]) <= 1.0
    side = json.loads((run / "checkpoints" / "best.json").read_text())
    assert len(side["class_names"]) == 20
    test_metrics = json.loads((run / "test_metrics.json").read_text())
    capsys.readouterr()
    ev_json = tmp_path / "ev.json"
    assert main(["evaluate", "--checkpoint", str(run), "--split", "test", "--json", str(ev_json)]) == 0
    ev = json.loads(ev_json.read_text())
    assert {k: ev[k] for k in test_metrics} == test_metrics
