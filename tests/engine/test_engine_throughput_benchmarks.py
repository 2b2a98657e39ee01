"""benchmarks/input_pipeline.py and benchmarks/gpu_throughput.py run end to end on CPU at a tiny size."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name):
    if str(BENCH) not in sys.path:  # imported by name: the fixture writer's process pool pickles its functions
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def test_input_pipeline_fixture_and_both_loaders(tmp_path, capsys):
    bench = _load("input_pipeline")
    out = tmp_path / "input_pipeline.json"
    fixture = tmp_path / "fixture"
    assert bench.main(["--quick", "--images", "40", "--image-size", "64", "--batch-size", "8", "--workers", "0,1",
                       "--fixture", str(fixture), "--output", str(out)]) == 0
    ann = json.loads((fixture / "annotations" / "instances_train2014.json").read_text())
    assert len(ann["images"]) == 40 and len(list((fixture / "train2014").glob("*.jpg"))) == 40
    res = json.loads(out.read_text())
    assert res["benchmark"] == "input_pipeline" and res["regime"] == "scratch"
    assert {(r["method"], r["workers"]) for r in res["rows"]} == {(m, w) for m in ("labelwise", "bare") for w in (0, 1)}
    assert all(r["images_per_s"] > 0 for r in res["rows"])
    assert "| workers | labelwise | bare torchvision | labelwise / bare |" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_gpu_throughput_runs_tiny_on_cpu(tmp_path, capsys):
    bench = _load("gpu_throughput")
    out = tmp_path / "gpu.json"
    assert bench.main(["--tiny", "--device", "cpu", "--steps", "2", "--warmup", "1", "--images", "24",
                       "--num-workers", "1", "--fixture", str(tmp_path / "fixture"), "--output", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["benchmark"] == "gpu_throughput" and not res["skipped"]
    got = {(r["model"], r["phase"], r["method"]) for r in res["rows"]}
    assert got == {(m, p, k) for m in ("test_resnet@64", "test_vit@64") for p in ("synthetic", "loader")
                   for k in ("labelwise", "bare")}
    assert all(r["images_per_s"] > 0 for r in res["rows"])
    assert "| model | input | batch | labelwise | bare timm + PyTorch | labelwise / bare |" in capsys.readouterr().out
