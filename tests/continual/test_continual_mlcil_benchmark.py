"""benchmarks/mlcil.py: KRT's pseudo-label cardinality of every scenario is its training split's labels per image."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import yaml

from labelwise.data.multidigits import generate_multidigits
from labelwise.shipped_configs import config_path

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "mlcil.py"
_spec = importlib.util.spec_from_file_location("mlcil_benchmark", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

# the labels are drawn before the digits are placed and rendered, so a small image size gives the same targets
IMAGE_SIZE = 24


def test_labels_do_not_depend_on_the_image_size():
    for variant in ("multidigits20", "multidigits80"):
        small = generate_multidigits(variant, "train", n_train=40, image_size=IMAGE_SIZE)["targets"]
        full = generate_multidigits(variant, "train", n_train=40, image_size=64)["targets"]
        np.testing.assert_array_equal(small, full)


def test_every_scenario_has_a_krt_cardinality():
    assert set(bench.KRT_CARDINALITY) == set(bench.SCENARIOS)


@pytest.mark.parametrize("scenario", sorted(bench.SCENARIOS))
def test_krt_cardinality_is_the_training_split_labels_per_image(scenario):
    cfg = yaml.safe_load(config_path(f"continual/{bench.SCENARIOS[scenario]}").read_text())
    data = cfg["data"]
    options = {k: v for k, v in data.get("options", {}).items() if k != "image_size"}
    targets = generate_multidigits(data["name"], "train", **options, image_size=IMAGE_SIZE)["targets"]
    cardinality = float(targets.sum(axis=1).mean())
    assert bench.KRT_CARDINALITY[scenario] == round(cardinality, 2), (scenario, cardinality)
