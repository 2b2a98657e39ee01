"""The dataset base classes: items, views, validation, image loading errors, collation."""

import numpy as np
import pytest
import torch
from PIL import Image

from labelwise.data import (
    ArrayDataset,
    ImageListDataset,
    ImageLoadError,
    check_targets,
    collate_batch,
    list_datasets,
    load_dataset,
)


def _ds():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    return ArrayDataset(x, y, ["cat", "dog"], name="toy")


def test_item_contract():
    item = _ds()[2]
    assert set(item) == {"input", "target", "mask", "index"}
    assert item["target"].dtype == torch.float32 and item["target"].tolist() == [1.0, 1.0]
    assert item["mask"].dtype == torch.bool and item["mask"].all()
    assert item["index"] == 2
    assert _ds()[-1]["index"] == 3


def test_view_replaces_targets_and_mask_and_maps_indices():
    ds = _ds()
    mask = np.array([[True, False], [False, True]])
    v = ds.view([3, 1], targets=np.array([[1, 0], [0, 0]]), known_mask=mask)
    assert len(v) == 2
    assert v[0]["target"].tolist() == [1.0, 0.0]
    assert v[1]["mask"].tolist() == [False, True]
    assert torch.equal(v[0]["input"], ds[3]["input"])
    assert v.base_indices.tolist() == [3, 1]
    vv = v.view([1])
    assert vv.base_indices.tolist() == [1] and vv[0]["mask"].tolist() == [False, True]
    assert ds.targets[3].tolist() == [0, 0]  # parent untouched
    with pytest.raises(IndexError):
        ds.view([4])


def test_bad_inputs_name_what_is_wrong():
    with pytest.raises(ValueError, match=r"row 1, column 0 is 2"):
        check_targets([[0, 1], [2, 0]])
    with pytest.raises(ValueError, match=r"row 0, column 1 is nan"):
        check_targets(np.array([[0, np.nan]]))
    with pytest.raises(ValueError, match="3 columns but there are 2 classes"):
        ArrayDataset(np.zeros((1, 2)), [[0, 1, 1]], ["a", "b"])
    with pytest.raises(ValueError, match="feature row 1, column 2 is not finite"):
        ArrayDataset(np.array([[0.0, 1, 2], [1, 2, np.nan]]), [[0], [1]], ["a"])
    with pytest.raises(ValueError, match="'a' appears twice"):
        ArrayDataset(np.zeros((1, 2)), [[0, 1]], ["a", "a"])
    with pytest.raises(ValueError, match="known_mask shape"):
        ArrayDataset(np.zeros((1, 2)), [[0, 1]], ["a", "b"], known_mask=np.ones((1, 3), bool))


def test_image_dataset_loads_fails_fast_or_skips(tmp_path):
    Image.fromarray(np.full((5, 7, 3), 9, np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    paths = ["a.png", "broken.jpg", "missing.png"]
    y = np.array([[1, 0], [0, 1], [1, 1]])
    ds = ImageListDataset(paths, y, ["x", "y"], root=tmp_path)
    img = ds[0]["input"]
    assert img.dtype == torch.uint8 and tuple(img.shape) == (3, 5, 7)
    for i, name in [(1, "broken.jpg"), (2, "missing.png")]:
        with pytest.raises(ImageLoadError, match=name):
            ds[i]
    skip = ImageListDataset(paths, y, ["x", "y"], root=tmp_path, on_error="skip")
    batch = collate_batch([skip[i] for i in range(3)])
    assert batch["skipped"] == 2 and batch["input"].shape == (1, 3, 5, 7)
    assert batch["index"].tolist() == [0]


def test_collate_stacks_and_indexes():
    ds = _ds()
    b = collate_batch([ds[i] for i in range(4)])
    assert b["input"].shape == (4, 3) and b["target"].shape == (4, 2)
    assert b["mask"].dtype == torch.bool and b["index"].tolist() == [0, 1, 2, 3] and b["skipped"] == 0


def test_registry_errors_suggest_close_names():
    assert "multidigits20" in list_datasets()
    with pytest.raises(KeyError, match="did you mean 'multidigits20'"):
        load_dataset("multidigit20")


def test_batch_sends_small_tensors_by_value_and_images_through_shared_memory():
    # a worker's batch crosses to the training process with ForkingPickler: one shared-memory transfer per
    # tensor (a socket connection each); target, mask and index (a few KB) must travel inside the message
    import pickle
    from multiprocessing.reduction import ForkingPickler

    imgs = np.random.default_rng(0).integers(0, 256, (4, 3, 64, 64), dtype=np.uint8)
    ds = ArrayDataset(imgs, np.array([[1, 0], [0, 1], [1, 1], [0, 0]]), ["cat", "dog"],
                      known_mask=np.array([[True, False]] * 4))
    batch = collate_batch([ds[i] for i in range(4)])
    batch["input"] = batch["input"].float()  # 196 KB: over SMALL_TENSOR_BYTES
    ForkingPickler.dumps(batch)
    assert batch["input"].is_shared()
    assert not any(batch[k].is_shared() for k in ("target", "mask", "index"))
    back = pickle.loads(pickle.dumps(batch))
    assert type(back) is type(batch) and list(back) == list(batch)
    for k in ("input", "target", "mask", "index"):
        assert back[k].dtype == batch[k].dtype and torch.equal(back[k], batch[k])
    assert back["skipped"] == 0


def test_worker_batches_equal_in_process_batches():
    ds = _ds()
    ds.known_mask = np.array([[True, False], [True, True], [False, True], [True, True]])
    ref = collate_batch([ds[i] for i in range(4)])
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=1, collate_fn=collate_batch)
    (got,) = list(loader)
    assert list(got) == list(ref)
    for k in ("input", "target", "mask", "index"):
        assert got[k].dtype == ref[k].dtype and torch.equal(got[k], ref[k])
