"""Custom CSV / JSON image lists on fixtures written here."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from labelwise.data import collate_batch, load_dataset


def write_images(folder, names, fmt="png"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for n in names:
        Image.fromarray(rng.integers(0, 255, (5, 4, 3), dtype=np.uint8)).save(folder / n)


def test_csv_label_names_inferred_sorted(tmp_path):
    write_images(tmp_path / "img", ["a.png", "b.png", "c.jpg"])
    (tmp_path / "train.csv").write_text("path,labels\nimg/a.png,dog cat\nimg/b.png,\nimg/c.jpg,  car\n")
    ds = load_dataset("csv", root=str(tmp_path), split="train")
    assert ds.class_names == ["car", "cat", "dog"]
    assert ds.targets.dtype == np.uint8
    np.testing.assert_array_equal(ds.targets, [[0, 1, 1], [0, 0, 0], [1, 0, 0]])
    for i in range(3):
        img = ds[i]["input"]
        assert img.dtype == torch.uint8 and tuple(img.shape) == (3, 5, 4)
    assert collate_batch([ds[0], ds[2]])["input"].shape == (2, 3, 5, 4)


def test_csv_separator_given_classes_and_split_column(tmp_path):
    write_images(tmp_path / "pics", ["a.png", "b.png", "c.png"])
    f = tmp_path / "all.csv"
    f.write_text('file;tags;fold\na.png;"cat|dog";train\nb.png;dog;test\nc.png;cat;train\n')
    (tmp_path / "classes.txt").write_text("dog\ncat\nbird\n")
    ds = load_dataset("csv", root=str(f), split="train", path_column="file", labels_column="tags", separator="|",
                      delimiter=";", split_column="fold", class_names=str(tmp_path / "classes.txt"),
                      image_root=str(tmp_path / "pics"))
    assert ds.class_names == ["dog", "cat", "bird"]
    np.testing.assert_array_equal(ds.targets, [[1, 1, 0], [0, 1, 0]])
    assert ds.paths == ["a.png", "c.png"] and ds.source_lines == [2, 4]
    assert ds[1]["input"].shape == (3, 5, 4)


def test_csv_one_column_per_class(tmp_path):
    write_images(tmp_path, ["a.png", "b.png"])
    f = tmp_path / "labels.csv"
    f.write_text("path,sky,tree,water\na.png,1,0,1\nb.png,0,0,0\n")
    ds = load_dataset("csv", root=str(f))
    assert ds.class_names == ["sky", "tree", "water"]
    np.testing.assert_array_equal(ds.targets, [[1, 0, 1], [0, 0, 0]])
    reordered = load_dataset("csv", root=str(f), class_names=["water", "sky", "tree"])
    np.testing.assert_array_equal(reordered.targets, [[1, 1, 0], [0, 0, 0]])


def test_csv_unknown_label_names_file_and_line(tmp_path):
    f = tmp_path / "train.csv"
    f.write_text("path,labels\na.png,cat\nb.png,cat zebra\n")
    with pytest.raises(ValueError, match=r"train\.csv, line 3: label 'zebra' is not in the class list"):
        load_dataset("csv", root=str(f), class_names=["cat", "dog"])


@pytest.mark.parametrize("text, match", [
    ("path,sky,tree\na.png,1,0\nb.png,2,0\n", r"line 3: column 'sky' is '2'; class columns must hold 0 or 1"),
    ("path,labels\na.png,cat,extra\n", r"line 2: 3 fields but the header has 2"),
    ("name,labels\na.png,cat\n", r"line 1: no image path column; name it one of path, image"),
])
def test_csv_bad_input(tmp_path, text, match):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(ValueError, match=r"bad\.csv, " + match):
        load_dataset("csv", root=str(f))


def test_csv_missing_split_file(tmp_path):
    (tmp_path / "train.csv").write_text("path,labels\na.png,x\n")
    with pytest.raises(FileNotFoundError, match=r"val\.csv not found \(found train\.csv\)"):
        load_dataset("csv", root=str(tmp_path), split="val")


def test_json_list_and_object_forms(tmp_path):
    write_images(tmp_path / "im", ["x.png", "y.png"])
    items = [{"path": "im/x.png", "labels": ["b", "a"]}, {"path": "im/y.png", "labels": []}]
    (tmp_path / "train.json").write_text(json.dumps(items))
    ds = load_dataset("json", root=str(tmp_path), split="train")
    assert ds.class_names == ["a", "b"]
    np.testing.assert_array_equal(ds.targets, [[1, 1], [0, 0]])
    assert ds[0]["input"].dtype == torch.uint8 and ds[0]["input"].shape == (3, 5, 4)
    (tmp_path / "val.json").write_text(json.dumps({"classes": ["b", "a", "c"], "images": items}))
    ds = load_dataset("json", root=str(tmp_path), split="val")
    assert ds.class_names == ["b", "a", "c"]
    np.testing.assert_array_equal(ds.targets, [[1, 1, 0], [0, 0, 0]])


def test_json_bad_input(tmp_path):
    f = tmp_path / "l.json"
    f.write_text(json.dumps({"classes": ["a"], "images": [{"path": "x.png", "labels": ["a"]},
                                                         {"path": "y.png", "labels": ["q"]}]}))
    with pytest.raises(ValueError, match=r"l\.json, item 1: label 'q' is not in the class list"):
        load_dataset("json", root=str(f))
    f.write_text(json.dumps([{"file": "x.png"}]))
    with pytest.raises(ValueError, match=r"l\.json, item 0: expected an object with a 'path' key"):
        load_dataset("json", root=str(f))
    f.write_text("[{")
    with pytest.raises(ValueError, match=r"l\.json: invalid JSON"):
        load_dataset("json", root=str(f))
