"""benchmarks/mlcil.py and benchmarks/online_cl.py in the pretrained regime: raw results, resume, claims."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
MLCIL_METHODS = {"joint", "finetune", "lwf", "kd", "akd", "er", "derpp", "podnet", "ewc", "rebll", "akd_er",
                 "akd_er_or", "krt", "csc", "agcn", "l2p"}
ONLINE_METHODS = {"finetune", "ewc", "crs", "prs", "prs_ssca", "crs_ssca", "multitask", "gss", "exstream", "ocdm"}
MLCIL_KEYS = ("last_mAP", "avg_mAP", "last_CF1", "last_OF1", "FPR", "forgetting")
ONLINE_KEYS = ("overall_mAP", "overall_CF1", "overall_OF1", "majority_mAP", "moderate_mAP", "minority_mAP")


def _load(name):
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _check_doc(doc, benchmark, keys):
    assert doc["benchmark"] == benchmark and doc["regime"] == "pretrained" and doc["quick"] is True
    assert {"command", "commit", "machine", "profile", "rows"} <= set(doc)
    for row in doc["rows"]:
        assert {"dataset", "method", "seed"} <= set(row)
        for k in keys:
            if k in row:
                assert isinstance(row[k], float) and -1e-9 <= row[k] <= 100.0 + 1e-9, (row["method"], k, row[k])


def test_mlcil_method_names_are_the_schema_names():
    mlcil = _load("mlcil")
    names = set(mlcil.METHOD_KEYS.values())
    assert MLCIL_METHODS <= names
    assert names - MLCIL_METHODS == {"akd_cls", "akd_fixed_decay"}  # the Table 4 / 6 ablation rows
    jobs = mlcil.method_jobs(["md20-B4-C2", "md80-B20-C4"], with_l2p=False)
    first = {m for m, _, _ in jobs["md20-B4-C2"]}
    assert first == names - {"l2p"}  # every name once, ablations on the first scenario
    assert {m for m, _, _ in jobs["md80-B20-C4"]} == {m for _, n, o, _ in mlcil.MAIN
                                                       for m in [mlcil.METHOD_KEYS[mlcil._key(n, o)]]} - {"l2p"}


def test_mlcil_frozen_model_is_adapter_and_head():
    """Frozen mode: the backbone is replaced by the trainable MapAdapter, also for the comparison models."""
    from labelwise.config import load_config
    from labelwise.models.map_adapter import MapAdapter

    mlcil = _load("mlcil")
    cfg = type("Cfg", (), {})()
    cfg.run = load_config({"data": {"name": "multidigits20", "image_size": 32}, "model": {
        "name": "ofml", "backbone": "resnet10t", "backbone_kwargs": {"channels": [32, 64, 128, 256]}}})
    for name in ("finetune", "krt", "csc", "agcn"):
        model = mlcil.build_method_model(cfg, name, 20, frozen_channels=256)
        assert isinstance(model.backbone, MapAdapter), name
        out = model(torch.rand(2, 256, 8, 8))
        assert out["logits"].shape == (2, 20) and out["feature_map"].shape == (2, 256, 8, 8), name


def _mlcil(tmp_path, *extra):
    mlcil = _load("mlcil")
    results = tmp_path / "mlcil.json"
    argv = ["--quick", "--scenarios", "md20-B4-C2", "--results", str(results), "--threads", "1", *extra]
    assert mlcil.main(argv) == 0
    return json.loads(results.read_text())


def test_mlcil_quick_writes_schema_rows_and_resumes(tmp_path, capsys):
    methods = ["joint", "finetune", "rebll"]
    doc = _mlcil(tmp_path, "--seeds", "0", "1", "--methods", *methods)
    _check_doc(doc, "mlcil", MLCIL_KEYS)
    assert {(r["dataset"], r["method"], r["seed"]) for r in doc["rows"]} == {
        ("multidigits20-B4-C2", m, s) for m in methods for s in (0, 1)}
    rebll = next(r for r in doc["rows"] if r["method"] == "rebll")
    assert set(MLCIL_KEYS) <= set(rebll)
    assert "forgetting" not in next(r for r in doc["rows"] if r["method"] == "joint")  # one evaluation only
    cells = tmp_path / "mlcil.cells.jsonl"
    assert len(cells.read_text().splitlines()) == 6
    capsys.readouterr()
    again = _mlcil(tmp_path, "--seeds", "0", "1", "--methods", *methods)
    assert "resuming: 6 finished runs" in capsys.readouterr().out
    assert again["rows"] == doc["rows"] and len(cells.read_text().splitlines()) == 6


@pytest.mark.slow
def test_mlcil_quick_default_methods(tmp_path):
    doc = _mlcil(tmp_path)
    _check_doc(doc, "mlcil", MLCIL_KEYS)
    assert {r["method"] for r in doc["rows"]} == (MLCIL_METHODS - {"l2p"}) | {"akd_cls", "akd_fixed_decay"}


def _online(tmp_path, *extra):
    online = _load("online_cl")
    results = tmp_path / "online_cl.json"
    assert online.main(["--quick", "--results", str(results), "--threads", "1", *extra]) == 0
    return json.loads(results.read_text())


def test_online_method_names_are_the_schema_names():
    online = _load("online_cl")
    assert set(online.METHOD_KEYS) == ONLINE_METHODS | {"multitask_ssca"}  # + the SSCA head's upper bound
    assert online.METHOD_KEYS["prs_ssca"] == ("prs", "ssca") and online.METHOD_KEYS["crs"] == ("crs", "baseline")


def test_online_quick_writes_schema_rows_and_resumes(tmp_path, capsys):
    methods = ["prs", "prs_ssca", "multitask"]
    doc = _online(tmp_path, "--seeds", "0", "1", "--methods", *methods)
    _check_doc(doc, "online_cl", ONLINE_KEYS)
    assert {(r["dataset"], r["method"], r["seed"]) for r in doc["rows"]} == {
        ("multidigits80seq", m, s) for m in methods for s in (0, 1)}
    assert all(set(ONLINE_KEYS) <= set(r) for r in doc["rows"])
    assert len(next(r for r in doc["rows"] if r["method"] == "prs")["memory_counts"]) == 80
    capsys.readouterr()
    again = _online(tmp_path, "--seeds", "0", "1", "--methods", *methods)
    assert "resuming: 6 finished runs" in capsys.readouterr().out
    assert again["rows"] == doc["rows"]


@pytest.mark.slow
def test_online_quick_default_methods(tmp_path):
    doc = _online(tmp_path)
    _check_doc(doc, "online_cl", ONLINE_KEYS)
    assert {r["method"] for r in doc["rows"]} == ONLINE_METHODS | {"multitask_ssca"}


def test_results_tables_render_the_continual_claims(tmp_path):
    """The claims of mlcil.json / online_cl.json against a hand computation (3 seeds, paired t-interval)."""
    tables = _load("results_tables")
    t975 = 4.302652729911275  # Student t, 2 degrees of freedom, 0.975 quantile
    ds = "multidigits20-B4-C2"
    vals = {"rebll": [60.0, 62.0, 61.0], "akd": [55.0, 58.0, 56.0], "kd": [50.0, 50.0, 50.0],
            "finetune": [51.0, 49.0, 53.0]}
    fpr = {"rebll": [1.0, 2.0, 1.5], "kd": [20.0, 25.0, 22.0], "akd": [3.0, 3.0, 3.0], "finetune": [1.0] * 3}
    rows = [{"dataset": ds, "method": m, "seed": s, "last_mAP": v[s], "avg_mAP": v[s] + 10, "last_CF1": 50.0,
             "last_OF1": 50.0, "FPR": fpr[m][s], "forgetting": 5.0} for m, v in vals.items() for s in range(3)]
    (tmp_path / "mlcil.json").write_text(json.dumps({"benchmark": "mlcil", "command": "python benchmarks/mlcil.py",
                                                     "commit": "abc", "regime": "pretrained", "rows": rows}))
    orows = [{"dataset": "multidigits80seq", "method": m, "seed": s, "overall_mAP": o, "overall_CF1": 40.0,
              "overall_OF1": 45.0, "majority_mAP": 70.0, "moderate_mAP": 50.0, "minority_mAP": mi}
             for m, (o, mi) in {"prs": (50.0, 30.0), "prs_ssca": (52.0, 29.0), "crs": (49.0, 25.0)}.items()
             for s in range(3)]
    orows = [dict(r, overall_mAP=r["overall_mAP"] + 0.5 * r["seed"] * (r["method"] == "prs_ssca")) for r in orows]
    (tmp_path / "online_cl.json").write_text(json.dumps({"benchmark": "online_cl", "regime": "pretrained",
                                                         "rows": orows}))
    block = tables.generate(tmp_path)
    assert block.index("### mlcil") < block.index("### online_cl")

    def line(text):
        found = [ln for ln in block.splitlines() if ln.startswith(f"| {text} |")]
        assert len(found) == 1, text
        return [c.strip() for c in found[0].strip("|").split("|")]

    # RebLL - AKD: d = [5, 4, 5], mean 14/3, sd sqrt(1/3), half = t * sd / sqrt(3) = t / 3
    c = line("Table 5: RebLL (AKD + OR) > AKD (last mAP)")
    assert c[1:6] == [ds, "3", "61.00", "56.33", "+4.67"]
    assert c[6] == f"[{14 / 3 - t975 / 3:.2f}, {14 / 3 + t975 / 3:.2f}]" and c[8] == "**confirmed**"
    # KD - Fine-Tuning: d = [-1, 1, -3], mean -1, sd 2, half = t * 2 / sqrt(3): contains 0
    c = line("Table 4: KD > Fine-Tuning (last mAP)")
    half = t975 * 2 / math.sqrt(3)
    assert c[5] == "-1.00" and c[6] == f"[{-1 - half:.2f}, {-1 + half:.2f}]" and c[8] == "**unresolved**"
    # AKD - KD: d = [5, 8, 6] > 0; FPR of RebLL - KD: d = [-19, -23, -20.5] (lower is better)
    assert line("Table 4: AKD (L_cls + L_akd) > KD (last mAP)")[8] == "**confirmed**"
    c = line("Fig. 2b: RebLL's FPR below KD's")
    assert c[5] == f"{(-19 - 23 - 20.5) / 3:+.2f}" and c[8] == "**confirmed**"
    assert "Table 5: + OR > + Replay" not in block  # no akd_er rows: the claim is left out
    # PRS + SSCA - PRS: overall d = [2, 2.5, 3] confirmed; minority d = [-1, -1, -1] (sd 0): refuted
    assert line("DLFL Table 7: PRS + SSCA > PRS (overall mAP)")[8] == "**confirmed**"
    c = line("DLFL Table 7: PRS + SSCA > PRS (minority mAP)")
    assert c[5] == "-1.00" and c[8] == "**refuted**"
    assert line("PRS: PRS > CRS (minority mAP)")[8] == "**confirmed**"
    # the tables: mean ± std of the schema metrics
    assert "| rebll | 3 | 61.00 ± 1.00 | 71.00 ± 1.00 |" in block
    assert "| prs_ssca | 3 | 52.50 ± 0.50 |" in block


def test_cell_store_rows_hold_every_stored_run(tmp_path):
    """Two commands of one profile (e.g. split by scenario) add up: rows() holds both commands' runs."""
    regime = _load("regime")
    path = tmp_path / "mlcil.cells.jsonl"
    p = {"n_train": {"multidigits20": 10}, "seeds": [0]}
    regime.CellStore(path, p).put(("a", "rebll", 0), [{"dataset": "a", "method": "rebll", "seed": 0}])
    second = regime.CellStore(path, {**p, "seeds": [0, 1]})
    second.put(("b", "rebll", 1), [{"dataset": "b", "method": "rebll", "seed": 1}])
    assert [r["dataset"] for r in second.rows()] == ["a", "b"]
    assert regime.CellStore(path, {**p, "n_train": {"multidigits20": 20}}).rows() == []


def test_l2p_runs_on_the_cached_maps_when_its_stem_is_the_cached_backbone(tmp_path, capsys):
    mlcil = _load("mlcil")
    if mlcil.regime.shipped_or_none("md-vit-tiny") is None or mlcil.regime.shipped_or_none("md-resnet10t") is None:
        pytest.skip("md-vit-tiny / md-resnet10t are not shipped in this checkout")
    doc = _mlcil(tmp_path, "--seeds", "0", "--methods", "l2p")
    assert "runs on the cached maps" in capsys.readouterr().out
    assert [r["method"] for r in doc["rows"]] == ["l2p"]


def test_l2p_on_a_plain_vit_reads_images():
    from types import SimpleNamespace

    from labelwise.config import load_config

    mlcil = _load("mlcil")
    cfg = SimpleNamespace()
    cfg.run = load_config({"data": {"name": "multidigits20", "image_size": 32}, "model": {
        "name": "ofml", "backbone": "resnet10t", "backbone_kwargs": {"channels": [32, 64, 128, 256]}}})
    assert mlcil.l2p_reads_cached_maps(cfg, 20, None) is False  # a random plain ViT: no stem to split
