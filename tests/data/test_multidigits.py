"""MultiDigits: determinism, disjoint source pools, label statistics, cache round trip, option validation."""

import warnings

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from labelwise.data import load_dataset
from labelwise.data.multidigits import (
    GENERATOR_VERSION,
    PALETTES,
    MultiDigitsDataset,
    default_cache_dir,
    generate_multidigits,
    load_multidigits,
    source_pools,
)
from labelwise.data.stats import conditional_probabilities, label_statistics

SMALL = {"n_train": 400, "n_val": 100, "n_test": 300, "image_size": 48}


def _load(name, split, tmp_path=None, **kw):
    opts = {**SMALL, **kw}
    if tmp_path is None:
        opts.setdefault("cache", False)
    return load_dataset(name, root=None if tmp_path is None else str(tmp_path), split=split, **opts)


@pytest.mark.parametrize("name, colors", [("multidigits20", 2), ("multidigits80", 8)])
def test_shapes_dtypes_and_class_names(name, colors):
    ds = _load(name, "train")
    assert isinstance(ds, MultiDigitsDataset)
    assert ds.inputs.dtype == torch.uint8 and tuple(ds.inputs.shape) == (400, 3, 48, 48)
    assert ds.targets.dtype == np.uint8 and ds.targets.shape == (400, 10 * colors)
    assert ds.class_names == [f"{d}-{c}" for d in range(10) for c in PALETTES[colors]]
    assert ds.targets.sum(axis=1).min() >= 1  # every image holds a digit
    item = ds[3]
    assert isinstance(item["input"], tv_tensors.Image) and item["input"].shape == (3, 48, 48)
    assert torch.equal(item["target"], torch.from_numpy(ds.targets[3].astype(np.float32)))
    # the object table agrees with the targets
    obj = ds.objects
    rebuilt = np.zeros_like(ds.targets)
    rebuilt[obj["image"], obj["class"]] = 1
    np.testing.assert_array_equal(rebuilt, ds.targets)
    assert (obj["top"] + obj["side"] <= 48).all() and (obj["left"] + obj["side"] <= 48).all()
    assert (obj["top"] >= 0).all() and (obj["left"] >= 0).all()
    assert (obj["side"] >= round(0.2 * 48)).all() and (obj["side"] <= round(0.5 * 48)).all()


@pytest.mark.parametrize("name", ["multidigits20", "multidigits80"])
def test_deterministic_for_a_seed_and_different_across_seeds(name):
    a = generate_multidigits(name, "train", **SMALL)
    b = generate_multidigits(name, "train", **SMALL)
    for key in ("images", "targets", "contexts", "object_source", "object_side", "object_top", "object_color"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    c = generate_multidigits(name, "train", **SMALL, seed=1)
    assert not np.array_equal(a["targets"], c["targets"])
    assert not np.array_equal(a["images"], c["images"])


def test_splits_are_independent_streams():
    """Changing another split's size leaves a split unchanged; train and val differ."""
    t1 = generate_multidigits("multidigits20", "test", **SMALL)
    t2 = generate_multidigits("multidigits20", "test", **{**SMALL, "n_train": 50, "n_val": 7})
    np.testing.assert_array_equal(t1["images"], t2["images"])
    tr = generate_multidigits("multidigits20", "train", **{**SMALL, "n_train": 100})
    va = generate_multidigits("multidigits20", "val", **{**SMALL, "n_val": 100})
    assert not np.array_equal(tr["images"], va["images"])


def test_source_pools_disjoint_stratified_and_fixed():
    from sklearn.datasets import load_digits

    pools = source_pools()
    assert len(np.intersect1d(pools["train"], pools["test"])) == 0
    assert len(pools["train"]) + len(pools["test"]) == 1797
    digits = load_digits().target
    ntr, nte = np.bincount(digits[pools["train"]], minlength=10), np.bincount(digits[pools["test"]], minlength=10)
    assert np.abs(ntr - nte).max() <= 1
    np.testing.assert_array_equal(source_pools()["train"], pools["train"])


@pytest.mark.parametrize("name", ["multidigits20", "multidigits80"])
def test_splits_use_disjoint_source_digits(name):
    from sklearn.datasets import load_digits

    pools = source_pools()
    tr, va, te = (_load(name, s) for s in ("train", "val", "test"))
    assert np.isin(tr.source_indices, pools["train"]).all()
    assert np.isin(va.source_indices, pools["train"]).all()
    assert np.isin(te.source_indices, pools["test"]).all()
    assert len(np.intersect1d(tr.source_indices, te.source_indices)) == 0
    assert len(np.intersect1d(va.source_indices, te.source_indices)) == 0
    # each object's source digit is the digit of its class
    n_colors = 2 if name == "multidigits20" else 8
    digits = load_digits().target
    np.testing.assert_array_equal(digits[te.objects["source"]], te.objects["class"] // n_colors)


@pytest.mark.parametrize("name, card", [("multidigits20", 2.4), ("multidigits80", 2.9)])
def test_statistics_near_targets(name, card):
    n = 3000
    ds = _load(name, "train", n_train=n, image_size=32)
    s = label_statistics(ds.targets)
    assert abs(s["cardinality"] - card) < 0.12
    counts = np.asarray(s["label_counts"])
    # long tail: the most frequent class is several times the least frequent one
    assert counts.max() >= 5 * counts.min()
    # floor: every class present at least min(min_count, n // C) times
    assert counts.min() >= min(10, n // ds.num_classes) and not s["empty_labels"]
    assert ds.metadata["min_class_count"] == counts.min()
    # co-occurrence: some pair's conditional probability is far above the marginal
    cond = conditional_probabilities(ds.targets)  # cond[i, j] = P(j | i)
    marg = ds.targets.mean(axis=0)
    lift = cond / marg[None, :]
    np.fill_diagonal(lift, 0)
    assert lift.max() > 3.0
    # and duplicates exist: more objects than labels
    assert ds.metadata["n_objects"] > ds.targets.sum()


def test_balanced_and_independent_when_asked():
    ds = _load("multidigits20", "train", n_train=4000, image_size=32, tail=0.0, context_strength=0.0)
    counts = ds.targets.sum(axis=0)
    assert counts.max() < 1.3 * counts.min()
    cond = conditional_probabilities(ds.targets)
    lift = cond / ds.targets.mean(axis=0)[None, :]
    np.fill_diagonal(lift, 1)
    assert lift.max() < 1.5


def test_floor_puts_every_class_in_a_small_split():
    ds = _load("multidigits80", "test", n_test=400, image_size=32, tail=3.0)
    assert ds.targets.sum(axis=0).min() >= min(10, 400 // 80)


def test_clean_background_without_clutter():
    ds = _load("multidigits20", "val", n_val=20, clutter=0.0)
    covered = np.zeros((20, 48, 48), dtype=bool)
    o = ds.objects
    for i, t, left, s in zip(o["image"], o["top"], o["left"], o["side"]):
        covered[i, t:t + s, left:left + s] = True
    assert int(ds.inputs.numpy().transpose(1, 0, 2, 3)[:, ~covered].max()) == 0


def test_cache_round_trip_identical_to_uncached(tmp_path):
    fresh = _load("multidigits20", "val", tmp_path)
    assert fresh.metadata["from_cache"] is False
    files = list(tmp_path.glob("multidigits20-val-*.npz"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp*"))
    again = _load("multidigits20", "val", tmp_path)
    assert again.metadata["from_cache"] is True
    nocache = _load("multidigits20", "val")
    for ds in (again, nocache):
        assert torch.equal(ds.inputs, fresh.inputs)
        np.testing.assert_array_equal(ds.targets, fresh.targets)
        assert ds.class_names == fresh.class_names
        for k in fresh.objects:
            np.testing.assert_array_equal(ds.objects[k], fresh.objects[k])
    # the file is plain arrays: loadable without pickle
    with np.load(files[0], allow_pickle=False) as z:
        assert z["images"].dtype == np.uint8
    # different options -> a different file
    _load("multidigits20", "val", tmp_path, seed=3)
    assert len(list(tmp_path.glob("multidigits20-val-*.npz"))) == 2
    assert GENERATOR_VERSION >= 1


def test_corrupted_cache_is_regenerated_with_warning(tmp_path):
    fresh = _load("multidigits80", "test", tmp_path, n_test=30)
    (path,) = tmp_path.glob("multidigits80-test-*.npz")
    path.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="unreadable"):
        again = _load("multidigits80", "test", tmp_path, n_test=30)
    assert torch.equal(again.inputs, fresh.inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _load("multidigits80", "test", tmp_path, n_test=30).metadata["from_cache"] is True


def test_default_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LABELWISE_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "multidigits"
    ds = load_dataset("multidigits20", split="val", n_val=5, image_size=32)
    assert ds.metadata["cache_file"].startswith(str(tmp_path / "multidigits"))
    monkeypatch.delenv("LABELWISE_CACHE")
    assert default_cache_dir().parts[-3:] == (".cache", "labelwise", "multidigits")


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"n_trian": 5}, TypeError, "n_trian"),
        ({"image_size": 8}, ValueError, "image_size"),
        ({"n_train": -1}, ValueError, "n_train"),
        ({"n_train": 2.5}, ValueError, "n_train"),
        ({"tail": -0.5}, ValueError, "tail"),
        ({"context_strength": 1.5}, ValueError, "context_strength"),
        ({"min_scale": 0.6, "max_scale": 0.5}, ValueError, "min_scale"),
        ({"min_scale": 0.01}, ValueError, "min_scale"),
        ({"cardinality": 9.0}, ValueError, "cardinality"),
        ({"clutter": float("nan")}, ValueError, "clutter"),
        ({"cache": "yes"}, ValueError, "cache"),
    ],
)
def test_bad_options_raise_naming_the_option(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        load_dataset("multidigits20", split="val", n_val=4, **{"cache": False, **kwargs})


def test_bad_split_and_variant():
    with pytest.raises(ValueError, match="'trainval'"):
        load_dataset("multidigits20", split="trainval", cache=False)
    with pytest.raises(KeyError, match="multidigits50"):
        load_multidigits("multidigits50", split="train")
    with pytest.raises(TypeError, match="bogus"):
        generate_multidigits("multidigits20", "train", bogus=1)


def test_default_size_generation():
    # generation time is measured by benchmarks/multidigits_stats.py (docs/results.md), not asserted here
    ds = load_dataset("multidigits20", split="train", cache=False)
    assert len(ds) == 5000 and ds.inputs.shape[1:] == (3, 64, 64)
    s = label_statistics(ds.targets)
    assert abs(s["cardinality"] - 2.4) < 0.1 and ds.metadata["occlusion_violations"] < 25


def test_pretraining_variant_has_a_disjoint_label_space():
    """multidigits40 (the pretraining corpus): 40 classes, none of them a MultiDigits-20/80 class."""
    ds = load_dataset("multidigits40", split="train", n_train=40, image_size=32, cache=False)
    assert ds.num_classes == 40
    evaluation = set()
    for name in ("multidigits20", "multidigits80"):
        evaluation |= set(load_dataset(name, split="test", n_test=4, image_size=32, cache=False).class_names)
    assert not set(ds.class_names) & evaluation
    from labelwise.data.multidigits import PALETTES

    assert not set(PALETTES[4]) & (set(PALETTES[2]) | set(PALETTES[8]))
