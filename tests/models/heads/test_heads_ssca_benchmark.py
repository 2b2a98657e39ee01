"""benchmarks/dlfl.py pieces: one SSCA training through the Trainer on tiny images, and the table."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from labelwise.data import ArrayDataset

_PATH = Path(__file__).resolve().parents[3] / "benchmarks" / "dlfl.py"
_spec = importlib.util.spec_from_file_location("dlfl_benchmark", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _images(n, seed):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 3)) < 0.4).astype(np.uint8)
    x = rng.normal(0, 0.1, (n, 3, 32, 32)).astype(np.float32)
    for c in range(3):  # each label brightens its own quadrant
        x[y[:, c] == 1, :, (c // 2) * 16 : (c // 2) * 16 + 16, (c % 2) * 16 : (c % 2) * 16 + 16] += 1.0
    return ArrayDataset(x, y, class_names=["a", "b", "c"])


def test_train_one_ssca_and_table():
    p = bench.profile(SimpleNamespace(regime="scratch", quick=True, n_train=None, n_val=None, n_test=None,
                                  epochs=2, seeds=[0], device="cpu", workers=0))
    assert p["epochs"] == 2 and p["seeds"] == [0] and p["n_train"] == 96
    from labelwise.config import load_config

    raw = {"data": {"name": "csv"}, "model": {"name": "ssca", "backbone": "test_resnet", "num_modules": 3,
                                              "embed_dim": 16, "scale": 30.0},
           "trainer": {"accelerator": "cpu", "max_epochs": 2, "batch_size": 16, "optimizer": "adamw", "lr": 3e-3,
                       "progress": False, "save_checkpoints": False, "tensorboard": False, "report": False}}
    cfg = load_config(raw)
    data = SimpleNamespace(train=_images(64, 0), val=_images(16, 1), test=_images(32, 2), class_names=["a", "b", "c"])
    row, angles, model = bench.train_one(cfg, data, p)
    assert set(row) == {"mAP", "CF1", "OF1", "median_positive", "median_negative", "best_epoch"}
    assert 0 <= row["mAP"] <= 100 and 0 <= row["median_positive"] <= 180
    assert angles.angles.shape == (32, 3) and model.head.num_modules == 3
    table = bench.format_table("toy", {"OFML": [row], "SSCA S=3": [row]}, 3, {"OFML": 1.0, "SSCA S=3": 2.0})
    assert "| SSCA S=3 |" in table and "mAP relative to OFML: SSCA S=3 +0.00" in table
