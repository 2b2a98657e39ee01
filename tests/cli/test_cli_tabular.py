"""`labelwise train/evaluate/export` end to end on a tiny tabular (MULAN ARFF) dataset, in-process."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from labelwise.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore:`torch.jit:FutureWarning")


def _config(tmp_path, root, **trainer):
    t = {"max_epochs": 2, "batch_size": 32, "lr": 0.01, "accelerator": "cpu", "progress": False,
         "tensorboard": False, "tune_thresholds": True, **trainer}
    text = (
        "name: toy\n"
        f"data: {{name: mulan, root: '{root}', val_split: null, val_fraction: 0.25}}\n"
        "model: {name: mlp, hidden: [16]}\n"
        f"trainer: {json.dumps(t)}\n"
    )
    p = tmp_path / "toy.yaml"
    p.write_text(text)
    return p


@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory, toy_mulan):
    tmp = tmp_path_factory.mktemp("tabular_run")
    cfg = _config(tmp, toy_mulan)
    run = tmp / "run"
    assert main(["train", "--config", str(cfg), "--output", str(run)]) == 0
    return cfg, run


def test_train_writes_run_directory(tabular_run, capsys):
    cfg, run = tabular_run
    for rel in ("config.yaml", "metrics.csv", "test_metrics.json", "checkpoints/best.json", "checkpoints/best.safetensors",
                "checkpoints/last.json", "report/ap_per_class_val.png", "report/ap_per_class_test.png",
                "report/learning_curves.png"):
        assert (run / rel).is_file(), rel
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]  # epochs are numbered from 1
    sidecar = json.loads((run / "checkpoints" / "best.json").read_text())
    assert sidecar["class_names"] == ["lab0", "lab1", "lab2"]
    assert sidecar["run_config"]["model"]["in_features"] == 6  # filled in from the data, so it can be rebuilt
    assert len(sidecar["thresholds"]["per_class"]) == 3


def test_train_output_is_a_table(toy_mulan, tmp_path, capsys):
    cfg = _config(tmp_path, toy_mulan, max_epochs=1)
    assert main(["train", "--config", str(cfg), "--output", str(tmp_path / "r"), "trainer.lr=0.02"]) == 0
    out = capsys.readouterr().out
    assert "test metrics" in out and "run directory:" in out
    for key in ("mAP", "CF1", "OF1", "CP", "CR", "OP", "OR"):
        assert any(line.split()[:1] == [key] for line in out.splitlines()), key
    assert json.loads((tmp_path / "r" / "checkpoints" / "last.json").read_text())["run_config"]["trainer"]["lr"] == 0.02


def test_evaluate_equals_trainer_metrics(tabular_run, tmp_path, capsys):
    _, run = tabular_run
    test_metrics = json.loads((run / "test_metrics.json").read_text())
    out_json = tmp_path / "ev.json"
    assert main(["evaluate", "--checkpoint", str(run), "--split", "test", "--json", str(out_json)]) == 0
    ev = json.loads(out_json.read_text())
    for k, v in test_metrics.items():
        assert ev[k] == v, k
    # the carved validation split is rebuilt identically: metrics equal the best checkpoint's
    best = json.loads((run / "checkpoints" / "best.json").read_text())["metrics"]
    assert main(["evaluate", "--checkpoint", str(run / "checkpoints" / "best.json"), "--split", "val",
                 "--json", str(out_json)]) == 0
    ev = json.loads(out_json.read_text())
    assert ev["mAP"] == pytest.approx(best["mAP"], abs=1e-12) and ev["OF1"] == pytest.approx(best["OF1"], abs=1e-12)


def test_resume_continues_metrics(toy_mulan, tmp_path):
    cfg = _config(tmp_path, toy_mulan, max_epochs=1)
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "-o", str(run), "--no-test"]) == 0
    # a second run into the same directory without --resume is refused
    assert main(["train", "--config", str(cfg), "-o", str(run)]) == 2
    assert main(["train", "--config", str(cfg), "--resume", str(run), "trainer.max_epochs=2", "--no-test"]) == 0
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]


def test_export_tabular_onnx(tabular_run, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    _, run = tabular_run
    out = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(run), "--format", "onnx", "--output", str(out)]) == 0
    assert "max abs diff" in capsys.readouterr().out
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"input": np.zeros((4, 6), dtype=np.float32)})[0].shape == (4, 3)


def test_datasets_and_models_commands(toy_mulan, capsys):
    assert main(["datasets", "list"]) == 0
    assert "mulan" in capsys.readouterr().out.split()
    assert main(["models", "list"]) == 0
    assert {"ofml", "mlp"} <= set(capsys.readouterr().out.split())
    assert main(["datasets", "stats", "mulan", "--root", str(toy_mulan), "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "60 samples, 3 labels" in out and "cardinality" in out and "lab0" in out
    assert main(["datasets", "stats", "mulan", "--root", str(toy_mulan), "--option", "label_order=bogus"]) == 2
