"""Sampler protocol: lengths, no repeats, determinism, resume, warm-up, loss recording, chain candidates."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from labelwise.data import ArrayDataset
from labelwise.data.stats import symmetric_cooccurrence
from labelwise.engine.samplers import RandomBatchSampler
from labelwise.sampling import (
    SAMPLERS,
    ChainBatchSampler,
    LabelChain,
    QuantizedLossTable,
    create_sampler,
    imbalance_weights,
    label_relation_matrix,
    selection_bce,
)

STRATEGIES = ["random", "hard", "adaptive", "chain"]


def _data(n=103, q=6, d=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (rng.random((n, q)) < np.linspace(0.05, 0.5, q)).astype(np.uint8)
    y[np.arange(n), rng.integers(0, q, n)] = 1
    return ArrayDataset(x, y, class_names=[f"c{i}" for i in range(q)])


def _feed(sampler, ds, batches, seed=0):
    """Play the trainer: record a deterministic pseudo-loss for each batch."""
    rng = np.random.default_rng(seed)
    for b in batches:
        idx = torch.tensor(b)
        logits = torch.from_numpy(rng.normal(size=(len(b), ds.num_classes)).astype(np.float32))
        batch = {"index": idx, "target": torch.from_numpy(ds.targets[b].astype(np.float32)),
                 "mask": torch.ones(len(b), ds.num_classes, dtype=torch.bool)}
        sampler.on_after_batch(None, batch, {"logits": logits}, None)


def _run(sampler, ds, epochs, seed=0):
    out = []
    for e in epochs:
        sampler.set_epoch(e)
        batches = []
        for b in sampler:
            batches.append(b)
            _feed(sampler, ds, [b], seed=seed + 1000 * e + len(batches))
        out.append(batches)
    return out


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("batch_size", [3, 10, 103, 200])
def test_len_and_no_repeats(strategy, batch_size):
    ds = _data()
    options = {} if strategy == "random" else {"warmup_epochs": 1}  # random takes no selection options
    s = create_sampler(strategy, ds, batch_size=batch_size, **options)
    epochs = _run(s, ds, [0, 1])
    for batches in epochs:
        assert len(batches) == len(s) == math.ceil(len(ds) / batch_size)
        for b in batches:
            assert len(b) == len(set(b))
            assert all(0 <= i < len(ds) for i in b)
    assert sorted(i for b in epochs[0] for i in b) == list(range(len(ds)))  # warm-up: a permutation
    if strategy != "random":
        assert all(len(b) == min(batch_size, len(ds)) for b in epochs[1])  # selection: full batches


def test_registry_and_unknown_strategy():
    assert SAMPLERS.names() == sorted(STRATEGIES)
    with pytest.raises(KeyError, match="did you mean"):
        create_sampler("adaptiv", _data(), batch_size=4)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_warmup_matches_engine_random_sampler(strategy):
    ds = _data()
    s = create_sampler(strategy, ds, batch_size=16, seed=7)
    ref = RandomBatchSampler(len(ds), 16, seed=7)
    for e in range(3):
        s.set_epoch(e)
        ref.set_epoch(e)
        assert list(s) == list(ref)


def test_sequential_warmup():
    s = create_sampler("adaptive", _data(), batch_size=50, warmup_order="sequential")
    assert list(s)[0] == list(range(50))


@pytest.mark.parametrize("strategy", ["hard", "adaptive", "chain"])
def test_deterministic_for_a_seed_and_seed_matters(strategy):
    ds = _data()
    a = _run(create_sampler(strategy, ds, batch_size=8, warmup_epochs=1, seed=3), ds, [0, 1, 2])
    b = _run(create_sampler(strategy, ds, batch_size=8, warmup_epochs=1, seed=3), ds, [0, 1, 2])
    c = _run(create_sampler(strategy, ds, batch_size=8, warmup_epochs=1, seed=4), ds, [0, 1, 2])
    assert a == b
    assert a[2] != c[2]


@pytest.mark.parametrize("strategy", ["hard", "adaptive", "chain"])
def test_state_dict_round_trip_gives_identical_batches(strategy):
    ds = _data()
    s = create_sampler(strategy, ds, batch_size=8, warmup_epochs=1, seed=1, selection_pressure=16.0)
    _run(s, ds, [0, 1])
    state = s.state_dict()
    assert isinstance(state["losses"], torch.Tensor) and isinstance(state["epoch"], int)
    probs = s.probabilities()
    cont = _run(s, ds, [2, 3], seed=5)
    fresh = create_sampler(strategy, ds, batch_size=8, warmup_epochs=1, seed=1, selection_pressure=16.0)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.probabilities(), probs)
    assert _run(fresh, ds, [2, 3], seed=5) == cont


def test_state_for_other_dataset_raises():
    s = create_sampler("adaptive", _data(), batch_size=8)
    other = create_sampler("adaptive", _data(n=50), batch_size=8)
    with pytest.raises(ValueError, match="50 samples"):
        s.load_state_dict(other.state_dict())


def test_probabilities_follow_recorded_losses():
    ds = _data(n=20)
    s = create_sampler("hard", ds, batch_size=4, warmup_epochs=0, selection_pressure=8.0)
    logits = torch.randn(20, ds.num_classes)
    target = torch.from_numpy(ds.targets.astype(np.float32))
    s.on_after_batch(None, {"index": torch.arange(20), "target": target}, {"logits": logits}, None)
    ref = torch.nn.MultiLabelSoftMarginLoss(reduction="none")(logits, target).numpy()
    np.testing.assert_allclose(s.losses, ref, rtol=1e-6)
    from labelwise.sampling import rank_probabilities

    np.testing.assert_allclose(s.probabilities(), rank_probabilities(s.losses, selection_pressure=8.0))


def test_adaptive_probabilities_use_weighted_losses():
    ds = _data(n=40)
    s = create_sampler("adaptive", ds, batch_size=4, warmup_epochs=0, selection_pressure=8.0, k=3)
    w = imbalance_weights(ds.inputs.numpy(), ds.targets, k=3)
    np.testing.assert_allclose(s.weights, w, rtol=1e-6)
    assert (w > 1).any()
    loss = np.random.default_rng(0).random(40).astype(np.float32)
    s._record(np.arange(40), loss)
    from labelwise.sampling import quantized_probabilities

    np.testing.assert_allclose(s.probabilities(), quantized_probabilities(loss * s.weights, selection_pressure=8.0))
    assert (s.probabilities() > 0).all()


def test_selection_bce_masks_unknown_labels():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0]])
    target = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    mask = torch.tensor([[True, False, True], [False, False, False]])
    ref0 = torch.nn.functional.binary_cross_entropy_with_logits(logits[0, [0, 2]], target[0, [0, 2]])
    out = selection_bce(logits, target, mask)
    assert out[0].item() == pytest.approx(ref0.item())
    assert out[1].item() == 0.0


def test_repeated_indices_keep_last_and_bad_values_raise():
    s = create_sampler("hard", _data(n=10), batch_size=4, warmup_epochs=0)
    s._record(np.array([3, 5, 3]), np.array([1.0, 2.0, 0.5]))
    assert s.losses[3] == 0.5 and s.losses[5] == 2.0
    with pytest.raises(ValueError, match="sample 4"):
        s._record(np.array([4]), np.array([np.nan]))
    with pytest.raises(IndexError, match="outside"):
        s._record(np.array([10]), np.array([1.0]))


def test_model_selection_loss_and_missing_logits():
    ds = _data(n=10)
    s = create_sampler("hard", ds, batch_size=4, selection_loss="model", warmup_epochs=0)
    s.on_after_batch(None, {"index": torch.tensor([1, 2])}, {}, torch.tensor([0.3, 0.7]))
    np.testing.assert_allclose(s.losses[[1, 2]], [0.3, 0.7])
    s2 = create_sampler("hard", ds, batch_size=4)
    with pytest.raises(KeyError, match="logits"):
        s2.on_after_batch(None, {"index": torch.tensor([1]), "target": torch.zeros(1, 6)}, {}, None)


def test_model_features_collected_in_last_warmup_epoch():
    ds = _data(n=60)
    feats = torch.from_numpy(np.random.default_rng(3).normal(size=(60, 4)).astype(np.float32))
    s = create_sampler("adaptive", ds, batch_size=16, warmup_epochs=2, features="model", k=4)
    assert not s.weights_ready
    for e in range(2):
        s.set_epoch(e)
        for b in s:
            idx = torch.tensor(b)
            s.on_after_batch(None, {"index": idx, "target": torch.from_numpy(ds.targets[b].astype(np.float32))},
                             {"logits": torch.zeros(len(b), 6), "features": feats[idx]}, None)
        if e == 0:
            assert s._bank is None  # only the last warm-up epoch is collected
    state = s.state_dict()
    assert "feature_bank" in state
    s.set_epoch(2)
    next(iter(s))
    assert s.weights_ready
    np.testing.assert_allclose(s.weights, imbalance_weights(feats.numpy(), ds.targets, k=4), rtol=1e-6)


def test_feature_source_errors():
    y = _data().targets
    with pytest.raises(ValueError, match="warmup_epochs >= 1"):
        create_sampler("adaptive", y, batch_size=4, features="model", warmup_epochs=0)
    with pytest.raises(ValueError, match="ArrayDataset"):
        create_sampler("adaptive", y, batch_size=4, features="input")
    with pytest.raises(ValueError, match="features must be"):
        create_sampler("adaptive", y, batch_size=4, features="pixels")


# -- chain -------------------------------------------------------------------------------------------
def test_relation_matrix_matches_stats():
    y = _data().targets
    a = label_relation_matrix(y)
    ref = symmetric_cooccurrence(y)
    np.fill_diagonal(ref, 0.0)
    np.testing.assert_allclose(a, ref)


def _chain_targets(n=3000, seed=0):
    # 3 groups of correlated labels; group g has labels 3g..3g+2
    rng = np.random.default_rng(seed)
    y = np.zeros((n, 9), dtype=np.uint8)
    g = rng.integers(0, 3, n)
    for j in range(3):
        y[np.arange(n), 3 * g + j] = rng.random(n) < [0.9, 0.5, 0.1][j]
    y[np.arange(n), 3 * g] = 1
    return y


def test_chain_batches_draw_from_the_restricted_candidate_set():
    y = _chain_targets()
    s = ChainBatchSampler(y, batch_size=64, warmup_epochs=0, imbalance_weights=False, selection_pressure=8.0)
    s._record(np.arange(len(y)), np.random.default_rng(0).random(len(y)))
    chain = s.chain
    for step in range(5):
        batch = s._draw(64, s.rng(0, step))
        assert chain.fallbacks == 0
        for prev, nxt in zip(batch[:-1], batch[1:]):
            j = chain.seed_label[prev]
            allowed = y[:, chain.related[j]].any(axis=1)
            assert allowed[nxt], (prev, nxt, j)
        # related labels stay inside the group of the seed label
        for j in range(9):
            assert set((chain.related[j] // 3).tolist()) == {j // 3}


def test_chain_seed_label_and_related_size():
    y = _chain_targets()
    chain = LabelChain(y)
    card = y.sum(1).mean()
    assert all(len(r) <= math.ceil(card) for r in chain.related)
    ir = chain.irlbl
    for i in range(0, len(y), 97):
        pos = np.flatnonzero(y[i])
        assert chain.seed_label[i] == pos[np.argmax(ir[pos])]
    with_seed = LabelChain(y, include_seed_label=True)
    assert all(r[0] == j for j, r in enumerate(with_seed.related))


def test_chain_restricted_draw_is_exact():
    # D_c = samples with label 1; P restricted to it, minus the sample already in the batch
    y = np.array([[1, 0], [1, 1], [0, 1], [0, 1], [1, 1], [1, 0]])
    chain = LabelChain(y, exact_threshold=0)  # force the rejection path
    chain.related[0] = np.array([1])
    chain._sizes[0], chain._cum[0] = chain.counts[[1]], np.cumsum(chain.counts[[1]])
    chain._base[0] = chain.ptr[[1]] - (chain._cum[0] - chain._sizes[0])
    table = QuantizedLossTable(6, selection_pressure=16.0)
    table.update(np.arange(6), np.array([0.9, 0.1, 0.5, 0.3, 1.0, 0.0], dtype=np.float32))
    p = table.probabilities()
    cand = np.array([1, 2, 3])  # label-1 holders minus sample 4 (in the batch)
    expected = p[cand] / p[cand].sum()
    in_batch = np.zeros(6, dtype=bool)
    in_batch[4] = True
    rng = np.random.default_rng(0)
    draws = np.array([chain.restricted_draw(table, 0, in_batch, rng) for _ in range(6000)])
    freq = np.array([(draws == c).mean() for c in cand])
    assert set(np.unique(draws).tolist()) <= set(cand.tolist())
    np.testing.assert_allclose(freq, expected, atol=0.025)


def test_chain_falls_back_when_candidates_are_exhausted():
    # label 1 only on samples 0 and 1: after both are taken, the chain must fall back
    y = np.array([[1, 1], [0, 1]] + [[1, 0]] * 8)
    s = ChainBatchSampler(y, batch_size=10, warmup_epochs=0, imbalance_weights=False)
    batch = s._draw(10, s.rng(0, 0))
    assert sorted(batch.tolist()) == list(range(10))
    assert s.chain.fallbacks >= 1
