"""Pedestrian-attribute loaders: the real PETA files, fixtures in the on-disk formats, the restricted unpickler."""

from __future__ import annotations

import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from labelwise.data import load_dataset
from labelwise.data.formats import pedestrian as P


def _shared() -> Path:
    env = os.environ.get("LABELWISE_SHARED_DATASETS")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


PETA = _shared() / "pedestrian_attributes" / "PETA"
needs_peta = pytest.mark.skipif(not (PETA / "PETA.mat").is_file(), reason="shared PETA files not available")


# -- real PETA -------------------------------------------------------------------------------------------------
@needs_peta
@pytest.mark.parametrize("partition", range(5))
def test_real_peta_partitions(partition):
    sizes = {}
    seen = []
    for split in ("train", "val", "test"):
        ds = load_dataset("peta", root=str(PETA), split=split, partition=partition)
        assert ds.num_classes == 35 and ds.known_mask is None
        sizes[split] = len(ds)
        seen.append(ds.image_index)
    assert sizes == {"train": 9500, "val": 1900, "test": 7600}
    allidx = np.concatenate(seen)
    assert np.array_equal(np.sort(allidx), np.arange(19000))  # disjoint and covering the 19,000 images
    tv = load_dataset("peta", root=str(PETA), split="trainval", partition=partition)
    assert len(tv) == 11400


@needs_peta
def test_real_peta_attributes_and_pickle_agree():
    full = P.load_peta(PETA, "train", attributes="all")
    assert full.num_classes == 105
    ev = P.load_peta(PETA, "train")
    assert ev.class_names == full.class_names[:35]  # the evaluated attributes are the first 35 of the .mat
    mat = loadmat(str(PETA / "PETA.mat"))["peta"][0, 0]
    data = mat["data"]
    names = [str(a[0][0]) for a in mat["attribute"]]
    d = P.read_par_pickle(PETA / "dataset.pkl")
    assert isinstance(d, P.AttrDict) and d.description == "peta" and len(d.image_name) == 19000
    assert d.label.shape == (19000, 35)
    for j, name in enumerate(d.attr_name):  # every pickle column equals the .mat column of the same name
        np.testing.assert_array_equal(d.label[:, j], data[:, 4 + names.index(str(name))], err_msg=str(name))
    for i in range(5):  # pickle partitions are the .mat partitions, 0-based
        part = mat["partion_attribute"][i, 0][0, 0]
        np.testing.assert_array_equal(d.partition.train[i], part["train"].ravel() - 1)
        np.testing.assert_array_equal(d.partition.test[i], part["test"].ravel() - 1)
    grouped = P.load_peta(PETA, "test", order="group", partition=3)
    pk = load_dataset("par_pickle", root=str(PETA), split="test", partition=3)
    assert grouped.class_names == pk.class_names and grouped.paths == pk.paths
    np.testing.assert_array_equal(grouped.targets, pk.targets)
    assert pk.root == str(PETA)  # no images/ folder next to the annotation-only copy


# -- restricted unpickler ----------------------------------------------------------------------------------------
class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_unexpected_class_is_refused_without_running(tmp_path):
    marker = tmp_path / "marker"
    bad = tmp_path / "dataset.pkl"
    bad.write_bytes(pickle.dumps({"image_name": ["a.png"], "label": np.zeros((1, 1)), "x": _Payload(marker)}))
    # the payload is live: a plain pickle.load would run it
    pickle.loads(bad.read_bytes())
    assert marker.exists()
    marker.unlink()
    with pytest.raises(P.UnsafePickleError, match=r"refused to unpickle (posix|os|nt)\.system"):
        P.read_par_pickle(bad)
    assert not marker.exists()
    with pytest.raises(P.UnsafePickleError):
        load_dataset("par_pickle", root=str(tmp_path), split="train")
    assert not marker.exists()
    # a refused class inside an object array is refused too
    arr = np.empty(1, dtype=object)
    arr[0] = _Payload(marker)
    bad.write_bytes(pickle.dumps({"label": arr}))
    with pytest.raises(P.UnsafePickleError):
        P.read_par_pickle(bad)
    assert not marker.exists()
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a readable dataset pickle"):
        P.read_par_pickle(bad)


def _write_easydict_pickle(path, obj):
    """Pickle ``obj`` with ``easydict.EasyDict`` stand-ins, as Rethinking_of_PAR's files are."""
    mod = types.ModuleType("easydict")

    class EasyDict(dict):
        def __init__(self, d=None):
            super().__init__(d or {})
            for k, v in self.items():
                setattr(self, k, v)

    EasyDict.__module__, EasyDict.__qualname__ = "easydict", "EasyDict"
    mod.EasyDict = EasyDict
    sys.modules["easydict"] = mod
    try:
        def conv(o):
            return EasyDict({k: conv(v) for k, v in o.items()}) if isinstance(o, dict) else o

        path.write_bytes(pickle.dumps(conv(obj), protocol=4))
    finally:
        del sys.modules["easydict"]


def test_zero_shot_pickle_fixture(tmp_path):
    rng = np.random.default_rng(0)
    label = (rng.random((10, 5)) < 0.5).astype(np.uint8)
    label[3, 2] = 2  # uncertain
    _write_easydict_pickle(tmp_path / "dataset_zs_run0.pkl", {
        "description": "rap2", "root": "./data/RAP2/RAP_dataset", "image_name": [f"img{i}.png" for i in range(10)],
        "label": label, "attr_name": [f"a{j}" for j in range(5)],
        "label_idx": {"eval": [4, 0, 2], "color": [], "extra": [1, 3]},
        "partition": {"train": np.arange(0, 6), "val": np.arange(6, 8), "trainval": np.arange(0, 8),
                      "test": np.arange(8, 10)},
        "weight_train": label[:6].mean(0), "weight_trainval": label[:8].mean(0),
    })
    (tmp_path / "images").mkdir()
    ds = load_dataset("rap_zs", root=str(tmp_path), split="train")
    assert ds.class_names == ["a4", "a0", "a2"] and len(ds) == 6
    assert ds.root == str(tmp_path / "images")
    np.testing.assert_array_equal(ds.targets, (label[:6][:, [4, 0, 2]] == 1).astype(np.uint8))
    assert ds.known_mask is not None and not ds.known_mask[3, 2] and ds.known_mask.sum() == 6 * 3 - 1
    assert len(load_dataset("peta_zs", root=str(tmp_path), split="trainval")) == 8
    assert load_dataset("rap_zs", root=str(tmp_path), split="test", attributes="all").num_classes == 5
    neg = load_dataset("rap_zs", root=str(tmp_path), split="train", uncertain="negative")
    assert neg.known_mask is None and neg.targets[3, 2] == 0
    with pytest.raises(ValueError, match="unknown split"):
        load_dataset("rap_zs", root=str(tmp_path), split="dev")


# -- .mat fixtures ------------------------------------------------------------------------------------------------
def _cell(strings):
    arr = np.empty((len(strings), 1), dtype=object)
    for i, s in enumerate(strings):
        arr[i, 0] = s
    return arr


def test_pa100k_fixture(tmp_path):
    names = [f"attr{j}" for j in range(4)]
    mats = {"attributes": _cell(names)}
    rng = np.random.default_rng(1)
    for split, n in (("train", 6), ("val", 2), ("test", 3)):
        mats[f"{split}_images_name"] = _cell([f"{split}{i:06d}.jpg" for i in range(n)])
        mats[f"{split}_label"] = (rng.random((n, 4)) < 0.5).astype(np.uint8)
    savemat(tmp_path / "annotation.mat", mats)
    (tmp_path / "data").mkdir()
    ds = load_dataset("pa100k", root=str(tmp_path), split="test")
    assert len(ds) == 3 and ds.class_names == names and ds.paths[0] == "test000000.jpg"
    assert ds.root == str(tmp_path / "data")
    np.testing.assert_array_equal(ds.targets, mats["test_label"])
    tv = load_dataset("pa100k", root=str(tmp_path), split="trainval")
    assert len(tv) == 8 and tv.paths[6] == "val000000.jpg"
    assert load_dataset("pa100k", root=str(tmp_path), split="train", attributes=["attr2"]).num_classes == 1
    with pytest.raises(KeyError, match="unknown attribute"):
        load_dataset("pa100k", root=str(tmp_path), split="train", attributes=["nope"])
    with pytest.raises(FileNotFoundError, match="annotation.mat"):
        load_dataset("pa100k", root=str(tmp_path / "missing"), split="train")


def _rap_fixture(n=12, a=6):
    rng = np.random.default_rng(2)
    labels = (rng.random((n, a)) < 0.4).astype(np.uint8)
    labels[0, 1] = 2
    return labels


def test_rapv2_fixture(tmp_path):
    labels = _rap_fixture()
    parts = np.empty((1, 5), dtype=object)
    for i in range(5):
        perm = np.random.default_rng(i).permutation(12) + 1
        parts[0, i] = {"train_index": perm[:6][None], "val_index": perm[6:8][None], "test_index": perm[8:][None]}
    ann = {"name": _cell([f"CAM01_{i}.png" for i in range(12)]), "attribute": _cell([f"att{j}" for j in range(6)]),
           "data": labels, "selected_attribute": np.array([[1, 2, 4]]), "partition_attribute": parts,
           "person_identity": np.arange(12)[:, None] + 100}
    (tmp_path / "RAP_annotation").mkdir()
    savemat(tmp_path / "RAP_annotation" / "RAP_annotation.mat", {"RAP_annotation": ann})
    ds = load_dataset("rapv2", root=str(tmp_path), split="val", partition=2)
    perm = np.random.default_rng(2).permutation(12)
    assert ds.class_names == ["att0", "att1", "att3"] and len(ds) == 2
    assert ds.paths == [f"CAM01_{i}.png" for i in perm[6:8]]
    np.testing.assert_array_equal(ds.identity, perm[6:8] + 100)
    np.testing.assert_array_equal(ds.targets, (labels[perm[6:8]][:, [0, 1, 3]] == 1).astype(np.uint8))
    assert ds.root == str(tmp_path / "RAP_dataset")
    with pytest.raises(ValueError, match="partition must be"):
        load_dataset("rapv2", root=str(tmp_path), split="val", partition=5)


def test_rap_v1_fixture(tmp_path):
    labels = _rap_fixture(n=10, a=60)
    parts = np.empty((5, 1), dtype=object)
    for i in range(5):
        parts[i, 0] = {"train_index": np.arange(1, 8)[None] , "test_index": np.arange(8, 11)[None]}
    ann = {"partion": parts, "label": labels, "attribute_chinese": _cell(["x"] * 60),
           "attribute_eng": _cell([f"e{j}" for j in range(60)]), "position": np.zeros((10, 24)),
           "imagesname": _cell([f"img{i}.png" for i in range(10)]), "selected_attribute": np.arange(1, 52)[None]}
    savemat(tmp_path / "RAP_annotation.mat", {"RAP_annotation": ann})
    ds = load_dataset("rap", root=str(tmp_path), split="test")
    assert ds.num_classes == 51 and len(ds) == 3 and ds.paths == ["img7.png", "img8.png", "img9.png"]
    tr = load_dataset("rap", root=str(tmp_path), split="train")
    assert len(tr) == 7 and not tr.known_mask[0, 1]
    with pytest.raises(ValueError, match="unknown split 'val'"):
        load_dataset("rap", root=str(tmp_path), split="val")


def test_peta_fixture_errors(tmp_path):
    data = np.zeros((4, 4 + 3), dtype=np.uint16)
    data[:, 0] = [1, 2, 3, 5]  # broken numbering
    parts = np.empty((5, 1), dtype=object)
    for i in range(5):
        parts[i, 0] = {"train": np.array([[1], [2]]), "val": np.array([[3]]), "test": np.array([[4]])}
    savemat(tmp_path / "PETA.mat", {"peta": {"data": data, "attribute": _cell(["a", "b", "c"]),
                                             "selected_attribute": np.array([[5, 6]]), "partion_attribute": parts}})
    with pytest.raises(ValueError, match="number the images"):
        load_dataset("peta", root=str(tmp_path), split="train")
    data[:, 0] = [1, 2, 3, 4]
    data[1, 5] = 1
    savemat(tmp_path / "PETA.mat", {"peta": {"data": data, "attribute": _cell(["a", "b", "c"]),
                                             "selected_attribute": np.array([[5, 6]]), "partion_attribute": parts}})
    ds = load_dataset("peta", root=str(tmp_path), split="train")
    assert ds.class_names == ["a", "b"] and ds.paths == ["00001.png", "00002.png"] and ds.targets[1].tolist() == [0, 1]
    with pytest.raises(ValueError, match="order='group'"):
        load_dataset("peta", root=str(tmp_path), split="train", order="group")
