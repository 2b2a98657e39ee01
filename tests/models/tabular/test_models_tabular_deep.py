"""The five deep base models of the batch-selection study (C2AE, MPVAE, PACA, CLIF, DELA).

Per model: forward/backward shapes, the loss decreases on a tiny separable problem, prediction uses only
the features, determinism under a seed; then every sampler through ``fit_tabular``, the scikit-learn
estimator and the MULAN pipeline, all at tiny sizes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labelwise.losses import create_loss
from labelwise.models import create_model
from labelwise.sampling import create_sampler
from labelwise.tabular import MultiLabelClassifier, fit_tabular, predict_scores

torch.set_num_threads(1)

D, C = 6, 3
#: tiny configurations (the published sizes are the defaults)
SMALL = {
    "c2ae": {"hidden": 32, "latent_dim": 4},
    "mpvae": {"hidden": (32, 32, 32), "latent_dim": 4, "n_samples": 4},
    "paca": {"hidden": 16, "latent_dim": 4},
    "clif": {"hidden": 32},
    "dela": {"hidden": 16, "latent_dim": 4},
}
MODELS = sorted(SMALL)


def make(name: str, seed: int = 0, d: int = D, c: int = C, **kw):
    torch.manual_seed(seed)
    return create_model(name, num_classes=c, in_features=d, **{**SMALL[name], **kw})


def toy(n: int = 96, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, D)).astype(np.float32)
    Y = (X[:, :C] > 0.5).astype(np.float32)  # separable: label j is feature j > 0.5
    return X, Y


def write_mulan(directory, name, X, Y):
    """``<directory>/<name>/<name>.arff`` + ``<name>.xml`` in MULAN's on-disk format."""
    d = directory / name
    d.mkdir(parents=True)
    head = [
        f"@relation {name}",
        *(f"@attribute f{j} numeric" for j in range(X.shape[1])),
        *(f"@attribute label{j} {{0,1}}" for j in range(Y.shape[1])),
        "@data",
    ]
    rows = [",".join([*(f"{v:.6g}" for v in x), *(str(int(v)) for v in y)]) for x, y in zip(X, Y)]
    (d / f"{name}.arff").write_text("\n".join(head + rows) + "\n")
    labels = "".join(f'<label name="label{j}"></label>' for j in range(Y.shape[1]))
    (d / f"{name}.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<labels xmlns="http://mulan.sourceforge.net/labels">{labels}</labels>\n'
    )


def batch_of(x, y):
    return {"input": x, "target": y, "mask": None, "index": torch.arange(x.shape[0])}


def forward(model, x, y):
    return model(x, targets=y) if getattr(model, "needs_targets", False) else model(x)


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_shapes(name):
    model = make(name).train()
    X, Y = toy(16)
    x, y = torch.from_numpy(X), torch.from_numpy(Y)
    out = forward(model, x, y)
    assert out["logits"].shape == (16, C)
    per = model.loss(out, batch_of(x, y), create_loss("bce", reduction="none"))
    assert per.shape == (16,) and bool(torch.isfinite(per).all()) and bool((per >= 0).all())
    per.mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and bool(g.abs().sum() > 0) for g in grads)
    model.eval()
    assert model(x)["logits"].shape == (16, C)
    # the trainer may hand a criterion with reduction="mean": the model forces element-wise losses
    crit = create_loss("bce", reduction="mean")
    per2 = model.loss(forward(model.train(), x, y), batch_of(x, y), crit)
    assert per2.shape == (16,) and crit.reduction == "mean"


@pytest.mark.parametrize("name", MODELS)
def test_loss_decreases_on_separable_problem(name):
    X, Y = toy(64)
    x, y = torch.from_numpy(X), torch.from_numpy(Y)
    model = make(name)
    if hasattr(model, "prepare"):
        model.prepare(X, Y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def eval_bce():
        model.eval()
        with torch.no_grad():
            return float(F.binary_cross_entropy_with_logits(model(x)["logits"], y))

    def own_loss():
        model.train()
        torch.manual_seed(1)
        with torch.no_grad():
            return float(model.loss(forward(model, x, y), batch_of(x, y), None).mean())

    bce0, own0 = eval_bce(), own_loss()
    model.train()
    for _ in range(80):
        opt.zero_grad()
        model.loss(forward(model, x, y), batch_of(x, y), None).mean().backward()
        opt.step()
    bce1, own1 = eval_bce(), own_loss()
    assert own1 < own0, (own0, own1)
    assert bce1 < bce0 and bce1 < 0.5, (bce0, bce1)


@pytest.mark.parametrize("name", MODELS)
def test_prediction_uses_only_features(name):
    X, Y = toy(32)
    x, y = torch.from_numpy(X), torch.from_numpy(Y)
    model = make(name)
    if hasattr(model, "prepare"):
        model.prepare(X, Y)
    model.eval()
    ref = model(x)["logits"]
    for t in (y, 1 - y, torch.zeros_like(y)):
        assert torch.equal(model(x, targets=t)["logits"], ref) if model.needs_targets else True
    scores = predict_scores(model, X)
    np.testing.assert_allclose(scores, torch.sigmoid(ref).detach().numpy(), rtol=1e-6, atol=1e-7)
    # training mode: the prediction-path logits (what the samplers rank by) do not see the targets either
    model.train()
    outs = []
    for t in (y, 1 - y):
        torch.manual_seed(3)
        outs.append(forward(model, x, t)["logits"])
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("name", MODELS)
def test_deterministic_under_seed(name):
    X, Y = toy(48)
    results = []
    for _ in range(2):
        model = make(name, seed=5)
        sampler = create_sampler("random", Y, batch_size=16, seed=5)
        torch.manual_seed(5)
        fit_tabular(model, X, Y, sampler=sampler, epochs=2, lr=1e-2)
        results.append(predict_scores(model, X))
    np.testing.assert_array_equal(results[0], results[1])
    assert not np.array_equal(predict_scores(make(name, seed=6), X), predict_scores(make(name, seed=5), X))


@pytest.mark.parametrize("strategy", ["random", "hard", "adaptive", "chain"])
@pytest.mark.parametrize("name", MODELS)
def test_fit_tabular_with_every_sampler(name, strategy):
    X, Y = toy(80)
    model = make(name)
    kw = (
        {} if strategy == "random" else {"warmup_epochs": 1, "selection_pressure": 8.0, "features": X, "k": 3}
    )
    sampler = create_sampler(strategy, Y, batch_size=16, seed=0, **kw)
    res = fit_tabular(model, X, Y, sampler=sampler, epochs=3, lr=1e-2, X_val=X, Y_val=Y)
    assert len(res.history) == 3 and np.isfinite(res.history[-1]["train_loss"])
    if strategy != "random":
        assert sampler.seen.any() and np.isfinite(sampler.losses[sampler.seen]).all()


@pytest.mark.parametrize("name", MODELS)
def test_adaptive_sampler_gets_bce_of_the_training_forward(name):
    """The per-sample quantity fed to the adaptive sampler is the BCE of the training step's logits."""
    X, Y = toy(32)
    model = make(name)
    sampler = create_sampler("adaptive", Y, batch_size=32, seed=0, warmup_epochs=1, features=X, k=3)
    seen = {}
    orig = sampler.on_after_batch

    def spy(trainer, batch, outputs, per_sample):
        seen["bce"] = F.binary_cross_entropy_with_logits(
            outputs["logits"].detach(), batch["target"], reduction="none"
        ).mean(1)
        seen["model"] = per_sample
        seen["index"] = batch["index"].numpy()
        orig(trainer, batch, outputs, per_sample)

    sampler.on_after_batch = spy
    fit_tabular(model, X, Y, sampler=sampler, epochs=1, lr=1e-3)
    np.testing.assert_allclose(sampler.losses[seen["index"]], seen["bce"].numpy(), rtol=1e-5, atol=1e-6)
    assert seen["model"].shape == (32,)
    # selection_loss="model": the model's own per-sample objective is used instead
    model = make(name)
    sampler = create_sampler(
        "adaptive", Y, batch_size=32, seed=0, warmup_epochs=1, features=X, k=3, selection_loss="model"
    )
    fit_tabular(model, X, Y, sampler=sampler, epochs=2, lr=1e-3)
    assert sampler.seen.all()


@pytest.mark.parametrize("name", MODELS)
def test_estimator(name):
    X, Y = toy(64)
    clf = MultiLabelClassifier(
        model=name,
        model_params=SMALL[name],
        sampler="adaptive",
        sampler_params={"warmup_epochs": 1, "k": 3},
        epochs=3,
        batch_size=16,
        lr=1e-2,
        random_state=0,
    )
    clf.fit(X, Y)
    assert clf.predict(X).shape == (64, C) and clf.predict_proba(X).shape == (64, C)
    again = MultiLabelClassifier(**clf.get_params()).fit(X, Y)
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_clif_label_graph():
    X, Y = toy(40)
    m = make("clif")
    assert not bool(m.graph_fixed)
    m.prepare(X, Y)
    assert bool(m.graph_fixed)
    np.testing.assert_allclose(m.cooccurrence.numpy(), Y.T @ Y)
    adj, target = m._graph()
    assert torch.allclose(torch.diagonal(adj), torch.zeros(C)) and bool((torch.diagonal(target) == 1).all())
    # without prepare, training batches accumulate the co-occurrence counts
    m2 = make("clif").train()
    m2(torch.from_numpy(X[:10]), targets=torch.from_numpy(Y[:10]))
    np.testing.assert_allclose(m2.cooccurrence.numpy(), Y[:10].T @ Y[:10])
    with pytest.raises(ValueError, match="targets must be"):
        m.set_label_graph(np.zeros((4, C + 1)))


def test_c2ae_literal_ranking_loss():
    """Eq. 5 without the threshold term: E_i = mean over (positive, negative) pairs of exp(f_q - f_p)."""
    m = make("c2ae", threshold_term=False, lagrange=0.0, alpha=1.0)
    f = torch.tensor([[2.0, 0.0, -1.0]])
    y = torch.tensor([[1.0, 0.0, 0.0]])
    out = {"features": torch.zeros(1, 4), "label_latent": torch.zeros(1, 4), "label_logits": f}
    expected = (np.exp(0.0 - 2.0) + np.exp(-1.0 - 2.0)) / 2
    assert float(m.loss(out, {"target": y}, None)[0]) == pytest.approx(expected, rel=1e-6)


def test_mpvae_marginal_matches_sampling():
    """The closed-form prediction equals the Monte Carlo marginal of the probit model."""
    m = make("mpvae").eval()
    r = torch.tensor([[0.3, -1.0, 2.0]])
    p = torch.sigmoid(m._marginal_logits(r))
    torch.manual_seed(0)
    eps = torch.randn(200000, m.cov_factor.shape[1]) @ m.cov_factor.T + torch.randn(200000, C)
    mc = ((r + eps) > 0).float().mean(0)
    assert torch.allclose(p[0], mc, atol=5e-3)


@pytest.mark.parametrize("name", ["c2ae", "mpvae", "paca", "clif", "dela"])
def test_bad_inputs(name):
    model = make(name)
    with pytest.raises(ValueError, match="expects inputs"):
        model(torch.zeros(2, D + 1))
    with pytest.raises(ValueError, match="in_features"):
        create_model(name, num_classes=C, in_features=0)


def test_pipeline_runs_deep_models(tmp_path):
    from labelwise.tabular import MulanProtocol, run_benchmark

    rng = np.random.default_rng(0)
    X = rng.uniform(size=(120, D)).astype(np.float32)
    Y = (X[:, :C] + 0.2 * rng.normal(size=(120, C)) > 0.5).astype(np.uint8)
    write_mulan(tmp_path, "toy", X, Y)
    protocol = MulanProtocol(
        strategies=("random", "adaptive"),
        models=("c2ae", "dela"),
        model_params={k: SMALL[k] for k in ("c2ae", "dela")},
        n_folds=2,
        run_folds=1,
        epochs=2,
        warmup_epochs=1,
        selection_pressures=(8.0,),
        min_positives=5,
        k=3,
    )
    res = run_benchmark([str(tmp_path / "toy")], protocol=protocol, log=None)
    assert {(r["model"], r["strategy"]) for r in res.selected} == {
        (m, s) for m in ("c2ae", "dela") for s in ("random", "adaptive")
    }


@pytest.mark.parametrize("name", ["mpvae", "clif"])
def test_engine_trainer_with_adaptive_sampler(name, tmp_path):
    """The models are plain nn.Modules: the Fabric trainer runs them (needs_targets, own loss, sampler callback)."""
    from labelwise.data import ArrayDataset
    from labelwise.engine import Trainer

    X, Y = toy(64)
    train = ArrayDataset(X, Y.astype(np.uint8), [f"l{j}" for j in range(C)])
    model = make(name)
    if hasattr(model, "prepare"):
        model.prepare(X, Y)  # the trainer has no data hook: set data-dependent state before fit
    sampler = create_sampler("adaptive", Y, batch_size=16, seed=0, warmup_epochs=1, features=X, k=3)
    trainer = Trainer(
        accelerator="cpu",
        max_epochs=2,
        batch_size=16,
        lr=1e-2,
        progress=False,
        tensorboard=False,
        report=False,
        save_checkpoints=False,
    )
    trainer.fit(model, create_loss("bce"), train, train, batch_sampler=sampler)
    assert sampler.seen.any()
    scores, targets = trainer.predict(model, train)
    assert scores.shape == (64, C)


# ---- CLIF: the published model's options (issue 17) --------------------------------------------------------
def test_clif_identity_graph_is_the_published_graph():
    torch.manual_seed(0)
    y = (torch.rand(40, 5) > 0.5).float()
    m = create_model("clif", num_classes=5, in_features=7, hidden=8, label_graph="identity",
                     graph_loss="cosine_mse")
    adj, target = m._graph()
    assert torch.equal(adj, torch.eye(5)) and torch.equal(target, torch.eye(5))
    m.prepare(torch.randn(40, 7), y.numpy())  # nothing to prepare: the graph stays the identity
    m.train()
    m(torch.randn(40, 7), targets=y)  # and training batches do not accumulate co-occurrences
    assert torch.equal(m._graph()[0], torch.eye(5)) and float(m.cooccurrence.abs().sum()) == 0.0
    with pytest.raises(ValueError, match="identity"):
        m.set_label_graph(y)
    with pytest.raises(ValueError, match="label_graph"):
        create_model("clif", num_classes=5, in_features=7, label_graph="knn")
    # each GIN layer aggregates (1 + eps) h + I h = (2 + eps) h
    layer = m.gin[0].eval()
    h = torch.randn(5, 5)
    assert torch.allclose(layer(h, torch.eye(5)), layer.mlp(2.0 * h) + h)
    # the published graph loss: squared error of the cosine similarity against the identity
    e = torch.randn(5, 5)
    en = torch.nn.functional.normalize(e, dim=1)
    assert float(m.graph_loss(e)) == pytest.approx(float(((en @ en.T - torch.eye(5)) ** 2).mean()), rel=1e-5)


def test_published_init_gives_sample_dependent_initial_logits():
    """The cause of CLIF's plateau at lr 1e-4: with torch's default init the label-specific features
    ``psi(phi(x) * W_e e_j)`` multiply two small vectors, so the initial logits hardly depend on the sample
    (every label predicts its base rate); the published Kaiming init (biases U(0, 0.1)) does not."""
    x = torch.rand(256, 30)
    spread = {}
    for init in ("kaiming", "torch"):
        torch.manual_seed(0)
        m = create_model("clif", num_classes=6, in_features=30, hidden=64, init=init).eval()
        with torch.no_grad():
            spread[init] = float(m(x)["logits"].std(0).mean())
    assert spread["kaiming"] > 20 * spread["torch"]
    torch.manual_seed(0)
    m = create_model("dela", num_classes=6, in_features=30)
    lin = [mod for mod in m.encoder if isinstance(mod, torch.nn.Linear)]
    assert all(float(mod.bias.detach().min()) >= 0.0 and float(mod.bias.detach().max()) <= 0.1 for mod in lin)
    with pytest.raises(ValueError, match="init"):
        create_model("paca", num_classes=6, in_features=30, init="xavier")
