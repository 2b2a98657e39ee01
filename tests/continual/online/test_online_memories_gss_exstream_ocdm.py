"""GSS keeps diverse gradients within budget; ExStream merges the two nearest clusters; OCDM fits the target."""

from __future__ import annotations

import numpy as np
import pytest

from labelwise.continual.online import (
    ClassAgnosticReservoir,
    ExStreamMemory,
    GradientSampleSelection,
    OCDMMemory,
    create_memory,
)
from labelwise.continual.online.memory import crs_distance
from labelwise.continual.online.ocdm import kl_to_target


def feed(mem, y, batch=10, probe=None):
    for s in range(0, len(y), batch):
        kw = {"probe": probe} if probe is not None else {}
        mem.update(np.arange(s, min(s + batch, len(y))), y[s : s + batch], **kw)


# -- GSS ----------------------------------------------------------------------------------------------------
def _gradient_stream(n=600, diverse_every=10, dim=16, seed=0):
    """90 % of the items share one gradient direction (plus noise); every 10th has a random direction."""
    rng = np.random.default_rng(seed)
    base = np.zeros(dim)
    base[0] = 1.0
    g = base + 0.05 * rng.standard_normal((n, dim))
    diverse = np.arange(n) % diverse_every == 0
    g[diverse] = rng.standard_normal((diverse.sum(), dim))
    return g, diverse


def _mean_cosine(g):
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    s = g @ g.T
    return (s.sum() - len(g)) / (len(g) * (len(g) - 1))


def test_gss_stays_within_budget_and_prefers_diverse_gradients():
    g, diverse = _gradient_stream()
    y = np.ones((len(g), 1), np.uint8)
    sizes = []
    gss = GradientSampleSelection(capacity=40, num_classes=1, seed=0)
    for s in range(0, len(g), 10):
        gss.update(np.arange(s, s + 10), y[s : s + 10], probe=lambda idx: g[idx])
        sizes.append(len(gss))
    assert max(sizes) == 40 and len(np.unique(gss.indices)) == 40
    crs = ClassAgnosticReservoir(40, 1, seed=0)
    feed(crs, y)
    frac_gss = diverse[gss.indices].mean()
    frac_crs = diverse[crs.indices].mean()
    # the stream holds 10 % diverse items; the reservoir keeps about that, GSS at least twice as many
    assert frac_crs < 0.2
    assert frac_gss >= 0.2 and frac_gss > frac_crs
    # and the stored gradients are far less aligned (mean pairwise cosine; stream: about 0.78)
    assert _mean_cosine(g[gss.indices]) < _mean_cosine(g[crs.indices]) - 0.15
    # the stored scores are max-cosine + 1 in [0, 2]
    assert np.all((gss.scores[:40] >= 0) & (gss.scores[:40] <= 2))


def test_gss_replacement_rule_only_for_negative_cosine():
    # a full memory of identical gradients: an item with the same gradient (c = 2) never enters
    g = np.tile(np.array([1.0, 0.0]), (30, 1))
    y = np.ones((30, 1), np.uint8)
    m = GradientSampleSelection(capacity=5, num_classes=1, n_samples=3, seed=1)
    feed(m, y[:5], probe=lambda idx: g[idx])  # fills the memory (score 1.1: it was empty)
    kept = m.indices.copy()
    m.update(np.arange(5, 30), y[5:], probe=lambda idx: g[idx])
    assert m.replaced == 0 and np.array_equal(m.indices, kept)
    # an opposite gradient (c = 0) always wins: r < C_i / (C_i + 0) = 1
    g2 = np.vstack([g, [[-1.0, 0.0]]])
    m.update(np.array([30]), np.ones((1, 1), np.uint8), probe=lambda idx: g2[idx])
    assert m.replaced == 1 and 30 in m.indices.tolist()
    with pytest.raises(ValueError, match="probe"):
        m.update(np.array([1]), np.ones((1, 1), np.uint8))


# -- ExStream -----------------------------------------------------------------------------------------------
def test_exstream_merges_two_nearest_with_weighted_mean_and_counts():
    f = np.array([[0.0, 0.0], [4.0, 0.0], [10.0, 0.0], [4.5, 0.0], [20.0, 0.0]])
    y = np.ones((5, 1), np.uint8)
    m = ExStreamMemory(capacity=3, num_classes=1)
    m.update(np.arange(3), y[:3], probe=lambda idx: f[idx])
    assert m.counts().tolist() == [1, 1, 1] and m.merges == 0
    # full: the nearest pair among (0), (4), (10) is (0, 4) -> ((0 + 4) / 2, 2) in slot 0; then (4.5) takes the
    # freed slot 1
    m.update(np.array([3]), y[3:4], probe=lambda idx: f[idx])
    np.testing.assert_allclose(m.centroids()[:, 0], [2.0, 4.5, 10.0])
    assert m.counts().tolist() == [2, 1, 1]
    # full again: nearest pair is (2, count 2) and (4.5, count 1) -> (2 * 2 + 4.5) / 3, count 3
    m.update(np.array([4]), y[4:5], probe=lambda idx: f[idx])
    np.testing.assert_allclose(m.centroids()[:, 0], [(2 * 2 + 4.5) / 3, 20.0, 10.0])
    assert m.counts().tolist() == [3, 1, 1] and m.counts().sum() == 5
    # the merged cluster keeps the representative nearest its centroid (item 3 at 4.5 vs item 0 at 0)
    assert m.indices.tolist() == [3, 4, 2]


def test_exstream_multilabel_buffers_share_the_budget():
    rng = np.random.default_rng(0)
    y = (rng.random((300, 4)) < [0.8, 0.4, 0.2, 0.05]).astype(np.uint8)
    y[y.sum(1) == 0, 0] = 1
    f = rng.standard_normal((300, 8))
    m = ExStreamMemory(capacity=20, num_classes=4)
    feed(m, y, probe=lambda idx: f[idx])
    assert len(m) <= 20
    b = m.budgets()
    assert sum(b.values()) == 20
    per_class = np.bincount(m.cluster_classes(), minlength=4)
    assert all(per_class[c] <= b[c] for c in b)
    # every stream label is absorbed by exactly one cluster of its class
    assert m.counts().sum() == y.sum()
    # representatives carry their class
    assert all(m.targets[k, c] for k, c in enumerate(m.cluster_classes()))


# -- OCDM ---------------------------------------------------------------------------------------------------
def _skewed_stream(n=3000, c=10, seed=0):
    rng = np.random.default_rng(seed)
    rates = 0.7 * (1.0 + np.arange(c)) ** -1.8
    y = (rng.random((n, c)) < rates).astype(np.uint8)
    empty = y.sum(1) == 0
    y[empty, rng.integers(0, c, empty.sum())] = 1
    return y


@pytest.mark.parametrize("rho", [0.0, 0.5])
def test_ocdm_distribution_closer_to_target_than_reservoir_and_random(rho):
    y = _skewed_stream()
    ocdm = OCDMMemory(100, 10, rho=rho)
    crs = ClassAgnosticReservoir(100, 10, seed=0)
    feed(ocdm, y)
    feed(crs, y)
    assert len(ocdm) == 100 and len(np.unique(ocdm.indices)) == 100
    p = ocdm.target_distribution()
    rand = np.random.default_rng(1).choice(len(y), 100, replace=False)
    d_ocdm = kl_to_target(ocdm.class_counts(), p)
    d_crs = kl_to_target(crs.class_counts(), p)
    d_rand = kl_to_target(y[rand].sum(0), p)
    assert d_ocdm < 0.5 * d_crs and d_ocdm < 0.5 * d_rand
    assert crs_distance(ocdm, p) < crs_distance(crs, p)
    # the stored targets are those of the stored items
    assert np.array_equal(ocdm.targets, y[ocdm.indices])


def test_ocdm_greedy_step_removes_the_best_item():
    m = OCDMMemory(3, 2, rho=0.0)
    m.update(np.arange(3), np.array([[1, 0], [1, 0], [1, 1]], np.uint8))
    # pool = memory + [0, 1]; removing one item: removing slot 0 or 1 gives counts [2, 2] (KL 0) -> slot 0
    m.update(np.array([3]), np.array([[0, 1]], np.uint8))
    assert sorted(m.indices.tolist()) == [1, 2, 3] and m.class_counts().tolist() == [2, 2]


def test_factory_builds_the_new_memories():
    assert create_memory("gss", 10, 3, gss_samples=4).n_samples == 4
    assert create_memory("exstream", 10, 3).needs == "features"
    assert create_memory("ocdm", 10, 3, ocdm_rho=0.5).rho == 0.5
