"""The MULAN cross-validation pipeline: splits, fold-wise preprocessing, model selection, tables, Wilcoxon."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.stats import wilcoxon

from labelwise.data.splits import train_val_test
from labelwise.metrics import mulan_report
from labelwise.models import create_model
from labelwise.sampling import create_sampler
from labelwise.tabular import (
    METRICS,
    FeatureScaler,
    MulanProtocol,
    document_frequency_selection,
    drop_rare_labels,
    fit_tabular,
    load_benchmark_data,
    make_splits,
    predict_scores,
    run_benchmark,
    save_results,
    summary_table,
    wilcoxon_table,
)
from labelwise.tabular import protocol as protocol_mod

MULAN = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "mulan"


# -- splits -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_folds", [2, 5])
def test_test_half_splits_equal_train_val_test(make_data, n_folds):
    _, Y = make_data(150, 3, 4, seed=0)
    splits = make_splits(Y, n_folds=n_folds, seed=3)
    for fold, (tr, va, te) in enumerate(splits):
        ref = train_val_test(Y, n_splits=n_folds, fold=fold, seed=3)
        for a, b in zip((tr, va, te), ref):
            np.testing.assert_array_equal(a, b)


def test_train_split_scheme_keeps_whole_test_fold(make_data):
    _, Y = make_data(150, 3, 4, seed=1)
    half = make_splits(Y, n_folds=5, seed=0)
    inner = make_splits(Y, n_folds=5, seed=0, validation="train_split", val_fraction=0.2)
    tests = np.sort(np.concatenate([te for _, _, te in inner]))
    np.testing.assert_array_equal(tests, np.arange(150))  # the held-out folds partition the data
    for (tr, va, te), (_, va_h, te_h) in zip(inner, half):
        assert not set(tr) & set(va) and not set(tr) & set(te) and not set(va) & set(te)
        np.testing.assert_array_equal(te, np.sort(np.concatenate([va_h, te_h])))
        assert abs(len(va) - 0.2 * (len(tr) + len(va))) <= 2
    with pytest.raises(ValueError, match="validation"):
        make_splits(Y, validation="nested")


# -- preprocessing ------------------------------------------------------------------------------------
def test_scaler_uses_only_training_statistics():
    Xtr = np.array([[0.0, 5.0], [2.0, 7.0]])
    Xte = np.array([[4.0, 9.0]])
    sc = FeatureScaler("minmax").fit(Xtr)
    np.testing.assert_allclose(sc.transform(Xte), [[2.0, 2.0]])  # not clipped, not refit
    st = FeatureScaler("standard").fit(Xtr)
    np.testing.assert_allclose(st.transform(Xte), (Xte - Xtr.mean(0)) / Xtr.std(0), rtol=1e-6)
    np.testing.assert_array_equal(FeatureScaler("none").fit(Xtr).transform(Xte), Xte)
    with pytest.raises(ValueError, match="scaling"):
        FeatureScaler("robust")
    with pytest.raises(ValueError, match="features"):
        sc.transform(np.zeros((1, 3)))


def test_sparse_minmax_is_maxabs_and_stays_sparse():
    X = sp.csr_matrix(np.array([[0.0, 3.0, 0.0], [2.0, 0.0, 0.0], [4.0, 6.0, 0.0]]))
    out = FeatureScaler("minmax").fit_transform(X)
    assert sp.issparse(out)
    np.testing.assert_allclose(out.toarray(), FeatureScaler("minmax").fit_transform(X.toarray()))


def test_pipeline_fits_scaler_on_training_rows_only(monkeypatch, synth_mulan_root):
    seen = []

    class Recording(FeatureScaler):
        def fit(self, X):
            seen.append(np.asarray(X).copy())
            return super().fit(X)

    monkeypatch.setattr(protocol_mod, "FeatureScaler", Recording)
    protocol = MulanProtocol(strategies=("random",), epochs=1, n_folds=3, run_folds=2, warmup_epochs=1,
                             model_params={"mlp": {"hidden": (8,)}})
    run_benchmark([str(synth_mulan_root / "synth_a")], protocol=protocol, log=None)
    data = load_benchmark_data(str(synth_mulan_root / "synth_a"), min_positives=protocol.min_positives)
    splits = make_splits(data.Y, n_folds=3, seed=0)
    assert len(seen) == 2
    for fitted, (tr, _, _) in zip(seen, splits):
        np.testing.assert_array_equal(fitted, data.X[tr])


@pytest.mark.parametrize("min_pos, expected", [(0, [0, 1, 3]), (1, [0, 1, 3]), (3, [0, 3]), (5, [])])
def test_drop_rare_labels(min_pos, expected):
    Y = np.array([[1, 1, 0, 1], [1, 0, 0, 1], [1, 0, 0, 1], [0, 0, 0, 1]])
    assert drop_rare_labels(Y, min_pos).tolist() == expected


def test_document_frequency_selection_matches_counts_and_table1_sizes():
    rng = np.random.default_rng(0)
    X = sp.random(50, 40, density=0.2, random_state=1, format="csr")
    df = (X.toarray() != 0).sum(0)
    got = document_frequency_selection(X, 10)
    assert sorted(got.tolist()) == got.tolist() and len(got) == 10
    assert df[got].min() >= np.delete(df, got).max()
    np.testing.assert_array_equal(got, document_frequency_selection(X.toarray(), 10))
    for d, frac, k in ((47236, 0.02, 944), (23146, 0.10, 2314), (21924, 0.10, 2192)):
        Xd = sp.csr_matrix((3, d))
        assert len(document_frequency_selection(Xd, frac)) == k
    assert len(document_frequency_selection(rng.random((3, 5)), 1.0)) == 5
    with pytest.raises(ValueError, match="fraction"):
        document_frequency_selection(X, 1.5)


def test_protocol_validation_and_feature_selection_patterns():
    p = MulanProtocol()
    assert p.features_kept("rcv1subset2") == 0.02 and p.features_kept("yahoo-Arts1") == 0.10
    assert p.features_kept("scene") is None
    assert MulanProtocol(feature_selection={}).features_kept("rcv1subset1") is None
    with pytest.raises(KeyError):
        MulanProtocol(strategies=("random", "adaptve"))
    with pytest.raises(ValueError, match="validation"):
        MulanProtocol(validation="cv")
    with pytest.raises(ValueError, match="run_folds"):
        MulanProtocol(n_folds=5, run_folds=6)


# -- the training loop ---------------------------------------------------------------------------------
def test_best_epoch_weights_are_a_deep_copy(make_data):
    X, Y = make_data(200, 5, 3, seed=2)
    X = X.astype(np.float32)
    torch.manual_seed(0)
    model = create_model("mlp", num_classes=3, in_features=5, hidden=(16,), dropout=0.0)
    sampler = create_sampler("random", Y, batch_size=32, seed=0)
    # the validation targets are the complement: the better the model fits, the worse its validation AUC,
    # so the best epoch is an early one and the final weights must be restored from the copy
    res = fit_tabular(model, X, Y, sampler=sampler, epochs=6, lr=0.02, X_val=X, Y_val=1 - Y)
    assert res.best_epoch < 6
    final = mulan_report(predict_scores(model, X), 1 - Y)["macro_auc"]
    assert final == pytest.approx(res.best_score, abs=1e-12)
    assert res.history[res.best_epoch - 1]["val_macro_auc"] == res.best_score
    assert max(r["val_macro_auc"] for r in res.history) == res.best_score


def test_lower_is_better_monitor_and_early_stopping(make_data):
    X, Y = make_data(200, 5, 3, seed=2)
    torch.manual_seed(0)
    model = create_model("mlp", num_classes=3, in_features=5, hidden=(16,), dropout=0.0)
    res = fit_tabular(model, X, Y, sampler=create_sampler("random", Y, batch_size=32), epochs=30, lr=0.02,
                      X_val=X, Y_val=1 - Y, monitor="ranking_loss", patience=2, min_epochs=1)
    assert res.stopped_early and len(res.history) < 30
    assert res.best_score == min(r["val_ranking_loss"] for r in res.history)


def test_strategies_share_the_warmup(make_data):
    X, Y = make_data(150, 5, 4, seed=4)
    states = []
    for strategy in ("random", "hard", "adaptive", "chain"):
        kw = {} if strategy == "random" else {"warmup_epochs": 2, "features": X}
        sampler = create_sampler(strategy, Y, batch_size=16, seed=7, **kw)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(7)
            model = create_model("mlp", num_classes=4, in_features=5, hidden=(8,))
            fit_tabular(model, X, Y, sampler=sampler, epochs=2)
        states.append(model.state_dict())
    for st in states[1:]:
        for k in st:
            torch.testing.assert_close(st[k], states[0][k], rtol=0, atol=0)


def test_sampler_receives_the_training_step_losses(make_data):
    X, Y = make_data(64, 4, 3, seed=5)
    sampler = create_sampler("hard", Y, batch_size=16, warmup_epochs=1, seed=0)
    model = create_model("mlp", num_classes=3, in_features=4, hidden=(8,), dropout=0.0)
    fit_tabular(model, X, Y, sampler=sampler, epochs=1)
    assert sampler.seen.all() and (sampler.losses > 0).all()


def test_bad_inputs_are_named(make_data):
    X, Y = make_data(20, 3, 2, seed=0)
    model = create_model("mlp", num_classes=2, in_features=3)
    s = create_sampler("random", Y, batch_size=8)
    with pytest.raises(ValueError, match="targets must be 0 or 1"):
        fit_tabular(model, X, Y * 2, sampler=s, epochs=1)
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="row 3, column 1"):
        fit_tabular(model, Xn, Y, sampler=s, epochs=1)
    with pytest.raises(KeyError, match="monitor"):
        fit_tabular(model, X, Y, sampler=s, epochs=1, X_val=X, Y_val=Y, monitor="auc")


# -- tables and the Wilcoxon test -------------------------------------------------------------------------
def _records(values: dict[str, list[float]], metric: str) -> list[dict]:
    return [{"dataset": f"d{i}", "model": "mlp", "strategy": s, "fold": 0, metric: v}
            for s, vs in values.items() for i, v in enumerate(vs)]


@pytest.mark.parametrize("metric, sign", [("macro_auc", 1), ("ranking_loss", -1), ("one_error", -1)])
def test_wilcoxon_direction_and_pvalue_match_scipy(metric, sign):
    base = np.array([0.30, 0.41, 0.52, 0.25, 0.60, 0.45, 0.38, 0.50])
    delta = np.array([0.02, 0.01, 0.03, -0.005, 0.04, 0.015, 0.025, 0.012])
    improved = base + sign * delta  # better in the metric's own direction on 7 of 8 datasets
    row = wilcoxon_table(_records({"random": base.tolist(), "adaptive": improved.tolist()}, metric), [metric])[0]
    ref = wilcoxon(delta)
    assert row["p_value"] == pytest.approx(ref.pvalue)
    assert (row["better"], row["worse"], row["verdict"]) == (7, 1, "win")
    assert row["r_plus"] > row["r_minus"]
    worse = wilcoxon_table(_records({"random": improved.tolist(), "adaptive": base.tolist()}, metric), [metric])[0]
    assert worse["verdict"] == "loss" and worse["p_value"] == pytest.approx(ref.pvalue)
    one = wilcoxon_table(_records({"random": base.tolist(), "adaptive": improved.tolist()}, metric), [metric],
                         alternative="greater")[0]
    assert one["p_value"] == pytest.approx(wilcoxon(delta, alternative="greater").pvalue)


def test_wilcoxon_degenerate_cases():
    same = wilcoxon_table(_records({"random": [0.5, 0.6, 0.7], "hard": [0.5, 0.6, 0.7]}, "macro_auc"), ["macro_auc"])
    assert same[0]["p_value"] == 1.0 and same[0]["verdict"] == "tie"
    one = wilcoxon_table(_records({"random": [0.5], "hard": [0.6]}, "macro_auc"), ["macro_auc"])
    assert math.isnan(one[0]["p_value"]) and one[0]["verdict"] == "tie"


def test_summary_mean_and_std_over_folds():
    recs = [{"dataset": "d", "model": "m", "strategy": "random", "fold": f, "macro_f1": v, "selection_pressure": None}
            for f, v in enumerate([0.2, 0.4, 0.9])]
    row = summary_table(recs, ["macro_f1"])[0]
    assert row["folds"] == 3
    assert row["macro_f1_mean"] == pytest.approx(0.5)
    assert row["macro_f1_std"] == pytest.approx(np.std([0.2, 0.4, 0.9]))


# -- end to end ---------------------------------------------------------------------------------------------
def test_benchmark_end_to_end_tables_and_outputs(tmp_path, synth_mulan_root):
    protocol = MulanProtocol(epochs=3, warmup_epochs=1, n_folds=3, run_folds=2, selection_pressures=(2.0, 16.0),
                             model_params={"mlp": {"hidden": (16,)}}, min_positives=5)
    names = [str(synth_mulan_root / "synth_a"), str(synth_mulan_root / "synth_b")]
    result = run_benchmark(names, protocol=protocol, output_dir=tmp_path, log=None)
    # 2 datasets x 2 folds x (1 random + 3 strategies x 2 pressures) candidates, one selected per strategy
    assert len(result.records) == 2 * 2 * 7
    assert len(result.selected) == 2 * 2 * 4
    for r in result.selected:
        if r["strategy"] == "random":
            assert r["selection_pressure"] is None
        else:
            rivals = [c for c in result.records if (c["dataset"], c["fold"], c["strategy"]) ==
                      (r["dataset"], r["fold"], r["strategy"])]
            assert r["val_macro_auc"] == max(c["val_macro_auc"] for c in rivals)
        for m in METRICS:
            assert 0.0 <= r[m] <= 1.0
    summary = result.summary()
    assert {(r["dataset"], r["strategy"]) for r in summary} == {
        (d, s) for d in ("synth_a", "synth_b") for s in ("random", "hard", "adaptive", "chain")}
    wil = result.wilcoxon()
    assert len(wil) == 3 * len(METRICS)
    assert all(r["n_datasets"] == 2 for r in wil)
    assert all(isinstance(r["p_value"], float) for r in wil)
    for name in ("candidates.csv", "folds.csv", "summary.csv", "wilcoxon.csv", "summary.md", "results.json"):
        assert (tmp_path / name).stat().st_size > 0
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["protocol"]["n_folds"] == 3 and len(payload["records"]) == len(result.records)
    assert "Macro-AUC" in (tmp_path / "summary.md").read_text()
    hist = json.loads((tmp_path / "histories.json").read_text())
    assert len(hist) == len(result.records) and all(len(h) == 3 for h in hist.values())


@pytest.mark.skipif(not (MULAN / "emotions").is_dir(), reason="shared MULAN collection absent")
def test_emotions_two_folds_two_epochs(tmp_path):
    protocol = MulanProtocol(epochs=2, warmup_epochs=1, n_folds=2, selection_pressures=(2.0,))
    result = run_benchmark(["emotions"], protocol=protocol, log=None)
    rows = result.summary()
    assert [r["strategy"] for r in rows] == ["random", "hard", "adaptive", "chain"]
    assert all(r["folds"] == 2 for r in rows)
    assert all(0.4 < r["macro_auc_mean"] <= 1.0 for r in rows)
    assert result.datasets["emotions"]["n_samples"] == 593
    paths = save_results(result, tmp_path)
    assert "emotions" in paths["summary.md"].read_text()


def test_first_fold_pressure_selection_and_parallel_jobs_agree(synth_mulan_root):
    protocol = MulanProtocol(strategies=("random", "adaptive"), epochs=2, warmup_epochs=1, n_folds=3,
                             selection_pressures=(2.0, 64.0), pressure_selection="first_fold", min_positives=5,
                             model_params={"mlp": {"hidden": (8,)}})
    names = [str(synth_mulan_root / "synth_a"), str(synth_mulan_root / "synth_b")]
    seq = run_benchmark(names, protocol=protocol, log=None)
    for ds in ("synth_a", "synth_b"):
        recs = [r for r in seq.records if r["dataset"] == ds and r["strategy"] == "adaptive"]
        first = [r for r in recs if r["fold"] == 0]
        later = [r for r in recs if r["fold"] > 0]
        assert len(first) == 2 and len(later) == 2 and all(r["selected"] for r in later)
        chosen = next(r["selection_pressure"] for r in first if r["selected"])
        assert {r["selection_pressure"] for r in later} == {chosen}
    par = run_benchmark(names, protocol=protocol, log=None, jobs=2)
    key = ("dataset", "strategy", "fold", "selection_pressure", "macro_auc", "ranking_loss", "best_epoch")
    assert [tuple(r[k] for k in key) for r in par.records] == [tuple(r[k] for k in key) for r in seq.records]
