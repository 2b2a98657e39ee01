"""The real MULAN files of ../shared/datasets, checked against the counts listed in its README.

Skipped when the directory is absent. Locate it with ``LABELWISE_SHARED_DATASETS`` or next to the repository.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from labelwise.data.formats.arff import read_arff
from labelwise.data.formats.mulan import MulanDataset, SparseMulanDataset, load_mulan
from labelwise.data.stats import label_statistics

SHARED = Path(os.environ.get("LABELWISE_SHARED_DATASETS")
              or Path(__file__).resolve().parents[2].parent / "shared" / "datasets")
MULAN = SHARED / "mulan"

pytestmark = pytest.mark.skipif(not MULAN.is_dir(), reason=f"shared MULAN data not found at {MULAN}")

# dir: (instances, train, test, features, labels, cardinality) -- the table of shared/datasets/README.md
EXPECTED = {
    "yeast": (2417, 1500, 917, 103, 14, 4.237),
    "scene": (2407, 1211, 1196, 294, 6, 1.074),
    "emotions": (593, 391, 202, 72, 6, 1.868),
    "enron": (1702, 1123, 579, 1001, 53, 3.378),
    "bibtex": (7395, 4880, 2515, 1836, 159, 2.402),
    "corel5k": (5000, 4500, 500, 499, 374, 3.522),
    "cal500": (502, None, None, 68, 174, 26.044),
    "medical": (978, 333, 645, 1449, 45, 1.245),
    "genbase": (662, 463, 199, 1186, 27, 1.252),
    "tmc2007": (28596, 21519, 7077, 500, 22, 2.158),
    "rcv1subset1": (6000, None, None, 47236, 101, 2.880),
    "rcv1subset2": (6000, None, None, 47236, 101, 2.634),
    "rcv1subset3": (6000, None, None, 47236, 101, 2.614),
    "yahoo-Arts1": (7484, None, None, 23146, 26, 1.654),
    "yahoo-Business1": (11214, None, None, 21924, 30, 1.599),
    "langlog": (1460, None, None, 1004, 75, 1.180),
}
SCENE_SPLIT_CARD = {"train": 1.062, "test": 1.086}


def test_readme_lists_exactly_these_datasets():
    readme = (SHARED / "README.md").read_text()
    listed = set(re.findall(r"^\| (\S+?)(?: \([A-Z]+\))? \|", readme, flags=re.M)) - {"dir"}
    assert listed == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counts_match_readme(name):
    n_all, n_train, n_test, n_feat, n_lab, card = EXPECTED[name]
    ds = load_mulan(name, split="all", root=MULAN)
    assert isinstance(ds, (MulanDataset, SparseMulanDataset))
    assert len(ds) == n_all
    assert ds.num_features == n_feat
    assert ds.num_classes == n_lab
    assert ds.targets.dtype == np.uint8
    assert round(float(ds.targets.sum(1).mean()), 3) == pytest.approx(card, abs=1e-3)
    assert ds[0]["input"].shape == (n_feat,)
    if n_train is None:
        with pytest.raises(FileNotFoundError, match="no predefined 'train' file"):
            load_mulan(name, split="train", root=MULAN)
        return
    tr = load_mulan(name, split="train", root=MULAN)
    te = load_mulan(name, split="test", root=MULAN)
    assert (len(tr), len(te)) == (n_train, n_test)
    assert tr.class_names == te.class_names == ds.class_names
    if name == "scene":
        for split, part in (("train", tr), ("test", te)):
            assert float(part.targets.sum(1).mean()) == pytest.approx(SCENE_SPLIT_CARD[split], abs=1e-3)


def test_large_sparse_sets_stay_sparse():
    ds = load_mulan("rcv1subset1", split="all", root=MULAN)
    assert isinstance(ds, SparseMulanDataset)  # 6000 x 47236 float32 would be 1.1 GB dense
    x = ds[5]["input"].numpy()
    np.testing.assert_array_equal(x, ds.features[5].toarray().ravel())


@pytest.mark.parametrize("path", ["emotions/emotions-test.arff", "medical/medical-train.arff",
                                  "genbase/genbase-test.arff"])
def test_values_match_liac_arff(path):
    arff = pytest.importorskip("arff")
    file = MULAN / path
    ours = read_arff(file)
    if ours.sparse:
        ref = arff.load(file.open(), return_type=arff.COO, encode_nominal=True)
        vals, rows, cols = ref["data"]
        dense = np.zeros(ours.data.shape)
        dense[np.asarray(rows), np.asarray(cols)] = np.asarray(vals, dtype=float)
        np.testing.assert_allclose(ours.data.toarray(), dense)
    else:
        ref = arff.load(file.open(), encode_nominal=True)
        np.testing.assert_allclose(ours.data, np.array(ref["data"], dtype=float))
    assert ours.attribute_names == [a[0] for a in ref["attributes"]]


def test_langlog_statistics_match_mldr():
    """langlog.rda stores mldr's measures: compare our statistics (and the labels-first layout) with them."""
    rdata = pytest.importorskip("rdata")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obj = next(iter(rdata.conversion.convert(rdata.parser.parse_file(MULAN / "langlog" / "langlog.rda")).values()))
    m = {str(k): float(np.asarray(v).ravel()[0]) for k, v in obj["measures"].items()}
    ds = load_mulan("langlog", split="all", root=MULAN)
    s = label_statistics(ds.targets)
    assert s["n_samples"] == m["num.instances"] and s["n_labels"] == m["num.labels"]
    assert ds.num_features == m["num.inputs"]
    assert s["cardinality"] == pytest.approx(m["cardinality"])
    assert s["density"] == pytest.approx(m["density"])
    assert s["mean_ir"] == pytest.approx(m["meanIR"])
    assert s["scumble"] == pytest.approx(m["scumble"])
    assert s["n_labelsets"] == m["num.labelsets"]
    assert s["n_single_labelsets"] == m["num.single.labelsets"]
    assert s["max_labelset_frequency"] == m["max.frequency"]
    labels = obj["labels"]
    assert ds.class_names == [str(i) for i in labels.index]
    np.testing.assert_allclose(s["irlbl"], labels["IRLbl"].to_numpy())
    np.testing.assert_allclose(s["scumble_per_label"], labels["SCUMBLE"].to_numpy(), rtol=1e-6)
