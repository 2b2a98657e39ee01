"""A real tiny training run on MultiDigits-20 (shared by the report page tests)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """Run directory of a 1-epoch OFML run (resnet10t, 32 px) with a test split and tuned thresholds."""
    from labelwise.config import load_config
    from labelwise.run import train_from_config

    cfg = load_config({
        "name": "tiny-report",
        "data": {"name": "multidigits20", "image_size": 32,
                 "options": {"n_train": 96, "n_val": 48, "n_test": 64, "image_size": 32}},
        "model": {"name": "ofml", "backbone": "resnet10t", "pretrained": False},
        "trainer": {"accelerator": "cpu", "max_epochs": 1, "batch_size": 32, "progress": False,
                    "tensorboard": False, "tune_thresholds": True, "seed": 0},
    })
    run = tmp_path_factory.mktemp("tiny_report_run") / "run"
    train_from_config(cfg, output_dir=run)
    return run
