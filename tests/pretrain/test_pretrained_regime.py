"""The benchmarks' pretrained regime: method names of the raw results, the JSON writer, the budget."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
SCHEMA_METHODS = {
    "dlfl": {"ofml", "ssca_s1", "ssca_s3"},
    "two_stage": {"enc_none", "enc_standard", "enc_irpe", "sa_on", "sa_second", "sa_off", "loss_bce", "loss_focal",
                  "loss_asl", "loss_apl"},
    "mlvpt": {"linear_probe", "vpt_deep", "gatevpt", "e2vpt", "gvpt", "mlvpt", "vpt_co", "vpt_dc"},
}


def _load(name):
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_method_names_are_the_schema_names():
    dlfl, two_stage, mlvpt = _load("dlfl"), _load("two_stage"), _load("mlvpt")
    assert set(dlfl.METHOD_KEYS.values()) == SCHEMA_METHODS["dlfl"]
    assert set(mlvpt.METHOD_KEYS.values()) == SCHEMA_METHODS["mlvpt"]
    assert set(mlvpt.METHOD_KEYS) == set(mlvpt.METHODS) | set(mlvpt.ABLATION)  # every method run has a name
    names = [n for s in two_stage.settings() for n in two_stage.method_names(s)]
    assert sorted(names) == sorted(SCHEMA_METHODS["two_stage"])  # each name exactly once
    assert two_stage.method_names(two_stage.Setting(**two_stage.PAPER)) == ["enc_irpe", "sa_off", "loss_apl"]


def test_profiles_state_the_budget(monkeypatch):
    dlfl = _load("dlfl")
    monkeypatch.setattr(dlfl.regime, "shipped_or_none", lambda name: None)
    args = SimpleNamespace(regime="pretrained", quick=True, seeds=None, n_train=None, n_val=None, n_test=None,
                           max_epochs=None, patience=None, device="cpu", workers=0, backbone_mode="finetune")
    p = dlfl.profile(args)
    assert p["max_epochs"] == 1 and p["seeds"] == [0, 1] and p["weights"] is None
    args.quick = False
    monkeypatch.setattr(dlfl.regime, "require_shipped", lambda name: name)
    p = dlfl.profile(args)
    assert p["image_size"] == 128 and p["backbone_kwargs"]["output_stride"] == 16 and p["weights"] == "md-resnet10t"
    assert p["max_epochs"] == 30 and p["patience"] == 4 and p["seeds"] == [0, 1, 2, 3, 4]
    cfg = dlfl.run_config("multidigits20", dlfl.MODELS["SSCA S=1"], 3, p)
    assert cfg.trainer.early_stopping_patience == 4 and cfg.trainer.seed == 3
    assert "md-resnet10t" in json.dumps(cfg.model.model_dump())
    header = dlfl.regime.header("dlfl", p, SimpleNamespace(regime="pretrained", quick=False))
    assert "max_epochs=30" in header and "patience=4" in header and "n_train=4000" in header
    args.backbone_mode = "frozen"  # the frozen-backbone budget, unless given on the command line
    p = dlfl.profile(args)
    assert p["backbone_mode"] == "frozen" and p["max_epochs"] == 60 and p["patience"] == 6
    args.max_epochs = 12
    assert dlfl.profile(args)["max_epochs"] == 12
    assert "backbone_mode=frozen" in dlfl.regime.header("dlfl", p, SimpleNamespace(regime="pretrained", quick=False))


def test_frozen_mode_trains_heads_on_cached_maps():
    """--backbone-mode frozen: the splits become feature maps, the run's model is the head alone."""
    import torch

    two_stage = _load("two_stage")
    args = two_stage.argparse.Namespace(regime="pretrained", quick=True, seeds=[0, 1], n_train=None, n_val=None,
                                        n_test=None, max_epochs=None, patience=None, device="cpu", workers=0,
                                        backbone_mode="frozen")
    p = two_stage.profile(args)
    assert p["backbone_mode"] == "frozen"
    cfg = two_stage.run_config("multidigits20", two_stage.Setting(**two_stage.PAPER), 0, p, 1e-3)
    data = two_stage.build_datasets(cfg)
    cached = two_stage.regime.frozen_splits(cfg, data, p)
    assert len(cached.train) == len(data.train) and cached.train.inputs.ndim == 4
    model = two_stage.regime.build_run_model(cfg, len(data.class_names), p)
    assert isinstance(model.backbone, torch.nn.Identity)
    row = two_stage.train_one(cfg, cached, p)
    assert 0.0 <= row["mAP"] <= 100.0
    p["backbone_mode"] = "finetune"
    assert two_stage.regime.frozen_splits(cfg, data, p) is data


def test_write_results_follows_the_schema(tmp_path):
    regime = _load("regime")
    args = SimpleNamespace(results=str(tmp_path / "dlfl.json"), quick=False, regime="pretrained")
    rows = [{"dataset": "multidigits20", "method": "ofml", "seed": 0, "mAP": 81.2, "CF1": 70.1, "OF1": 80.3}]
    path = regime.write_results("dlfl", rows, args, {"device": "cpu"}, 12.0, complete=False)
    doc = json.loads(path.read_text())
    assert {"benchmark", "command", "commit", "regime", "machine", "rows"} <= set(doc)
    assert doc["benchmark"] == "dlfl" and doc["regime"] == "pretrained" and doc["rows"] == rows
    assert doc["command"].startswith("python benchmarks/dlfl.py") and doc["complete"] is False


def test_budget():
    regime = _load("regime")
    assert not regime.Budget(None).exhausted()
    b = regime.Budget(0.0, start=time.perf_counter())
    time.sleep(0.01)
    assert b.exhausted() and b.skipped == 1
    b = regime.Budget(0.5, start=time.perf_counter())
    assert not b.exhausted()  # first run: no estimate yet
    time.sleep(0.3)  # a run of 0.3 s
    assert b.exhausted()  # 0.3 s elapsed + a 0.3 s run would end after 0.5 s
    assert b.longest_run >= 0.3


def test_missing_weights_stop_the_full_regime(monkeypatch):
    regime = _load("regime")
    monkeypatch.setattr("labelwise.models.shipped.list_shipped", lambda *a, **k: [])
    with pytest.raises(SystemExit, match="needs the shipped weights 'md-resnet10t'"):
        regime.require_shipped("md-resnet10t")


def test_cell_store_resumes_only_runs_of_the_same_profile(tmp_path, capsys, caplog):
    regime = _load("regime")
    path = tmp_path / "b.cells.jsonl"
    p = {"n_train": 10, "max_epochs": 5, "seeds": [0], "device": "cpu"}
    store = regime.CellStore(path, p)
    assert store.get(("md20", "ofml", 0)) is None and len(store) == 0
    row = {"dataset": "md20", "method": "ofml", "seed": 0, "mAP": 90.0}
    store.put(("md20", "ofml", 0), [row])
    # seeds / device do not change a run's numbers: the stored run is reused
    again = regime.CellStore(path, {**p, "seeds": [0, 1], "device": "cuda"})
    assert again.get(("md20", "ofml", 0)) == [row] and again.get(("md20", "ofml", 1)) is None
    assert "resuming: 1 finished runs" in capsys.readouterr().out
    # a changed budget is a different experiment: nothing reused, the old line is kept
    assert regime.CellStore(path, {**p, "max_epochs": 6}).get(("md20", "ofml", 0)) is None
    assert regime.CellStore(path, p, resume=False).get(("md20", "ofml", 0)) is None
    # a line cut by a kill mid-write is skipped with a warning naming the file and line; the rest is read
    with path.open("a") as fh:
        fh.write('{"cell": "md20|ssca_s1|0", "finger')
    with caplog.at_level("WARNING"):
        store = regime.CellStore(path, p)
    assert store.get(("md20", "ofml", 0)) == [row]
    assert f"{path} line 2 is not a complete JSON record" in caplog.text
    assert len(path.read_text().splitlines()) == 2  # nothing the store read was rewritten
    # the next run's line starts on a line of its own (not glued to the torn one) and is read back
    store.put(("md20", "ssca_s1", 0), [{**row, "method": "ssca_s1"}])
    assert regime.CellStore(path, p).get(("md20", "ssca_s1", 0))[0]["method"] == "ssca_s1"


def test_two_stage_quick_rerun_skips_finished_runs(tmp_path, monkeypatch):
    two_stage = _load("two_stage")
    monkeypatch.setattr(two_stage.regime, "shipped_or_none", lambda name: None)
    results = tmp_path / "two_stage.json"
    argv = ["--quick", "--datasets", "multidigits20", "--seeds", "0", "1", "--results", str(results)]
    assert two_stage.main(argv) == 0
    first = json.loads(results.read_text())["rows"]
    store = tmp_path / "two_stage.cells.jsonl"
    assert len(store.read_text().splitlines()) == 16  # 8 settings x 2 seeds, one line per run
    calls = []
    monkeypatch.setattr(two_stage, "train_one", lambda *a, **k: calls.append(a))
    assert two_stage.main(argv) == 0
    assert calls == []  # every run came from the store
    assert json.loads(results.read_text())["rows"] == first


def test_mlvpt_quick_prompt_tunes_on_the_cached_stem_maps(tmp_path, capsys):
    """The shipped hybrid md-vit-tiny: its frozen stem runs once per split; every method trains on the maps."""
    mlvpt = _load("mlvpt")
    if mlvpt.regime.shipped_or_none("md-vit-tiny") is None:
        pytest.skip("md-vit-tiny is not shipped in this checkout")
    results = tmp_path / "mlvpt.json"
    assert mlvpt.main(["--quick", "--datasets", "multidigits20", "--seeds", "0", "--threads", "1",
                       "--results", str(results), "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert "stem_cache=True" in out and "cached feature maps (256, 2, 2)" in out  # 32 px at output stride 16
    raw = json.loads(results.read_text())
    assert raw["profile"]["stem_cache"] is True
    assert {r["method"] for r in raw["rows"]} == SCHEMA_METHODS["mlvpt"]
    # parameters are those of the whole model (stem included), counted before the stem was split off
    whole = mlvpt.create_model("linear_probe_vit", num_classes=20, backbone=mlvpt.VIT, weights="md-vit-tiny",
                               backbone_kwargs={"img_size": 32})
    assert {r["total"] for r in raw["rows"] if r["method"] == "linear_probe"} == {
        sum(p.numel() for p in whole.parameters())}


def test_options_a_benchmark_does_not_take_are_hidden_and_rejected(capsys):
    import argparse

    regime = _load("regime")
    parser = argparse.ArgumentParser(prog="bench")
    regime.add_regime_args(parser, "bench", help_overrides={"seeds": "seeds (None: [0, 1, 2])"},
                           not_applicable=regime.NO_PLATEAU_OPTIONS, not_applicable_reason="a one-pass stream")
    text = parser.format_help()
    assert "--max-epochs" not in text and "--n-val" not in text and "--datasets" not in text
    assert "seeds (None: [0, 1, 2])" in text and "--n-train" in text
    assert parser.parse_args([]).max_epochs is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--patience", "3"])
    assert "argument --patience: does not apply: a one-pass stream" in capsys.readouterr().err


def test_cell_store_sees_runs_another_process_stored(tmp_path):
    """Two processes on one profile: a cell the other one finished is found (the file is read again on a miss)."""
    regime = _load("two_stage").regime
    path = tmp_path / "b.cells.jsonl"
    mine, other = regime.CellStore(path, {"n": 1}), regime.CellStore(path, {"n": 1})
    row = {"dataset": "md20", "method": "ofml", "seed": 0, "mAP": 90.0}
    assert mine.get(("md20", "ofml", 0)) is None
    other.put(("md20", "ofml", 0), [row])
    assert mine.get(("md20", "ofml", 0)) == [row]
    assert mine.covers([("md20", "ofml", 0)]) and not mine.covers([("md20", "ofml", 0), ("md20", "ofml", 1)])
    mine.put(("md20", "ofml", 1), [{**row, "seed": 1}])
    assert len(other.rows()) == 1  # other has not looked since
    assert other.covers([("md20", "ofml", 1)]) and len(other.rows()) == 2
    (command, n), = other.commands().items()  # each stored run records the command that ran it
    assert command.startswith("python benchmarks/b.py") and n == 2
    assert regime.CellStore(path, {"n": 1}, resume=False).get(("md20", "ofml", 0)) is None


def test_a_run_that_stopped_on_a_plateau_is_the_same_under_a_larger_cap():
    """What CellStore(plateau_reuse=True) relies on: the regime's training does not depend on max_epochs."""
    import numpy as np
    import torch

    from labelwise.data import ArrayDataset
    from labelwise.engine import TrainerConfig
    from labelwise.losses import create_loss

    regime = _load("regime")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = ((x[:, :3] + rng.normal(size=(96, 3))) > 0).astype("uint8")  # noisy: validation mAP plateaus early
    train, val = ArrayDataset(x[:64], y[:64], class_names=list("abc")), ArrayDataset(x[64:], y[64:], class_names=list("abc"))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(6, 3)

        def forward(self, x):
            return {"logits": self.fc(x)}

    def run(max_epochs):
        torch.manual_seed(0)
        model = Net()
        cfg = TrainerConfig(**regime.trainer_options({"max_epochs": max_epochs, "patience": 2}), batch_size=16,
                            optimizer="adamw", lr=0.05, seed=3)
        tr = regime.fit_to_plateau(cfg, model, create_loss("bce"), train, val)
        return tr.best_epoch, len(tr.history), [h.get("val/mAP", h.get("mAP")) for h in tr.history], model.fc.weight

    short, long = run(30), run(60)
    assert short[1] < 30, "the run must stop on a plateau for the comparison to mean anything"
    assert short[:3] == long[:3]
    assert torch.equal(short[3], long[3])


def test_cell_store_takes_runs_that_stopped_below_both_caps(tmp_path, capsys):
    regime = _load("regime")
    path = tmp_path / "b.cells.jsonl"
    p = {"n_train": 10, "max_epochs": 30, "patience": 4, "seeds": [0]}
    old = regime.CellStore(path, p)
    old.put(("md20", "a", 0), [{"method": "a", "best_epoch": 26}])  # 26 + 4 <= 30: early stopping at 30
    old.put(("md20", "b", 0), [{"method": "b", "best_epoch": 27}])  # the cap ended it
    old.put(("md20", "c", 0), [{"method": "c"}])  # no best epoch: never taken over
    longer = regime.CellStore(path, {**p, "max_epochs": 60}, plateau_reuse=True)
    assert longer.get(("md20", "a", 0)) == [{"method": "a", "best_epoch": 26}]
    assert longer.get(("md20", "b", 0)) is None and longer.get(("md20", "c", 0)) is None
    assert [c for c in longer.commands()][0].endswith("[max_epochs=30]") and len(longer) == 1
    shorter = regime.CellStore(path, {**p, "max_epochs": 29}, plateau_reuse=True)  # 26 + 4 > 29: not the same run
    assert shorter.get(("md20", "a", 0)) is None
    assert regime.CellStore(path, {**p, "max_epochs": 60}).get(("md20", "a", 0)) is None  # only when asked
    assert regime.CellStore(path, {**p, "max_epochs": 60, "patience": 5}, plateau_reuse=True).get(("md20", "a", 0)) is None
    longer.put(("md20", "a", 0), [{"method": "a", "best_epoch": 26, "rerun": True}])  # stored under the new cap
    assert regime.CellStore(path, {**p, "max_epochs": 60}, plateau_reuse=True).get(("md20", "a", 0))[0]["rerun"]
    assert len(regime.CellStore(path, {**p, "max_epochs": 60}, plateau_reuse=True).rows()) == 1


def test_claims_keep_two_processes_off_the_same_run(tmp_path, monkeypatch):
    regime = _load("regime")
    path = tmp_path / "b.cells.jsonl"
    mine, other = regime.CellStore(path, {"n": 1}), regime.CellStore(path, {"n": 1})
    cell = ("md20", "ofml", 0)
    assert mine.claim(cell)
    claim = next((tmp_path / "b.cells.jsonl.running").iterdir())
    assert json.loads(claim.read_text())["cell"] == "md20|ofml|0"
    assert not other.claim(cell)  # this process is alive: the other skips the run
    mine.put(cell, [{"method": "ofml", "seed": 0}])
    assert not claim.exists()  # put releases it
    assert not other.claim(cell)  # stored meanwhile: nothing to run
    # a claim whose process is gone (killed mid-run) is stale and taken over
    claim.write_text(json.dumps({"pid": 2**22 + 12345, "host": __import__("socket").gethostname(),
                                 "started": time.time(), "cell": "md20|ofml|1"}))
    monkeypatch.setattr(mine, "_claim_path", lambda c: claim)
    assert mine.claim(("md20", "ofml", 1))
    assert json.loads(claim.read_text())["pid"] == __import__("os").getpid()
    mine.release(("md20", "ofml", 1))
    assert not claim.exists()
    assert regime.CellStore(path, {"n": 1}, resume=False).claim(cell)  # --no-resume: every run is its own


def test_dlfl_rerun_retrains_the_angle_plot_runs_despite_claims(tmp_path, capsys):
    """Seed 0 of OFML and SSCA S=1 feed the angle plot: retrained on a rerun, never skipped as 'running'."""
    dlfl = _load("dlfl")
    argv = ["--quick", "--threads", "1", "--datasets", "multidigits20", "--results", str(tmp_path / "dlfl.json"),
            "--plot-dir", str(tmp_path)]
    assert dlfl.main(argv) == 0
    capsys.readouterr()
    assert dlfl.main(argv) == 0
    out = capsys.readouterr().out
    assert "multidigits20 OFML seed 0: mAP" in out and "running in another process" not in out
    doc = json.loads((tmp_path / "dlfl.json").read_text())
    assert doc["complete"] is True and len(doc["rows"]) == 6  # --quick: complete over the datasets it ran
