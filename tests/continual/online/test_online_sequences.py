"""Sequences from the real PRS split files (skipped without ../shared/datasets) and the MultiDigits sequence.

Locate the shared data with ``LABELWISE_SHARED_DATASETS`` or next to the repository; a real COCO 2014 copy
(``LABELWISE_COCO_ROOT``) additionally checks the per-task class counts quoted by the DLFL paper.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from labelwise.continual.online import (
    class_groups,
    cocoseq,
    compare_groups,
    load_sequence,
    multidigits_sequence,
    read_prs_split,
)

SHARED = Path(
    os.environ.get("LABELWISE_SHARED_DATASETS")
    or Path(__file__).resolve().parents[3].parent / "shared" / "datasets"
)
PRS = SHARED / "prs_cocoseq_nuswideseq"
needs_prs = pytest.mark.skipif(not (PRS / "dataset").is_dir(), reason=f"PRS split files not found at {PRS}")
COCO_ROOT = os.environ.get("LABELWISE_COCO_ROOT")


@needs_prs
def test_cocoseq_split_files():
    s = read_prs_split(PRS, "coco")
    assert len(s.class_names) == 70 and s.num_tasks == 4
    assert [len(i) for i in s.train_ids] == [8365, 7814, 11603, 7290]
    assert [len(i) for i in s.test_ids] == [1960, 1690, 1400, 1316]
    assert sum(len(i) for i in s.train_ids) == 35072
    # the DLFL paper quotes 6,346 test images; its own per-task numbers (and the files) sum to 6366
    assert sum(len(i) for i in s.test_ids) == 6366
    assert s.order == [0, 3, 1, 2]
    train, test = np.concatenate(s.train_ids), np.concatenate(s.test_ids)
    assert len(np.unique(train)) == len(train) and not np.intersect1d(train, test).size
    g = s.groups()
    assert {k: len(v) for k, v in g.items()} == {"majority": 18, "moderate": 38, "minority": 14}
    assert sorted(np.concatenate(list(g.values())).tolist()) == list(range(70))  # a partition of the classes


@needs_prs
def test_nuswideseq_split_files():
    s = read_prs_split(PRS, "nuswide")
    assert len(s.class_names) == 49 and s.num_tasks == 6
    assert [len(i) for i in s.train_ids] == [17672, 18402, 3623, 1948, 2373, 4730]
    # the paper's total 48,724 disagrees with its own per-task numbers, which sum to 48,748 like the files
    assert sum(len(i) for i in s.train_ids) == 48748
    assert [len(i) for i in s.test_ids] == [250, 294, 738, 585, 200, 299]
    assert sum(len(i) for i in s.test_ids) == 2366  # the paper says 2,367
    assert s.order == [3, 1, 0, 5, 4, 2]
    # ids are positions in TrainImagelist (161,789) / TestImagelist (107,859)
    assert max(i.max() for i in s.train_ids) < 161789 and max(i.max() for i in s.test_ids) < 107859
    g = s.groups()
    assert {k: len(v) for k, v in g.items()} == {"majority": 10, "moderate": 18, "minority": 21}
    assert sorted(np.concatenate(list(g.values())).tolist()) == list(range(49))


def _fake_coco(root: Path, split, rng) -> dict:
    """COCO 2014 annotation files holding every id of the split files (labels: one class of the id's task)."""
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(split.class_names + ["person"])]
    per_task = np.array_split(rng.permutation(70), 4)
    ids = {"train2014": [], "val2014": []}
    anns = {"train2014": [], "val2014": []}
    for kind in (split.train_ids, split.test_ids):
        for t, arr in enumerate(kind):
            for j, img in enumerate(arr.tolist()):
                folder = "train2014" if img % 2 else "val2014"
                ids[folder].append({"id": img, "file_name": f"COCO_{folder}_{img:012d}.jpg"})
                c = int(per_task[t][j % len(per_task[t])])
                anns[folder].append(
                    {
                        "id": len(anns[folder]) + 1,
                        "image_id": img,
                        "category_id": c + 1,
                        "iscrowd": int(j % 7 == 0),
                    }
                )
    (root / "annotations").mkdir(parents=True)
    for folder in ids:
        with open(root / "annotations" / f"instances_{folder}.json", "w") as fh:
            json.dump({"images": ids[folder], "annotations": anns[folder], "categories": cats}, fh)
    return {t: set(per_task[t].tolist()) for t in range(4)}


@needs_prs
def test_cocoseq_built_from_annotations(tmp_path):
    split = read_prs_split(PRS, "coco")
    task_classes = _fake_coco(tmp_path, split, np.random.default_rng(0))
    seq = cocoseq(PRS, tmp_path, transform=None)
    s = seq.summary()
    assert s["num_classes"] == 70 and s["task_ids"] == [0, 3, 1, 2]
    assert s["train_sizes"] == [8365, 7290, 7814, 11603] and s["test_sizes"] == [1960, 1316, 1690, 1400]
    assert seq.num_train == 35072
    for pos, t in enumerate(seq.task_ids):  # crowd annotations count (PRS's maker keeps them)
        assert set(seq.task_classes(pos).tolist()) == task_classes[t]
    assert seq.train.path(0).endswith(".jpg") and s["group_sizes"] == {
        "majority": 18,
        "moderate": 38,
        "minority": 14,
    }
    by_counts = cocoseq(PRS, tmp_path, transform=None, groups="counts")
    assert sum(len(v) for v in by_counts.groups.values()) == 70


@needs_prs
@pytest.mark.skipif(not COCO_ROOT, reason="set LABELWISE_COCO_ROOT to a COCO 2014 copy")
def test_cocoseq_real_coco_class_counts():  # pragma: no cover - needs COCO 2014
    seq = cocoseq(PRS, COCO_ROOT, transform=None)
    # DLFL section 4.3.1: 24, 18, 14 and 14 categories in task0..task3
    by_id = dict(zip(seq.task_ids, [len(seq.task_classes(t)) for t in range(4)]))
    assert by_id == {0: 24, 1: 18, 2: 14, 3: 14}
    diff = compare_groups(seq.groups, class_groups(seq.train_counts()), seq.class_names)
    print("classes where the shipped group differs from the <200/200-900/>900 rule:", diff)


def test_class_groups_thresholds():
    g = class_groups([199, 200, 900, 901])
    assert [g[k].tolist() for k in ("minority", "moderate", "majority")] == [[0], [1, 2], [3]]
    with pytest.raises(ValueError):
        class_groups([1], (900, 200))


def test_multidigits_sequence_shape():
    seq = multidigits_sequence(n_train=500, n_test=600, image_size=24, test_per_class=5, cache=False)
    s = seq.summary()
    assert s["num_classes"] == 80 and len(s["train_sizes"]) == 4
    # tasks have disjoint classes and every image's labels fall inside its task
    classes = [set(seq.task_classes(t).tolist()) for t in range(4)]
    assert all(not (classes[a] & classes[b]) for a in range(4) for b in range(a + 1, 4))
    owner = np.array(seq.info["task_of_class"])
    for pos, t in enumerate(seq.task_ids):
        y = np.asarray(seq.train.targets[seq.train_tasks[pos]], bool)
        assert y.any(1).all() and not y[:, owner != t].any()
    assert sum(s["group_sizes"].values()) == 80
    lo, hi = seq.info["thresholds"]
    assert lo == pytest.approx(200 * seq.num_train / 35072, abs=0.1)
    counts = seq.train_counts()
    assert counts.max() > 10 * max(counts.min(), 1)  # long-tailed
    with pytest.raises(KeyError, match="unknown online sequence"):
        load_sequence("cifar")
