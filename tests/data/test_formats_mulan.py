"""MULAN/MEKA ARFF + XML reader on fixtures written here in the exact on-disk format."""

from __future__ import annotations

import arff as liac_arff
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from labelwise.data import load_dataset
from labelwise.data.formats.arff import read_arff
from labelwise.data.formats.mulan import (
    MulanDataset,
    SparseMulanDataset,
    load_mulan,
    read_mulan_xml,
)

XML_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n<labels xmlns="http://mulan.sourceforge.net/labels">\n'


def write_xml(path, names):
    body = "".join(f'<label name="{n}"></label>\n' for n in names)
    path.write_text(XML_HEAD + body + "</labels>\n")
    return path


def dense_arff(rows, n_feat=3, labels=("l1", "l2", "l3"), relation="toy"):
    head = [f"@relation {relation}", ""]
    head += [f"@attribute f{i} numeric" for i in range(n_feat)]
    head += [f"@attribute {lb} {{0,1}}" for lb in labels]
    return "\n".join(head + ["", "@data"] + rows) + "\n"


RNG = np.random.default_rng(0)
X_TRAIN = RNG.normal(size=(6, 3)).round(4)
Y_TRAIN = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 0]])
X_TEST = RNG.normal(size=(3, 3)).round(4)
Y_TEST = np.array([[0, 0, 1], [1, 1, 1], [0, 1, 0]])


def rows_of(x, y):
    return [",".join([*(f"{v:g}" for v in xr), *(str(int(v)) for v in yr)]) for xr, yr in zip(x, y)]


@pytest.fixture
def toy_dir(tmp_path):
    d = tmp_path / "toy"
    d.mkdir()
    (d / "toy-train.arff").write_text("% a comment\n" + dense_arff(rows_of(X_TRAIN, Y_TRAIN)))
    (d / "toy-test.arff").write_text(dense_arff(rows_of(X_TEST, Y_TEST)))
    write_xml(d / "toy.xml", ["l1", "l2", "l3"])
    return d


def test_dense_train_test_all(toy_dir):
    tr = load_dataset("mulan", root=str(toy_dir), split="train")
    te = load_dataset("mulan", root=str(toy_dir), split="test")
    al = load_dataset("mulan", root=str(toy_dir), split="all")
    assert isinstance(tr, MulanDataset)
    assert tr.class_names == ["l1", "l2", "l3"]
    assert tr.feature_names == ["f0", "f1", "f2"]
    assert tr.targets.dtype == np.uint8
    np.testing.assert_array_equal(tr.targets, Y_TRAIN)
    np.testing.assert_allclose(tr.features, X_TRAIN.astype(np.float32))
    np.testing.assert_array_equal(te.targets, Y_TEST)
    np.testing.assert_array_equal(al.targets, np.vstack([Y_TRAIN, Y_TEST]))  # no union file: train + test
    item = tr[1]
    assert item["input"].dtype == torch.float32 and item["input"].shape == (3,)
    assert item["target"].tolist() == [0.0, 1.0, 1.0]


def test_dense_matches_liac_arff(toy_dir):
    path = toy_dir / "toy-train.arff"
    ref = liac_arff.load(path.open())
    ours = read_arff(path)
    assert ours.attribute_names == [a[0] for a in ref["attributes"]]
    expected = np.array([[float(v) for v in row] for row in ref["data"]])
    np.testing.assert_allclose(ours.data, expected)
    assert ours.line_numbers[0] == 12  # comment + header lines precede the data


def sparse_text(x, y, labels=("l1", "l2", "l3"), relation="sp"):
    n_feat = x.shape[1]
    head = [f"@relation {relation}"] + [f"@attribute w{i} numeric" for i in range(n_feat)]
    head += [f"@attribute {lb} {{0,1}}" for lb in labels]
    rows = []
    full = np.hstack([x, y])
    for r in full:
        nz = np.flatnonzero(r)
        rows.append("{" + ",".join(f"{j} {r[j]:g}" for j in nz) + "}")
    return "\n".join(head + ["@data"] + rows) + "\n"


def test_sparse_against_liac_and_dense_item(tmp_path):
    x = np.where(RNG.random((8, 20)) < 0.2, RNG.integers(1, 5, (8, 20)), 0).astype(float)
    y = (RNG.random((8, 3)) < 0.4).astype(int)
    y[0] = 0  # an empty row: "{...}" holding only features
    x[3] = 0
    y[3] = 0  # and a fully empty "{}" row
    p = tmp_path / "sp.arff"
    p.write_text(sparse_text(x, y))
    write_xml(tmp_path / "sp.xml", ["l1", "l2", "l3"])
    ours = read_arff(p)
    assert ours.sparse and sp.issparse(ours.data)
    ref = liac_arff.load(p.open(), return_type=liac_arff.COO)
    vals, (r, c) = ref["data"][0], ref["data"][1:]
    dense_ref = np.zeros(ours.data.shape)
    dense_ref[np.asarray(r), np.asarray(c)] = np.asarray(vals, dtype=float)
    np.testing.assert_allclose(ours.data.toarray(), dense_ref)

    ds = load_dataset("mulan", root=str(p), xml=str(tmp_path / "sp.xml"))
    assert isinstance(ds, MulanDataset)  # small: densified by sparse="auto"
    np.testing.assert_array_equal(ds.targets, y)
    np.testing.assert_allclose(ds.features, x)
    kept = load_dataset("mulan", root=str(p), xml=str(tmp_path / "sp.xml"), sparse=True)
    assert isinstance(kept, SparseMulanDataset) and sp.issparse(kept.features)
    for i in range(len(x)):
        np.testing.assert_allclose(kept[i]["input"].numpy(), x[i].astype(np.float32))
        assert kept[i]["target"].tolist() == y[i].tolist()


def test_meka_labels_first(tmp_path):
    y = np.array([[1, 0], [0, 1], [1, 1]])
    x = np.array([[0.5, 1.0, 2.0], [0.0, 3.0, 1.5], [2.5, 0.0, 0.0]])
    head = ["@relation 'LLOG: -C 2'", "@attribute A {0,1}", "@attribute B {0,1}"]
    head += [f"@attribute x{i} numeric" for i in range(3)]
    rows = []
    for yr, xr in zip(y, x):
        full = np.concatenate([yr, xr])
        rows.append("{" + ",".join(f"{j} {full[j]:g}" for j in np.flatnonzero(full)) + "}")
    p = tmp_path / "llog.arff"
    p.write_text("\n".join(head + ["@data"] + rows) + "\n")
    ds = load_dataset("mulan", root=str(p))  # no XML: MEKA's -C 2 says the first two are labels
    assert ds.class_names == ["A", "B"]
    np.testing.assert_array_equal(ds.targets, y)
    np.testing.assert_allclose(ds.features, x)
    ds2 = load_dataset("mulan", root=str(p), label_location="start", n_labels=2)
    np.testing.assert_array_equal(ds2.targets, y)
    # with an XML, "end" contradicts the file and is refused
    xml = write_xml(tmp_path / "llog.xml", ["A", "B"])
    ds3 = load_dataset("mulan", root=str(p), xml=str(xml), label_location="start")
    np.testing.assert_array_equal(ds3.targets, y)
    with pytest.raises(ValueError, match="not the last 2 attributes"):
        load_dataset("mulan", root=str(p), xml=str(xml), label_location="end")


def test_no_xml_needs_label_count(tmp_path):
    p = tmp_path / "plain.arff"
    p.write_text(dense_arff(rows_of(X_TRAIN, Y_TRAIN)))
    with pytest.raises(ValueError, match="cannot tell which attributes are labels"):
        load_dataset("mulan", root=str(p))
    ds = load_dataset("mulan", root=str(p), n_labels=3, label_location="end")
    np.testing.assert_array_equal(ds.targets, Y_TRAIN)


def test_escaped_quotes_in_arff_and_xml(tmp_path):
    text = "\n".join([
        "@relation esc",
        "@attribute 'f 1' numeric",
        "@attribute 'valentine\\'s_day' {0,1}",
        "@attribute \"say \\\"hi\\\"\" {0,1}",
        "@attribute plain {0,1}",
        "@data",
        "1.5,1,0,1",
        "2,0,1,1",
    ]) + "\n"
    p = tmp_path / "esc.arff"
    p.write_text(text)
    (tmp_path / "esc.xml").write_text(
        XML_HEAD + "<label name=\"valentine\\'s_day\"></label>\n<label name='say \\\"hi\\\"'></label>\n"
        "<label name=\"plain\"></label>\n</labels>\n")
    assert read_mulan_xml(tmp_path / "esc.xml") == ["valentine's_day", 'say "hi"', "plain"]
    # liac-arff keeps the backslashes of quoted names; we undo them as in the XML (MULAN's behaviour)
    assert read_arff(p).attribute_names == ["f 1", "valentine's_day", 'say "hi"', "plain"]
    ds = load_dataset("mulan", root=str(p), xml=str(tmp_path / "esc.xml"))
    assert ds.class_names == ["valentine's_day", 'say "hi"', "plain"]
    assert ds.feature_names == ["f 1"]
    np.testing.assert_array_equal(ds.targets, [[1, 0, 1], [0, 1, 1]])


def test_label_order_arff_vs_xml(toy_dir):
    write_xml(toy_dir / "toy.xml", ["l3", "l1", "l2"])
    by_arff = load_dataset("mulan", root=str(toy_dir), split="train")
    by_xml = load_dataset("mulan", root=str(toy_dir), split="train", label_order="xml")
    assert by_arff.class_names == ["l1", "l2", "l3"]
    assert by_xml.class_names == ["l3", "l1", "l2"]
    np.testing.assert_array_equal(by_xml.targets, Y_TRAIN[:, [2, 0, 1]])


def genbase_like(tmp_path):
    text = "\n".join([
        "@relation gb",
        "@attribute protein {P1, P2, 'P 3'}",
        "@attribute PS1 {YES, NO}",
        "@attribute score numeric",
        "@attribute c1 {0,1}",
        "@attribute c2 {0,1}",
        "@data",
        "P2,NO,0.5,1,0",
        "'P 3',YES,1.5,0,1",
        "P1,NO,2,1,1",
    ]) + "\n"
    p = tmp_path / "gb.arff"
    p.write_text(text)
    write_xml(tmp_path / "gb.xml", ["c1", "c2"])
    return p


@pytest.mark.parametrize("nominal, names, first_row", [
    ("ordinal", ["protein", "PS1", "score"], [1, 1, 0.5]),
    ("onehot", ["protein=P1", "protein=P2", "protein=P 3", "PS1=YES", "PS1=NO", "score"], [0, 1, 0, 0, 1, 0.5]),
    ("drop", ["score"], [0.5]),
])
def test_nominal_features(tmp_path, nominal, names, first_row):
    p = genbase_like(tmp_path)
    ds = load_dataset("mulan", root=str(p), nominal=nominal)
    assert ds.feature_names == names
    np.testing.assert_allclose(ds.features[0], first_row)
    np.testing.assert_array_equal(ds.targets, [[1, 0], [0, 1], [1, 1]])
    if nominal == "ordinal":  # the index in the declaration, as liac-arff's encode_nominal / fetch_openml
        ref = liac_arff.load(p.open(), encode_nominal=True)
        np.testing.assert_allclose(ds.features, np.array(ref["data"], dtype=float)[:, :3])


def test_sparse_nominal_default_is_first_declared_value(tmp_path):
    text = "@relation s\n@attribute f {1,0}\n@attribute g {YES,NO}\n@attribute c {0,1}\n@data\n{2 1}\n{0 0,1 NO}\n"
    p = tmp_path / "s.arff"
    p.write_text(text)
    ds = load_dataset("mulan", root=str(p), n_labels=1)
    # omitted f -> its first declared value "1"; omitted g -> YES (ordinal 0)
    np.testing.assert_allclose(ds.features, [[1, 0], [0, 1]])


def test_load_mulan_by_name(toy_dir, monkeypatch):
    ds = load_mulan("TOY", split="test", root=toy_dir.parent)
    np.testing.assert_array_equal(ds.targets, Y_TEST)
    monkeypatch.setenv("LABELWISE_MULAN_ROOT", str(toy_dir.parent))
    assert len(load_mulan("toy", split="all")) == 9
    with pytest.raises(KeyError, match="unknown MULAN dataset 'tox'"):
        load_mulan("tox")


def test_union_file_preferred_and_missing_split(tmp_path):
    d = tmp_path / "u"
    d.mkdir()
    (d / "u.arff").write_text(dense_arff(rows_of(X_TRAIN, Y_TRAIN)))
    write_xml(d / "u.xml", ["l1", "l2", "l3"])
    assert len(load_dataset("mulan", root=str(d), split="all")) == 6
    with pytest.raises(FileNotFoundError, match="no predefined 'train' file"):
        load_dataset("mulan", root=str(d), split="train")


# ---------------------------------------------------------------------------------------------------- bad input
def test_xml_label_missing_from_arff_names_both_files(toy_dir):
    write_xml(toy_dir / "toy.xml", ["l1", "l2", "l3", "ghost"])
    with pytest.raises(ValueError) as err:
        load_dataset("mulan", root=str(toy_dir), split="train")
    msg = str(err.value)
    assert "'ghost'" in msg and "toy.xml" in msg and "toy-train.arff" in msg


def test_missing_feature_names_file_line_attribute(tmp_path):
    rows = rows_of(X_TRAIN, Y_TRAIN)
    parts = rows[2].split(",")
    parts[1] = "?"
    rows[2] = ",".join(parts)
    p = tmp_path / "m.arff"
    p.write_text(dense_arff(rows))
    write_xml(tmp_path / "m.xml", ["l1", "l2", "l3"])
    with pytest.raises(ValueError, match=r"m\.arff, line 13: feature 'f1' is missing"):
        load_dataset("mulan", root=str(p))
    ds = load_dataset("mulan", root=str(p), missing="zero")
    assert ds.features[2, 1] == 0.0


def test_nan_feature_is_an_error(tmp_path):
    rows = rows_of(X_TRAIN, Y_TRAIN)
    rows[0] = "nan," + rows[0].split(",", 1)[1]
    p = tmp_path / "n.arff"
    p.write_text(dense_arff(rows))
    with pytest.raises(ValueError, match=r"n\.arff, line 11: feature 'f0' is missing \('\?'\) or NaN"):
        load_dataset("mulan", root=str(p), n_labels=3)


def test_non_binary_label_names_file_line_label(tmp_path):
    text = "@relation b\n@attribute x numeric\n@attribute lab numeric\n@data\n1,0\n2,2\n"
    p = tmp_path / "b.arff"
    p.write_text(text)
    with pytest.raises(ValueError, match=r"b\.arff, line 6: label 'lab' is 2; multi-label targets must be 0 or 1"):
        load_dataset("mulan", root=str(p), n_labels=1)


@pytest.mark.parametrize("row, match", [
    ("1,2,3,1,0", "line 9: 5 values but 6 attributes"),
    ("1,2,3,1,0,7", "line 9: value '7' is not declared for nominal attribute 'l3'"),
    ("1,abc,3,1,0,1", "line 9: attribute 'f1' is numeric but has value 'abc'"),
])
def test_malformed_dense_rows(tmp_path, row, match):
    p = tmp_path / "bad.arff"
    p.write_text(dense_arff([row], relation="bad").replace("\n\n", "\n"))
    with pytest.raises(ValueError, match=match):
        read_arff(p)


@pytest.mark.parametrize("row, match", [
    ("{0 1,99 1}", "sparse index 99 is outside"),
    ("{0 1,0 2}", "attribute index 0 appears twice"),
    ("{0 1,1}", "sparse entries must be 'index value' pairs"),
])
def test_malformed_sparse_rows(tmp_path, row, match):
    p = tmp_path / "bad.arff"
    p.write_text(f"@relation b\n@attribute a numeric\n@attribute b {{0,1}}\n@data\n{{0 1}}\n{row}\n")
    with pytest.raises(ValueError, match=r"bad\.arff, line 6: " + match):
        read_arff(p)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset("mulan", root=str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="ARFF file not found"):
        read_arff(tmp_path / "nope.arff")
