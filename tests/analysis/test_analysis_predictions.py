"""Stored predictions of a run (report/predictions_<split>.npz): round trip and bad files."""

from __future__ import annotations

import numpy as np
import pytest

from labelwise.analysis.predictions import load_predictions, predictions_path, save_predictions


def _preds(n=30, c=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, c)).astype(np.float32), (rng.random((n, c)) < 0.3).astype(np.uint8), rng.permutation(n)


def test_round_trip_keeps_every_field(tmp_path):
    s, y, idx = _preds()
    path = save_predictions(predictions_path(tmp_path, "test"), s, y, idx, ["a", "b", "c", "d"], split="test",
                            thresholds=[0.1, 0.2, 0.3, 0.4])
    assert path == tmp_path / "report" / "predictions_test.npz"
    p = load_predictions(path)
    np.testing.assert_array_equal(p.scores, s)
    np.testing.assert_array_equal(p.targets, y)
    np.testing.assert_array_equal(p.indices, idx)
    assert p.class_names == ["a", "b", "c", "d"] and p.split == "test" and p.tuned and len(p) == 30
    assert p.thresholds.tolist() == [0.1, 0.2, 0.3, 0.4]
    assert not list(tmp_path.glob("report/*.tmp"))


def test_global_threshold_is_repeated_and_not_tuned(tmp_path):
    s, y, idx = _preds(c=3)
    p = load_predictions(save_predictions(tmp_path / "p.npz", s, y, idx, list("abc"), split="val", thresholds=0.7))
    assert p.thresholds.tolist() == [0.7, 0.7, 0.7] and not p.tuned


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"targets": np.zeros((30, 3))}, "equal"),
        ({"names": ["a"]}, "1 class names"),
        ({"indices": np.arange(3)}, "3 indices for 30 rows"),
        ({"split": "train"}, "'val' or 'test'"),
        ({"thresholds": [0.5, 0.5]}, "thresholds"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    s, y, idx = _preds()
    args = {"scores": s, "targets": y, "indices": idx, "names": list("abcd"), "split": "val", "thresholds": 0.5}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        save_predictions(tmp_path / "p.npz", args["scores"], args["targets"], args["indices"], args["names"],
                         split=args["split"], thresholds=args["thresholds"])


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_predictions(tmp_path / "nope.npz")
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    with pytest.raises(ValueError, match="text.npz"):
        load_predictions(text)
    partial = tmp_path / "partial.npz"
    np.savez(partial, scores=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"partial.npz.*missing targets"):
        load_predictions(partial)


def test_pickled_arrays_are_refused(tmp_path):
    s, y, idx = _preds(c=2)
    path = tmp_path / "pickled.npz"
    np.savez(path, scores=s, targets=y, indices=idx, class_names=np.array([{"a": 1}, "b"], dtype=object),
             thresholds=np.full(2, 0.5), tuned=np.array(False), split=np.array("val"))
    with pytest.raises(ValueError, match="pickled.npz"):
        load_predictions(path)
