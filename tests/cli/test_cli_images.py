"""Image runs end to end, as a new user would: a custom CSV image dataset, predict on a folder, export."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from labelwise.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore:`torch.jit:FutureWarning")

CLASSES = ["blue", "green", "red"]  # the CSV format sorts inferred class names
COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def _image(rng, labels):
    img = np.full((24, 24, 3), 128, dtype=np.uint8) + rng.integers(0, 20, (24, 24, 3), dtype=np.uint8)
    for i, name in enumerate(["red", "green", "blue"]):
        if name in labels:
            y, x = (i * 8) % 16, rng.integers(0, 12)
            img[y:y + 8, x:x + 12] = COLORS[name]
    return Image.fromarray(img)


@pytest.fixture(scope="module")
def image_dataset(tmp_path_factory):
    """``<root>/{train,val,test}.csv`` (``path,labels`` with space-separated names) and PNGs in ``images/``."""
    root = tmp_path_factory.mktemp("tags")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 48), ("val", 24), ("test", 24)):
        rows = []
        for i in range(n):
            labels = [c for c in ("red", "green", "blue") if rng.random() < 0.5] or ["red"]
            rel = f"images/{split}_{i:03d}.png"
            _image(rng, labels).save(root / rel)
            rows.append((rel, " ".join(labels)))
        with open(root / f"{split}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["path", "labels"])
            w.writerows(rows)
    return root


@pytest.fixture(scope="module")
def image_run(tmp_path_factory, image_dataset):
    tmp = tmp_path_factory.mktemp("image_run")
    cfg = tmp / "tags.yaml"
    cfg.write_text(
        "name: tags\n"
        f"data: {{name: csv, root: '{image_dataset}', image_size: 32}}\n"
        "model: {name: ofml, backbone: test_resnet}\n"
        "trainer: {max_epochs: 2, batch_size: 16, lr: 0.003, accelerator: cpu, progress: false, tensorboard: false,"
        " tune_thresholds: true}\n"
    )
    run = tmp / "run"
    assert main(["train", "--config", str(cfg), "--output", str(run)]) == 0
    return run


def test_train_on_custom_csv_images(image_run):
    for rel in ("config.yaml", "metrics.csv", "test_metrics.json", "checkpoints/best.safetensors",
                "report/ap_per_class_test.png", "report/pr_curves_val.png", "report/learning_curves.png"):
        assert (image_run / rel).is_file(), rel
    side = json.loads((image_run / "checkpoints" / "best.json").read_text())
    assert side["class_names"] == CLASSES and len(side["thresholds"]["per_class"]) == 3


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_predict_folder_csv_and_json(image_run, image_dataset, tmp_path, capsys):
    out = tmp_path / "preds.csv"
    assert main(["predict", "--checkpoint", str(image_run), str(image_dataset / "images"), "-o", str(out),
                 "--threshold", "0.4"]) == 0
    rows = _read_csv(out)
    assert len(rows) == 96 and list(rows[0]) == ["path", "labels", *CLASSES]
    for r in rows:
        scores = {c: float(r[c]) for c in CLASSES}
        assert all(0.0 <= v <= 1.0 for v in scores.values())
        expected = [c for c in CLASSES if scores[c] >= 0.4 - 5e-7]
        got = [x for x in r["labels"].split(" ") if x]  # the data's separator (a space)
        assert got == expected or (set(expected) ^ set(got)) <= {c for c in CLASSES if abs(scores[c] - 0.4) < 1e-6}
    # JSON, from a CSV list plus a single image; per-class thresholds from the checkpoint
    js = tmp_path / "preds.json"
    single = image_dataset / "images" / "test_000.png"
    assert main(["predict", "--checkpoint", str(image_run / "checkpoints" / "best.json"), str(image_dataset / "test.csv"),
                 str(single), "-o", str(js), "--per-class-thresholds", "--batch-size", "7"]) == 0
    doc = json.loads(js.read_text())
    side = json.loads((image_run / "checkpoints" / "best.json").read_text())
    th = side["thresholds"]["per_class"]
    assert doc["class_names"] == CLASSES and doc["thresholds"] == pytest.approx(th)
    assert len(doc["predictions"]) == 25
    for item in doc["predictions"]:
        assert item["labels"] == [c for c, t in zip(CLASSES, th) if item["scores"][c] >= t] or any(
            abs(item["scores"][c] - t) < 1e-6 for c, t in zip(CLASSES, th))
    assert doc["predictions"][0]["scores"] == doc["predictions"][-1]["scores"]  # test_000 twice, same scores
    assert "25 image(s) predicted with per-class thresholds" in capsys.readouterr().out


def test_predict_scores_equal_evaluation_scores(image_run, image_dataset):
    """Predictor scores are the trainer's scores of the same images (same transform, same weights)."""
    from labelwise.engine import Trainer
    from labelwise.inference import Predictor
    from labelwise.run import build_datasets, load_model

    model, cfg, _ = load_model(image_run)
    test = build_datasets(cfg, splits=("test",)).test
    ref, _ = Trainer(cfg.trainer).predict(model, test)
    pred = Predictor.from_checkpoint(image_run, device="cpu", batch_size=5)
    scores, kept = pred.predict_scores([test.path(i) for i in range(len(test))], progress=False)
    assert kept.tolist() == list(range(len(test)))
    np.testing.assert_allclose(scores, ref, atol=1e-5)


def test_unreadable_image_is_named_or_skipped(image_run, image_dataset, tmp_path, capsys):
    bad = tmp_path / "imgs"
    bad.mkdir()
    Image.open(image_dataset / "images" / "val_000.png").save(bad / "ok.png")
    (bad / "broken.png").write_bytes(b"not a png")
    assert main(["predict", "--checkpoint", str(image_run), str(bad), "-o", str(tmp_path / "p.csv")]) == 2
    assert "broken.png" in capsys.readouterr().err
    with pytest.warns(RuntimeWarning, match="broken.png"):
        assert main(["predict", "--checkpoint", str(image_run), str(bad), "-o", str(tmp_path / "p.csv"),
                     "--skip-unreadable"]) == 0
    assert [r["path"].endswith("ok.png") for r in _read_csv(tmp_path / "p.csv")] == [True]


def test_export_onnx_and_torchscript_agree_on_real_images(image_run, image_dataset, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from labelwise.run import build_datasets, load_model

    onnx_path, ts_path = tmp_path / "m.onnx", tmp_path / "m.pt"
    assert main(["export", "--checkpoint", str(image_run), "--format", "onnx", "-o", str(onnx_path)]) == 0
    assert main(["export", "--checkpoint", str(image_run), "--format", "torchscript", "-o", str(ts_path)]) == 0
    model, cfg, _ = load_model(image_run)
    test = build_datasets(cfg, splits=("test",)).test
    x = torch.stack([test[i]["input"] for i in range(8)]).float()
    with torch.no_grad():
        ref = model(x)["logits"].numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"input": x.numpy()})[0], ref, atol=1e-4, rtol=0)
    ts = torch.jit.load(str(ts_path))
    np.testing.assert_allclose(ts(x).detach().numpy(), ref, atol=1e-4, rtol=0)
