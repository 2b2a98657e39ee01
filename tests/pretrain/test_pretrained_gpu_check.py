"""benchmarks/pretrained_gpu_check.py at its CPU smoke-test size: every phase runs and the report is written."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.slow
def test_gpu_check_tiny_runs_every_phase(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELWISE_CACHE", str(tmp_path / "cache"))
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("gpu_check", BENCH / "pretrained_gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    # the script's ResNet-50 is replaced by a ResNet-10-T here to keep the test short; --tiny keeps the phases
    assert module.main(["--tiny", "--backbone", "resnet10t", "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert {"data_s", "pretrain_s", "probe_s", "finetune_pretrained_s"} <= set(report["phases"])
    assert 0 <= report["linear_probe"]["mAP"] <= 100 and 0 <= report["finetune_pretrained"]["mAP"] <= 100
    assert report["pretrain"]["images"] == 64 and (tmp_path / "out" / "md-resnet10t.safetensors").is_file()
