"""The resumable batch-selection sweep: the JSON-lines store, skipping finished cells, progress, profiles and
the published-code options of the protocol and the training loop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from labelwise.metrics import mulan_report
from labelwise.models import create_model
from labelwise.sampling import create_sampler
from labelwise.tabular import MulanProtocol
from labelwise.tabular.profiles import PROFILES, profile_protocol
from labelwise.tabular.sweep import (
    ResultStore,
    SweepSpec,
    protocol_fingerprint,
    results_rows,
    run_sweep,
    selected_cells,
    sweep_progress,
)
from labelwise.tabular.training import fit_tabular, predict_scores


def _tiny_protocol(**kw):
    base = dict(models=("mlp",), strategies=("random", "adaptive"), model_params={"mlp": {"hidden": (8,)}},
                n_folds=2, epochs=2, warmup_epochs=1, batch_size=64, selection_pressures=(8.0, 2.0))
    base.update(kw)
    return MulanProtocol(**base)


def test_store_survives_a_torn_line_and_appends_after_it(tmp_path):
    store = ResultStore(tmp_path / "cells.jsonl")
    store.append({"cell": "a", "fingerprint": "f", "v": 1.0})
    with open(store.path, "ab") as fh:
        fh.write(b'{"cell": "b", "fingerprint": "f", "v": 2')  # a writer killed mid-record
    assert [r["cell"] for r in store.records()] == ["a"]
    store.append({"cell": "c", "fingerprint": "f", "v": float("nan")})
    recs = store.records()
    assert [r["cell"] for r in recs] == ["a", "c"] and np.isnan(recs[1]["v"])
    assert store.done_keys() == {("a", "f"), ("c", "f")}
    with pytest.raises(KeyError, match="cell"):
        store.append({"v": 1})


def test_store_stays_valid_when_a_writer_is_killed(tmp_path):
    path = tmp_path / "cells.jsonl"
    code = (
        "import sys; from labelwise.tabular.sweep import ResultStore\n"
        "s = ResultStore(sys.argv[1])\n"
        "i = 0\n"
        "while True:\n"
        "    s.append({'cell': f'c{i}', 'fingerprint': 'f', 'pad': 'x' * 5000}); i += 1\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], env={**os.environ})
    deadline = time.time() + 20
    while (not path.exists() or path.stat().st_size < 60_000) and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the writer process ended on its own (import error?)"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    recs = ResultStore(path).records()
    assert len(recs) >= 5
    assert [r["cell"] for r in recs] == [f"c{i}" for i in range(len(recs))]  # every complete record, in order
    ResultStore(path).append({"cell": "after", "fingerprint": "f"})
    assert ResultStore(path).records()[-1]["cell"] == "after"


def test_cells_order_and_fingerprint():
    p = _tiny_protocol()
    spec = SweepSpec(["d1", "d2"], protocol=p)
    keys = [c.key for c in spec.cells()]
    assert len(keys) == 2 * 2 * 3  # datasets x folds x (random + 2 pressures)
    assert keys[:4] == ["d1/mlp/random/s-/fold0", "d1/mlp/adaptive/s8/fold0", "d1/mlp/random/s-/fold1",
                        "d1/mlp/adaptive/s8/fold1"]  # the first pressure runs over all folds first
    fp = protocol_fingerprint(p, "mlp")
    assert fp == protocol_fingerprint(_tiny_protocol(models=("mlp", "dela")), "mlp")  # the grid may grow
    assert fp != protocol_fingerprint(_tiny_protocol(epochs=3), "mlp")
    assert fp != protocol_fingerprint(_tiny_protocol(model_params={"mlp": {"hidden": (9,)}}), "mlp")


def test_rerun_skips_finished_cells_and_reports_progress(tmp_path, synth_mulan_root):
    p = _tiny_protocol()
    spec = SweepSpec(["synth_a"], protocol=p, root=synth_mulan_root)
    store = ResultStore(tmp_path / "cells.jsonl")
    assert run_sweep(spec, store, max_cells=2, log=None) == 2
    prog = sweep_progress(spec, store)
    assert (prog["done"], prog["total"]) == (2, 6) and prog["seconds_left"] > 0
    first = store.records()
    assert run_sweep(spec, store, log=None) == 4  # only the 4 pending cells
    assert run_sweep(spec, store, log=None) == 0  # nothing left
    recs = store.records()
    assert len(recs) == 6 and len({r["cell"] for r in recs}) == 6
    assert recs[:2] == first  # finished cells untouched
    assert sweep_progress(spec, store)["done"] == 6
    # a changed training setting makes every cell pending again
    assert len(SweepSpec(["synth_a"], protocol=_tiny_protocol(epochs=3), root=synth_mulan_root).pending(store)) == 6
    sel = selected_cells(recs)
    assert len(sel) == 4  # (random, adaptive) x 2 folds
    for r in sel:
        if r["strategy"] == "adaptive":
            assert sorted(r["pressures_tried"]) == [2.0, 8.0]
            best = max((x for x in recs if x["strategy"] == "adaptive" and x["fold"] == r["fold"]),
                       key=lambda x: x["val_macro_auc"])
            assert r["val_macro_auc"] == best["val_macro_auc"]
    rows = results_rows(sel)
    assert {row["method"] for row in rows} == {"mlp:random", "mlp:adaptive"}
    assert set(rows[0]) >= {"dataset", "method", "seed", "macro_f1", "micro_f1", "macro_auc", "ranking_loss",
                            "hamming_loss", "one_error"}
    json.dumps(rows)


def test_benchmark_help_shows_every_default(capsys):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
    try:
        import batch_selection as bench
    finally:
        sys.path.pop(0)
    with pytest.raises(SystemExit):
        bench.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for needle in ("paper: 100", "short: 40", "paper: none; published: none; short: 6", "paper: 0.0001",
                   "paper: 2,8,16,64", "(default: 0.5)", "(default: minmax)", "(default 2)"):
        assert needle in text, needle
    p = profile_protocol("paper", models=("clif",))
    assert (p.epochs, p.patience, p.lr, p.model_params["clif"]["hidden"]) == (100, None, 1e-4, 768)
    assert PROFILES["short"]["patience"] == 6


def test_published_profile_options():
    p = profile_protocol("published", models=("clif", "dela"))
    assert p.threshold_rule == "gt" and p.keep == "last" and p.scaling_fit == "all"
    assert p.weight_decay_by_strategy == {"random": 0.0} and p.lr_warmup_epochs_by_strategy == {"random": 0}
    assert p.sampler_params["random"] == {"shuffle": False}
    assert p.sampler_params["adaptive"]["imbalance_weights"] is False
    assert p.model_params["clif"]["label_graph"] == "identity"
    with pytest.raises(KeyError, match="unknown profile"):
        profile_protocol("nope", models=("mlp",))


def test_threshold_rule_gt_is_np_round():
    scores = np.array([[0.5, 0.7, 0.2], [0.49, 0.5, 0.51]], dtype=np.float32)
    y = np.array([[1, 1, 0], [0, 1, 1]])
    ge, gt = MulanProtocol(threshold_rule="ge"), MulanProtocol(threshold_rule="gt")
    assert ge.decision_threshold == 0.5
    assert np.array_equal(scores >= gt.decision_threshold, np.round(scores).astype(bool))
    assert np.array_equal(scores.astype(np.float64) >= gt.decision_threshold, np.round(scores).astype(bool))
    assert mulan_report(scores, y, threshold=ge.decision_threshold)["hamming_loss"] == 0.0
    assert mulan_report(scores, y, threshold=gt.decision_threshold)["hamming_loss"] == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="threshold_rule"):
        MulanProtocol(threshold_rule="round")


def test_keep_last_and_lr_warmup(make_data, monkeypatch):
    X, Y = make_data(200, 5, 3, seed=2)
    X = X.astype(np.float32)
    torch.manual_seed(0)
    model = create_model("mlp", num_classes=3, in_features=5, hidden=(16,), dropout=0.0)
    sampler = create_sampler("random", Y, batch_size=32, seed=0)
    res = fit_tabular(model, X, Y, sampler=sampler, epochs=4, lr=0.02, X_val=X, Y_val=1 - Y, keep="last")
    assert res.best_epoch == 4
    assert mulan_report(predict_scores(model, X), 1 - Y)["macro_auc"] == pytest.approx(
        res.history[-1]["val_macro_auc"], abs=1e-12)
    # linear warm-up: the first update at the full rate, then lr * t / W (MLAdaBatch)
    seen = []

    class Spy(torch.optim.Adam):
        def step(self, *a, **k):
            seen.append(self.param_groups[0]["lr"])
            return super().step(*a, **k)

    monkeypatch.setattr(torch.optim, "Adam", Spy)
    fit_tabular(create_model("mlp", num_classes=3, in_features=5, hidden=(4,)), X, Y,
                sampler=create_sampler("random", Y, batch_size=50, seed=0), epochs=2, lr=0.1, lr_warmup_steps=4)
    monkeypatch.undo()
    assert seen == pytest.approx([0.1, 0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="keep"):
        fit_tabular(model, X, Y, sampler=sampler, epochs=1, keep="best-ish")


def test_scaling_fit_all_uses_every_row(make_data):
    from labelwise.tabular.protocol import BenchmarkData, prepare_fold

    X, Y = make_data(60, 3, 2, seed=1)
    X = X.astype(np.float32)
    X[0, 0] = 100.0  # an extreme value in a row that is not a training row
    data = BenchmarkData("t", X, Y, ["a", "b"], [])
    split = (np.arange(20, 60), np.arange(10, 20), np.arange(0, 10))
    train = prepare_fold(data, split, fold=0, protocol=MulanProtocol(strategies=("random",)))
    every = prepare_fold(data, split, fold=0, protocol=MulanProtocol(strategies=("random",), scaling_fit="all"))
    assert float(train.Xtr[:, 0].max()) == pytest.approx(1.0)
    assert float(every.Xtr[:, 0].max()) < 0.2 and float(every.Xte[:, 0].max()) == pytest.approx(1.0)


def test_a_failing_cell_is_left_pending(tmp_path, synth_mulan_root):
    spec = SweepSpec(["synth_a", "no_such_dataset"], protocol=_tiny_protocol(n_folds=2, run_folds=1),
                     root=synth_mulan_root)
    store = ResultStore(tmp_path / "cells.jsonl")
    lines = []
    assert run_sweep(spec, store, log=lines.append) == 3  # synth_a's cells; the missing dataset fails
    assert sum("FAILED no_such_dataset" in line for line in lines) == 3
    assert [c.dataset for c in spec.pending(store)] == ["no_such_dataset"] * 3
