"""The defining mechanisms of the class-incremental comparison methods: KRT, CSC, AGCN and L2P."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from labelwise.continual import ClassIncrementalScenario, run_continual
from labelwise.continual.label_graph import augmented_correlation_matrix
from labelwise.continual.losses import max_entropy, token_distillation
from labelwise.continual.strategies import create_strategy
from labelwise.continual.strategies.krt import dynamic_threshold, restore_labels
from labelwise.continual.strategies.l2p import surrogate_loss
from labelwise.engine import Callback, Trainer
from labelwise.losses import asymmetric_loss
from labelwise.models.prompt_pool import PromptPool

sys.path.insert(0, str(Path(__file__).parent))
from continual_helpers import TRAINER, model_for, tiny_images  # noqa: E402


class Recorder(Callback):
    """Runs after the strategy: records what a test needs at fit start / task end."""

    def __init__(self, fit_start=None, task_end=None, before_batch=None):
        self.fit_start, self.task_end, self.before_batch = fit_start, task_end, before_batch
        self.records = {"fit_start": [], "task_end": [], "batch": []}

    def on_fit_start(self, trainer):
        if self.fit_start:
            self.records["fit_start"].append(self.fit_start(trainer))

    def on_task_end(self, trainer, task):
        if self.task_end:
            self.records["task_end"].append(self.task_end(trainer))

    def on_before_batch(self, trainer, batch):
        if self.before_batch:
            self.records["batch"].append(self.before_batch(trainer, batch))
        return batch


def _run(name, strategy, recorder, *, trainer_options=None):
    train, test = tiny_images(n=48, seed=0), tiny_images(n=30, seed=1)
    sc = ClassIncrementalScenario(train, test, base=2, increment=2)
    model = model_for(name)
    trainer = Trainer(callbacks=[strategy, recorder], **{**TRAINER, **(trainer_options or {})})
    res = run_continual(sc, strategy, model, trainer=trainer, threshold=0.5, plot=False)
    return sc, model, res


def _scenario():
    train = tiny_images(n=40)
    return ClassIncrementalScenario(train, train, base=2, increment=2)


# ---------------------------------------------------------------------------------------------- KRT
def test_krt_restores_old_classes_above_the_threshold_only():
    z_old = torch.logit(torch.tensor([[0.95, 0.79, 0.81, 0.99], [0.1, 0.85, 0.2, 0.9]]))
    old = torch.tensor([True, True, True, False])
    assert restore_labels(z_old, old, 0.8).tolist() == [[1, 0, 1, 0], [0, 1, 0, 0]]


def test_krt_dynamic_threshold_meets_the_target_count():
    rng = np.random.default_rng(0)
    probs = rng.random((200, 4))
    tau = dynamic_threshold(probs, target=1.5, start=0.8, step=0.005)
    count = lambda t: (probs > t).sum(1).mean()  # noqa: E731
    assert count(tau) >= 1.5 > count(tau + 0.005)
    tau_up = dynamic_threshold(probs, target=0.2, start=0.5, step=0.005)   # too many at 0.5: raised
    assert tau_up > 0.5 and count(tau_up) >= 0.2 > count(tau_up + 0.005)
    assert dynamic_threshold(np.full((5, 2), 0.1), target=1.0, minimum=0.5) == pytest.approx(0.5)


def test_krt_loss_uses_old_model_pseudo_labels_and_token_distillation():
    sc = _scenario()
    s = create_strategy("krt")
    s.setup(sc)
    s.task = sc.task(1)
    past = sc.task(1).past_classes
    torch.manual_seed(0)
    z, zt = torch.randn(3, 6), 3 * torch.randn(3, 6)
    f, ft = torch.randn(3, 6, 4), torch.randn(3, 6, 4)
    batch = {"teacher": {"logits": zt, "label_features": ft}, "n_current": 3,
             "target": torch.zeros(3, 6), "mask": torch.zeros(3, 6, dtype=torch.bool)}
    terms = s.loss_terms(None, batch, {"logits": z, "label_features": f})
    old = torch.from_numpy(sc.class_mask(past))
    pseudo = ((torch.sigmoid(zt) > 0.8) & old).float()
    expected = asymmetric_loss(z, pseudo, old.expand(3, -1), gamma_neg=4, gamma_pos=0, clip=0.05, reduction="sum") / 3
    assert float(terms["restore"]) == pytest.approx(float(expected), rel=1e-5)
    cos = torch.nn.functional.cosine_similarity(f, ft, dim=-1)[:, old]
    assert float(terms["token"]) == pytest.approx(float((1 - cos).sum() / 3), rel=1e-5)
    assert float(token_distillation(f, f.clone(), old)) == pytest.approx(0.0, abs=1e-6)


def test_krt_run_freezes_old_class_tokens_and_adapts_the_threshold():
    s = create_strategy("krt", pseudo_label_cardinality=2.0)
    rec = Recorder(task_end=lambda tr: tr.model.head.tokens().detach().clone())
    sc, model, res = _run("krt", s, rec)
    t0, t1, t2 = rec.records["task_end"]
    first, second = sc.task(0).classes, sc.task(1).classes
    assert torch.equal(t2[first], t0[first]) and torch.equal(t2[second], t1[second])  # frozen once learnt
    assert not torch.equal(t1[second], t0[second])                                     # trained in its task
    assert model.head.frozen[np.concatenate([first, second])].all()
    assert len(s.thresholds) == 2 and all(0.5 - 1e-9 <= t < 1 for t in s.thresholds)
    assert "loss_restore" in res.tasks[1] and "loss_token" in res.tasks[1]


@pytest.mark.parametrize("name,error,model", [("krt", TypeError, "krt"), ("csc", TypeError, "ci_gcn"),
                                              ("agcn", TypeError, "agcn"), ("l2p", KeyError, "l2p")])
def test_comparison_methods_name_the_model_they_need(name, error, model):
    train = tiny_images(n=24)
    sc = ClassIncrementalScenario(train, train, base=2, increment=2)
    with pytest.raises(error, match=f"model.name: {model}"):
        run_continual(sc, create_strategy(name), model_for("finetune"), trainer_options=TRAINER)


# ---------------------------------------------------------------------------------------------- CSC
def test_max_entropy_matches_its_formula():
    torch.manual_seed(1)
    z = torch.randn(4, 5)
    mask = torch.tensor([True, True, False, True, False])
    p = torch.sigmoid(z)
    partial = (p * torch.log(p + 1e-5))[:, mask].sum(1).mean()
    binary = (p * torch.log(p) + (1 - p) * torch.log(1 - p))[:, mask].sum(1).mean()
    assert float(max_entropy(z, mask)) == pytest.approx(float(partial), rel=1e-5)
    assert float(max_entropy(z, mask, form="binary")) == pytest.approx(float(binary), rel=1e-5)
    # minimising it pushes confident outputs towards 0.5 (raises the entropy)
    zz = torch.tensor([[4.0, -4.0]], requires_grad=True)
    max_entropy(zz, form="binary").backward()
    assert zz.grad[0, 0] > 0 > zz.grad[0, 1]


def test_csc_loss_terms_follow_the_public_formula():
    sc = _scenario()
    s = create_strategy("csc")
    s.setup(sc)
    s.task = sc.task(1)
    past, seen = sc.task(1).past_classes, sc.task(1).seen_classes
    torch.manual_seed(2)
    z, zt = torch.randn(3, 6), torch.randn(3, 6)
    terms = s.loss_terms(None, {"teacher": {"logits": zt}, "n_current": 3}, {"logits": z})
    q, p = torch.sigmoid(zt)[:, past], torch.sigmoid(z)
    kd = torch.nn.functional.binary_cross_entropy(p[:, past], q, reduction="none").mean(1).mean()
    me = (p * torch.log(p + 1e-5))[:, seen].sum(1).mean()
    assert float(terms["kd"]) == pytest.approx(0.5 * float(kd), rel=1e-5)
    assert float(terms["max_entropy"]) == pytest.approx(0.04 * float(me), rel=1e-5)
    # classification: alpha * mean over the task's classes of BCE
    crit = s.criterion(1)
    s.n_current = 3
    y = (torch.rand(3, 6) > 0.5).float()
    m = torch.from_numpy(sc.class_mask(sc.task(1).classes)).expand(3, -1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")[:, sc.task(1).classes]
    assert float(crit(z, y, m)) == pytest.approx(0.5 * float(bce.mean(1).mean()), rel=1e-5)


def test_ci_gcn_graph_spans_the_seen_classes_only():
    model = model_for("csc")
    model.eval()
    head = model.head
    head.set_active_classes([0, 1, 2])
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        before = model(x)
        head.fc.weight[4].normal_()                 # an unseen class's activation map changes ...
        after = model(x)
    assert torch.allclose(before["logits"][:, :3], after["logits"][:, :3], atol=1e-6)   # ... seen outputs do not
    assert float(before["static_adjacency"][3:].abs().sum() + before["static_adjacency"][:, 3:].abs().sum()) == 0
    with torch.no_grad():
        head.set_active_classes(range(6))
        full = model(x)
    assert not torch.allclose(full["logits"][:, :3], before["logits"][:, :3])           # new nodes now link in


def test_csc_run_extends_the_graph_task_by_task_and_the_teacher_keeps_its_own():
    s = create_strategy("csc")
    rec = Recorder(before_batch=lambda tr, b: (tr.model.head.active.clone(),
                                               None if s.teacher is None else s.teacher.head.active.clone()))
    sc, _, res = _run("csc", s, rec)
    first = {}
    for student, teacher in rec.records["batch"]:
        n = int(student.sum())
        first.setdefault(n, teacher)
    assert sorted(first) == [2, 4, 6]
    assert first[2] is None and int(first[4].sum()) == 2 and int(first[6].sum()) == 4
    assert res.tasks[1]["loss_max_entropy"] < 0


# ---------------------------------------------------------------------------------------------- AGCN
def test_augmented_correlation_matrix_on_a_constructed_example():
    hard = np.zeros((4, 4))
    hard[:, 2] = [1, 1, 0, 1]
    hard[:, 3] = [1, 0, 1, 0]
    soft = np.zeros((4, 4))
    soft[:, 0] = [0.9, 0.8, 0.1, 0.2]
    soft[:, 1] = [0.1, 0.2, 0.7, 0.1]
    prev = np.zeros((4, 4))
    prev[:2, :2] = [[0.7, 0.3], [0.3, 0.7]]
    acm = augmented_correlation_matrix(prev, [0, 1], [2, 3], hard, soft, num_classes=4)
    # new-new: P(2|3) = 1/2 >= 0.4 -> linked, P(3|2) = 1/3 -> not; reweighted + I, then D^-1/2 A^T D^-1/2
    # old-new: P(0|2) = 0.633, P(1|2) = 0.133, P(0|3) = 0.5, P(1|3) = 0.4 -> binarised at 0.3, 0.25 / column sum
    # new-old: P(j|i)/2 by Bayes: (2,0) 0.475, (2,1) 0.18, (3,0) 0.25, (3,1) 0.364 -> binarised at 0.3
    expected = np.array([
        [0.7, 0.3, 0.25, 0.125],
        [0.3, 0.7, 0.0, 0.125],
        [0.25, 0.0, 0.8, 0.0],
        [0.0, 0.25, 0.25 / np.sqrt(1.25), 1.0],
    ])
    np.testing.assert_allclose(acm, expected, atol=1e-5)
    with pytest.raises(ValueError, match="previous ACM"):
        augmented_correlation_matrix(None, [0, 1], [2, 3], hard, soft, num_classes=4)


def test_agcn_run_sets_the_acm_on_the_head_and_keeps_old_blocks():
    s = create_strategy("agcn")
    rec = Recorder(fit_start=lambda tr: tr.model.head.adjacency.detach().cpu().numpy().copy())
    sc, model, res = _run("agcn", s, rec)
    a0, a1, a2 = rec.records["fit_start"]
    c0, c01 = sc.task(0).classes, np.concatenate([sc.task(0).classes, sc.task(1).classes])
    np.testing.assert_allclose(a1[np.ix_(c0, c0)], a0[np.ix_(c0, c0)])
    np.testing.assert_allclose(a2[np.ix_(c01, c01)], a1[np.ix_(c01, c01)])
    unseen = sc.task(2).classes
    assert a1[unseen].sum() == 0 and a1[:, unseen].sum() == 0
    np.testing.assert_allclose(a2, s.acm, atol=1e-6)
    assert "loss_relation" in res.tasks[1] and "loss_kd" in res.tasks[1]
    restored = create_strategy("agcn")
    restored.setup(sc)
    restored.load_state_dict(s.state_dict())                 # checkpoints carry the ACM
    np.testing.assert_array_equal(restored.acm, s.acm)


def test_agcn_relationship_term_is_the_mse_of_old_classifiers():
    sc = _scenario()
    s = create_strategy("agcn", lambda_kd=0.0)
    s.setup(sc)
    s.task = sc.task(1)
    past = torch.as_tensor(sc.task(1).past_classes)
    w, w_old = torch.randn(6, 5), torch.randn(6, 5)
    z = torch.randn(2, 6)
    terms = s.loss_terms(None, {"teacher": {"logits": z, "classifiers": w_old}, "n_current": 2},
                         {"logits": z, "classifiers": w})
    assert float(terms["relation"]) == pytest.approx(float(((w[past] - w_old[past]) ** 2).mean()), rel=1e-5)
    assert float(terms["kd"]) == 0.0


# ---------------------------------------------------------------------------------------------- L2P
def test_prompt_pool_selects_the_nearest_keys():
    torch.manual_seed(3)
    pool = PromptPool(8, 3, 3, embed_dim=6)
    q = torch.randn(4, 6)
    prompts, idx, sim = pool.select(q)
    cos = torch.nn.functional.cosine_similarity(q[:, None], pool.keys[None], dim=-1)
    assert torch.equal(idx, cos.argsort(dim=1, descending=True)[:, :3])
    assert torch.allclose(sim, cos.gather(1, idx), atol=1e-6)
    assert torch.equal(prompts[1, 3:6], pool.prompts[idx[1, 1]])


def test_l2p_surrogate_loss_pulls_the_selected_keys_only():
    torch.manual_seed(4)
    pool = PromptPool(6, 2, 2, embed_dim=5)
    q = torch.randn(1, 5)
    _, idx, sim = pool.select(q)
    loss = surrogate_loss(sim)
    assert float(loss.detach()) == pytest.approx(float((1 - sim.detach()).sum()), rel=1e-6)
    loss.backward()
    grad_rows = pool.keys.grad.abs().sum(1) > 0
    assert grad_rows.nonzero().flatten().sort().values.tolist() == sorted(idx[0].tolist())
    before = sim.detach().clone()
    with torch.no_grad():
        pool.keys -= 0.5 * pool.keys.grad
    assert (pool.similarity(q).gather(1, idx) > before).all()


def test_l2p_run_trains_prompts_not_the_vit_and_masks_classes_of_other_tasks():
    s = create_strategy("l2p")
    rec = Recorder(task_end=lambda tr: {k: v.detach().clone() for k, v in tr.model.state_dict().items()})
    sc, model, res = _run("l2p", s, rec, trainer_options={"lr": 5e-2})
    s0, s1, _ = rec.records["task_end"]
    vit = [k for k in s0 if k.startswith("backbone.model.")]
    assert vit and all(torch.equal(s0[k], s1[k]) for k in vit)
    assert not torch.equal(s0["pool.keys"], s1["pool.keys"])
    other = np.concatenate([sc.task(0).classes, sc.task(2).classes])
    assert torch.equal(s1["fc.weight"][other], s0["fc.weight"][other])     # only C^1 rows move in task 1
    assert not torch.equal(s1["fc.weight"][sc.task(1).classes], s0["fc.weight"][sc.task(1).classes])
    assert res.tasks[0]["loss_pull"] > 0


# ---------------------------------------------------------------------------------------------- configs
CONFIG_DIR = Path(__file__).resolve().parents[2] / "src" / "labelwise" / "configs" / "continual"
TINY = ["data.options.n_train=60", "data.options.n_test=40", "data.options.n_val=8", "data.image_size=16",
        "trainer.max_epochs=1", "trainer.batch_size=16", "continual.plot=false"]


@pytest.mark.parametrize("method,model", [("krt", "krt"), ("csc", "ci_gcn"), ("agcn", "agcn"), ("l2p", "l2p")])
def test_method_config_runs_through_the_cli_runner(method, model, tmp_path):
    from labelwise.continual.cli import run_from_config
    from labelwise.continual.config import load_continual_config

    extra = {"krt": ["model.backbone=test_resnet", "model.embed_dim=32", "model.num_heads=4"],
             "csc": ["model.backbone=test_resnet", "model.embed_dim=32"],
             "agcn": ["model.backbone=test_resnet", "model.hidden_dim=32"],
             "l2p": ["model.weights=null", "model.backbone_kwargs.img_size=16", "model.backbone_kwargs.depth=1"]}[method]
    cfg = load_continual_config(CONFIG_DIR / f"multidigits20_b4c2_{method}.yaml", TINY + extra)
    assert cfg.strategy.name == method and cfg.run.model.name == model
    res = run_from_config(cfg, output_dir=tmp_path, progress=False, log=lambda *a: None)
    assert len(res.tasks) == 9 and (tmp_path / "summary.json").exists()
