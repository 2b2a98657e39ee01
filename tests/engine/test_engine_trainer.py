"""Trainer behaviour on one CPU process: run directory, losses, schedules, EMA, clipping, resume, hooks."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_helpers import MaskedBCE, TinyNet, make_dataset  # noqa: E402

from labelwise.engine import Callback, Trainer, TrainerConfig  # noqa: E402
from labelwise.engine.checkpoint import load_checkpoint  # noqa: E402
from labelwise.metrics import Evaluator  # noqa: E402

BASE = dict(accelerator="cpu", progress=False, tensorboard=False, report=False, seed=3)


@pytest.fixture(autouse=True)
def _restore_determinism():
    flag = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(flag)


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    return TinyNet(**kw)


class ConstantEvaluator:
    def __init__(self, **kw):
        pass

    def update(self, *a, **k):
        pass

    def compute(self):
        return {"mAP": 0.5}


def test_fit_writes_the_run_directory(tmp_path):
    from labelwise.losses import BCELoss

    train, val = make_dataset(n=48), make_dataset(n=20, seed=1)
    trainer = Trainer(**{**BASE, "tensorboard": True}, max_epochs=2, batch_size=16, lr=0.05, output_dir=tmp_path,
                      run_config={"model": {"name": "tiny"}}, tune_thresholds=True)
    summary = trainer.fit(_model(), BCELoss(), train, val)
    assert summary["epochs"] == 2 and summary["global_step"] == 6 and summary["best_epoch"] in (1, 2)  # 1-based
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert len(lines) == 3
    for col in ("epoch", "step", "train_loss", "lr", "mAP", "epoch_time", "skipped", "val_skipped"):
        assert col in header
    assert (tmp_path / "config.yaml").read_text().startswith("model:")
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    best = load_checkpoint(tmp_path, default="best")
    assert best.state is None and best.class_names == ["c0", "c1", "c2", "c3"]
    assert best.run_config == {"model": {"name": "tiny"}} and best.meta["kind"] == "best"
    assert best.thresholds["global"] == 0.5 and len(best.thresholds["per_class"]) == 4
    assert best.meta["metrics"]["mAP"] == pytest.approx(summary["best_metric"])
    assert best.meta["trainer_config"]["batch_size"] == 16
    last = load_checkpoint(tmp_path)
    assert last.state["epoch"] == 2 and last.state["global_step"] == 6 and last.state["step_in_epoch"] == 0
    # the best weights reproduce the best metric
    m = TinyNet()
    m.load_state_dict(best.weights)
    assert trainer.evaluate(m, val)["mAP"] == pytest.approx(summary["best_metric"], abs=1e-12)


def test_evaluate_and_predict_match_the_evaluator():
    val = make_dataset(n=23, seed=5)
    model = _model()
    trainer = Trainer(**BASE, eval_batch_size=5)
    scores, targets = preds = trainer.predict(model, val)
    assert scores.shape == (23, 4) and scores.dtype == np.float32 and preds.indices.tolist() == list(range(23))
    np.testing.assert_array_equal(targets, val.targets)
    with torch.no_grad():
        ref = torch.sigmoid(model(torch.as_tensor(val.inputs))["logits"]).numpy()
    np.testing.assert_allclose(scores, ref, atol=1e-6)
    ev = Evaluator(kind="multilabel", threshold=0.5, class_names=val.class_names)
    ev.update(ref, val.targets)
    metrics = trainer.evaluate(model, val)
    assert metrics["mAP"] == pytest.approx(ev.compute()["mAP"], abs=1e-6) and metrics["skipped"] == 0


@pytest.mark.parametrize("reduction", ["mean", "sum", "batchmean"])
def test_one_step_equals_a_manual_sgd_step(reduction):
    ds = make_dataset(n=10)
    known = np.random.default_rng(0).random(ds.targets.shape) > 0.4
    ds = ds.view(None, known_mask=known)
    model = _model()
    ref = copy.deepcopy(model)
    crit = MaskedBCE(reduction)
    trainer = Trainer(**BASE, max_epochs=1, batch_size=10, optimizer="sgd", momentum=0.0, lr=0.1)
    trainer.fit(model, crit, ds)
    x = torch.as_tensor(ds.parent.inputs)
    y = torch.as_tensor(ds.targets, dtype=torch.float32)
    order = trainer.batch_sampler.order()
    loss = crit(ref(x[order])["logits"], y[order], torch.as_tensor(known)[order])
    loss.backward()
    with torch.no_grad():
        for p in ref.parameters():
            p -= 0.1 * p.grad
    for a, b in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert crit.reduction == reduction  # restored after the element-wise calls


class TwoHeads(TinyNet):
    """Returns two loss logits (the criterion is applied to each and summed)."""

    def forward(self, x):
        h = self.body(x)
        lg = self.head(h)
        return {"logits": lg, "loss_logits": [lg, 2 * lg]}


class OwnLoss(TinyNet):
    needs_targets = True

    def forward(self, x, targets=None):
        out = super().forward(x)
        out["seen_targets"] = targets is not None
        return out

    def loss(self, outputs, batch, criterion):
        assert outputs["seen_targets"]
        return ((outputs["logits"] - batch["target"]) ** 2).sum(dim=1)


def test_loss_logits_and_own_loss_paths():
    ds = make_dataset(n=12)
    per_sample = []

    class Grab(Callback):
        def on_after_batch(self, trainer, batch, outputs, loss):
            per_sample.append(loss)

    model = TwoHeads()
    Trainer(**BASE, max_epochs=1, batch_size=12, callbacks=[Grab()]).fit(model, MaskedBCE("sum"), ds)
    assert per_sample[0].shape == (12,)
    model2 = OwnLoss()
    per_sample.clear()
    Trainer(**BASE, max_epochs=1, batch_size=6, callbacks=[Grab()]).fit(model2, MaskedBCE(), ds)
    assert len(per_sample) == 2 and per_sample[0].shape == (6,) and bool((per_sample[0] >= 0).all())


def test_param_groups_and_weight_decay():
    from labelwise.engine.optim import build_optimizer

    model = TinyNet()
    opt = build_optimizer(model, TrainerConfig(optimizer="adamw", lr=1e-3, backbone_lr=1e-4, weight_decay=0.1))
    groups = {g["name"]: g for g in opt.param_groups}
    assert set(groups) == {"backbone", "backbone_no_decay", "head", "head_no_decay"}
    assert groups["backbone"]["lr"] == 1e-4 and groups["head"]["lr"] == 1e-3
    assert groups["head_no_decay"]["weight_decay"] == 0.0 and groups["head"]["weight_decay"] == 0.1
    assert all(p.ndim == 1 for g in ("backbone_no_decay", "head_no_decay") for p in groups[g]["params"])
    opt = build_optimizer(model, TrainerConfig(no_decay_norm_bias=False, weight_decay=0.1))
    assert sorted(g["name"] for g in opt.param_groups) == ["backbone", "head"]


def test_onecycle_matches_torch_and_cosine_warmup():
    ds = make_dataset(n=40)
    lrs = []

    class LR(Callback):
        def on_after_batch(self, trainer, batch, outputs, loss):
            lrs.append(trainer.optimizer.param_groups[-1]["lr"])

    t = Trainer(**BASE, max_epochs=3, batch_size=10, schedule="onecycle", lr=0.1, pct_start=0.25, callbacks=[LR()])
    t.fit(TinyNet(), MaskedBCE(), ds)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=0.1)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=12, pct_start=0.25)
    expected = []
    for _ in range(12):
        opt.step()
        ref.step()
        expected.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)

    lrs.clear()
    t = Trainer(**BASE, max_epochs=4, batch_size=10, schedule="cosine", lr=0.1, warmup_epochs=1, min_lr=0.01, callbacks=[LR()])
    t.fit(TinyNet(), MaskedBCE(), ds)
    # lr in effect at step s+1 (after s+1 scheduler steps)
    steps = np.arange(1, 17)
    cos = 0.01 + 0.09 * 0.5 * (1 + np.cos(np.pi * np.clip((steps - 4) / 12, 0, 1)))
    expected = np.where(steps < 4, (steps + 1) / 4 * 0.1, cos)
    np.testing.assert_allclose(lrs, expected, rtol=1e-9)


def test_step_schedule_and_plateau(tmp_path):
    ds = make_dataset(n=20)
    t = Trainer(**BASE, max_epochs=4, batch_size=10, schedule="step", step_size=2, gamma=0.5, lr=0.1, output_dir=tmp_path)
    t.fit(TinyNet(), MaskedBCE(), ds)
    rows = (tmp_path / "metrics.csv").read_text().splitlines()[1:]
    assert [float(r.split(",")[3]) for r in rows] == [0.1, 0.1, 0.05, 0.05]  # the lr used during each epoch
    t = Trainer(**BASE, max_epochs=4, batch_size=10, schedule="plateau", plateau_patience=0, plateau_factor=0.5,
                lr=0.1, evaluator=ConstantEvaluator)
    t.fit(TinyNet(), MaskedBCE(), ds, ds)
    assert t.current_lr() == pytest.approx(0.1 * 0.5**3)
    with pytest.raises(ValueError, match="plateau"):
        Trainer(**BASE, schedule="plateau").fit(TinyNet(), MaskedBCE(), ds)


def test_early_stopping_and_monitor_errors():
    ds = make_dataset(n=20)
    t = Trainer(**BASE, max_epochs=10, batch_size=10, early_stopping_patience=2, evaluator=ConstantEvaluator)
    s = t.fit(TinyNet(), MaskedBCE(), ds, ds)
    assert s["stopped_early"] and s["epochs"] == 3 and s["best_epoch"] == 1
    with pytest.raises(KeyError, match="'nope'.*available: mAP"):
        Trainer(**BASE, max_epochs=1, monitor="nope", evaluator=ConstantEvaluator).fit(TinyNet(), MaskedBCE(), ds, ds)


def test_gradient_clipping_by_value_bounds_the_update():
    ds = make_dataset(n=16)
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    Trainer(**BASE, max_epochs=1, batch_size=16, optimizer="sgd", momentum=0.0, lr=1.0, grad_clip_value=1e-3).fit(
        model, MaskedBCE("sum"), ds)
    delta = max(float((p.detach() - b).abs().max()) for p, b in zip(model.parameters(), before))
    assert 0 < delta <= 1e-3 * (1 + 1e-5)
    model = _model()
    Trainer(**BASE, max_epochs=1, batch_size=16, optimizer="sgd", momentum=0.0, lr=1.0, grad_clip_norm=1e-2).fit(
        model, MaskedBCE("sum"), ds)
    total = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before)))
    assert float(total) == pytest.approx(1e-2, rel=1e-4)


def test_ema_weights_follow_the_formula(tmp_path):
    ds = make_dataset(n=30)
    snapshots = []

    class Snap(Callback):
        def on_after_batch(self, trainer, batch, outputs, loss):
            snapshots.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})

    model = _model()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    t = Trainer(**BASE, max_epochs=2, batch_size=10, ema_decay=0.7, output_dir=tmp_path, callbacks=[Snap()])
    t.fit(model, MaskedBCE(), ds, ds)
    ema = init
    for snap in snapshots:
        ema = {k: 0.7 * ema[k] + 0.3 * snap[k] for k in ema}
    for k, v in t.ema.module.state_dict().items():
        torch.testing.assert_close(v, ema[k], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(model.state_dict()[k], v)  # the model ends with the EMA weights
    last = load_checkpoint(tmp_path)
    torch.testing.assert_close(last.weights["head.weight"], ema["head.weight"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(last.state["raw_model"]["head.weight"], snapshots[-1]["head.weight"])


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_fit_start(self, trainer):
        self.calls.append("fit_start")

    def on_epoch_start(self, trainer, epoch):
        self.calls.append(f"epoch_start{epoch}")

    def on_before_batch(self, trainer, batch):
        self.calls.append("before")
        return batch

    def extra_loss(self, trainer, batch, outputs):
        return torch.tensor(1.0)

    def on_after_batch(self, trainer, batch, outputs, loss):
        self.calls.append("after")

    def on_epoch_end(self, trainer, epoch, metrics):
        self.calls.append(f"epoch_end{epoch}:{metrics['epoch']}")

    def on_fit_end(self, trainer):
        self.calls.append("fit_end")

    def on_task_end(self, trainer, task):
        self.calls.append(f"task{task}")


def test_callback_order_and_extra_loss(tmp_path):
    ds = make_dataset(n=20)
    rec = Recorder()
    t = Trainer(**BASE, max_epochs=2, batch_size=10, lr=1e-12, callbacks=[rec], output_dir=tmp_path / "a")
    t.fit(_model(), MaskedBCE(), ds)
    t.end_task(0)
    assert rec.calls == ["fit_start", "epoch_start0", "before", "after", "before", "after", "epoch_end0:1",
                         "epoch_start1", "before", "after", "before", "after", "epoch_end1:2", "fit_end", "task0"]
    t2 = Trainer(**BASE, max_epochs=2, batch_size=10, lr=1e-12, output_dir=tmp_path / "b")
    t2.fit(_model(), MaskedBCE(), ds)
    loss_a = [float(r.split(",")[2]) for r in (tmp_path / "a" / "metrics.csv").read_text().splitlines()[1:]]
    loss_b = [float(r.split(",")[2]) for r in (tmp_path / "b" / "metrics.csv").read_text().splitlines()[1:]]
    np.testing.assert_allclose(np.array(loss_a) - np.array(loss_b), 1.0, rtol=1e-6)


def test_seeded_runs_are_identical_and_seeds_differ():
    ds = make_dataset(n=40)

    def run(seed):
        m = _model(dropout=0.3)
        Trainer(**{**BASE, "seed": seed}, max_epochs=2, batch_size=8, deterministic=True).fit(m, MaskedBCE(), ds)
        return torch.cat([p.flatten() for p in m.parameters()])

    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a, b) and not torch.equal(a, c)


class Boom(Callback):
    def __init__(self, at):
        self.at = at

    def on_after_batch(self, trainer, batch, outputs, loss):
        if trainer.global_step == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize(
    "opts",
    [
        dict(schedule="cosine", warmup_epochs=0.5, optimizer="adam", checkpoint_every_n_steps=3, ema_decay=0.9),
        dict(schedule="step", step_size=1, optimizer="sgd", nesterov=True, checkpoint_every_n_steps=2),
        dict(schedule="plateau", plateau_patience=0, optimizer="adamw", evaluator=ConstantEvaluator),
    ],
    ids=["cosine-ema-mid-epoch", "step-sgd-mid-epoch", "plateau-epoch-boundary"],
)
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, opts):
    train, val = make_dataset(n=50), make_dataset(n=20, seed=1)
    kw = {**BASE, **opts, "max_epochs": 3, "batch_size": 8, "lr": 0.05, "deterministic": True}
    ref_model = _model(dropout=0.2)
    Trainer(**kw, output_dir=tmp_path / "ref").fit(ref_model, MaskedBCE(), train, val)
    with pytest.raises(KeyboardInterrupt):
        Trainer(**kw, output_dir=tmp_path / "run", callbacks=[Boom(at=11)]).fit(_model(dropout=0.2), MaskedBCE(), train, val)
    resumed = _model(seed=123, dropout=0.2)  # different init: everything must come from the checkpoint
    Trainer(**kw, output_dir=tmp_path / "run").fit(resumed, MaskedBCE(), train, val, resume=tmp_path / "run")
    for a, b in zip(ref_model.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)

    def rows(d):
        lines = (d / "metrics.csv").read_text().splitlines()
        drop = lines[0].split(",").index("epoch_time")
        return [[c for i, c in enumerate(line.split(",")) if i != drop] for line in lines]

    assert rows(tmp_path / "ref") == rows(tmp_path / "run")


def test_resume_errors(tmp_path):
    ds = make_dataset(n=20)
    Trainer(**BASE, max_epochs=1, batch_size=10, output_dir=tmp_path).fit(TinyNet(), MaskedBCE(), ds, ds)
    with pytest.raises(ValueError, match="no resume state"):
        Trainer(**BASE, max_epochs=2, output_dir=tmp_path).fit(TinyNet(), MaskedBCE(), ds, ds,
                                                               resume=tmp_path / "checkpoints" / "best")
    with pytest.raises(ValueError, match="EMA"):
        Trainer(**BASE, max_epochs=2, ema_decay=0.9).fit(TinyNet(), MaskedBCE(), ds, ds, resume=tmp_path)
    with pytest.raises(FileNotFoundError):
        Trainer(**BASE).fit(TinyNet(), MaskedBCE(), ds, resume=tmp_path / "nothing_here")


def test_bad_criterion_reduction_and_outputs():
    ds = make_dataset(n=10)
    with pytest.raises(ValueError, match="reduction='none'"):
        Trainer(**BASE, max_epochs=1).fit(TinyNet(), MaskedBCE("none"), ds)

    class NoDict(TinyNet):
        def forward(self, x):
            return self.head(self.body(x))

    with pytest.raises(TypeError, match="dict with 'logits'"):
        Trainer(**BASE, max_epochs=1).fit(NoDict(), MaskedBCE(), ds)


def test_config_validation():
    with pytest.raises(ValueError, match="optimiser"):
        TrainerConfig(optimiser="adam")
    with pytest.raises(ValueError, match="mutually exclusive"):
        TrainerConfig(grad_clip_norm=1.0, grad_clip_value=1.0)
    with pytest.raises(ValueError, match="strategy"):
        TrainerConfig(strategy="ddp_spawn")
    with pytest.raises(ValueError, match="betas"):
        TrainerConfig(betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="max_epochs"):
        Trainer(max_epochs=0)
    assert Trainer(TrainerConfig(lr=0.5), max_epochs=2).config.lr == 0.5
    for name, field in TrainerConfig.model_fields.items():
        assert field.description, name


def _write_images(root: Path, n: int, corrupt: set[int]) -> list[str]:
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = root / f"img{i}.png"
        if i in corrupt:
            p.write_bytes(b"not an image")
        else:
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(p)
        paths.append(p.name)
    return paths


class ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3 * 8 * 8, 2)

    def forward(self, x):
        return {"logits": self.fc(x.flatten(1))}


def test_unreadable_images_fail_fast_or_are_skipped_and_counted(tmp_path):
    from labelwise.data import ImageListDataset, ImageLoadError

    paths = _write_images(tmp_path, 12, corrupt={3, 7})
    y = np.tile([[1, 0], [0, 1]], (6, 1))
    ds = ImageListDataset(paths, y, ["a", "b"], root=tmp_path, transform=lambda im: im.float() / 255)
    with pytest.raises(ImageLoadError, match=r"img[37]\.png"):
        Trainer(**BASE, max_epochs=1, batch_size=4).fit(ConvNet(), MaskedBCE(), ds)
    run = tmp_path / "run"
    s = Trainer(**BASE, max_epochs=2, batch_size=4, on_error="skip", output_dir=run).fit(ConvNet(), MaskedBCE(), ds, ds)
    assert ds.on_error == "raise"  # restored after fit
    header, *rows = [r.split(",") for r in (run / "metrics.csv").read_text().splitlines()]
    assert [int(r[header.index("skipped")]) for r in rows] == [2, 2]
    assert [int(r[header.index("val_skipped")]) for r in rows] == [2, 2]
    assert s["skipped"] == 4
    preds = Trainer(**BASE, on_error="skip").predict(ConvNet(), ds)
    assert preds.skipped == 2 and 3 not in preds.indices and preds.scores.shape == (10, 2)


def test_bf16_mixed_precision_trains_on_cpu():
    ds = make_dataset(n=32)
    model = _model()
    before = model.head.weight.detach().clone()
    s = Trainer(**BASE, max_epochs=1, batch_size=16, precision="bf16-mixed", evaluator=ConstantEvaluator).fit(
        model, MaskedBCE(), ds, ds)
    assert s["global_step"] == 2 and not torch.equal(before, model.head.weight.detach())
    assert model.head.weight.dtype == torch.float32  # mixed precision keeps fp32 master weights


def test_report_is_written_at_the_end_of_fit(tmp_path):
    pytest.importorskip("labelwise.analysis.report")
    train, val = make_dataset(n=40), make_dataset(n=30, seed=1)
    Trainer(**{**BASE, "report": True}, max_epochs=2, batch_size=10, output_dir=tmp_path).fit(
        _model(), MaskedBCE(), train, val)
    assert list((tmp_path / "report").glob("*.png"))
