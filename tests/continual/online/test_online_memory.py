"""CRS is a uniform reservoir; PRS keeps its budget and moves the class partition toward n_i^q."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from labelwise.continual.online import ClassAgnosticReservoir, PartitioningReservoir, create_memory
from labelwise.continual.online.memory import crs_distance


def long_tailed_stream(n: int = 3000, c: int = 12, seed: int = 0) -> np.ndarray:
    """Multi-label stream with per-class rates decaying like a power law (class 0 most frequent)."""
    rng = np.random.default_rng(seed)
    rates = 0.6 * (1.0 + np.arange(c)) ** -1.6
    y = (rng.random((n, c)) < rates).astype(np.uint8)
    empty = y.sum(1) == 0
    y[empty, rng.integers(0, c, empty.sum())] = 1
    return y


def feed(mem, y: np.ndarray, batch: int = 10, check=None) -> None:
    for s in range(0, len(y), batch):
        mem.update(np.arange(s, min(s + batch, len(y))), y[s : s + batch])
        if check is not None:
            check(mem)


def test_crs_inclusion_is_uniform_chi_square():
    n, cap, reps = 400, 40, 300
    y = np.ones((n, 1), np.uint8)
    counts = np.zeros(n)
    for r in range(reps):
        m = ClassAgnosticReservoir(cap, 1, seed=1000 + r)
        feed(m, y)
        assert len(m) == cap and len(np.unique(m.indices)) == cap
        counts[m.indices] += 1
    # every item is kept with probability cap / n
    expected = reps * cap / n
    chi2, p = stats.chisquare(counts.reshape(20, -1).sum(1), np.full(20, expected * n / 20))
    assert p > 0.01, (chi2, p)
    # early and late stream items are equally likely to survive
    assert abs(counts[: n // 2].mean() - counts[n // 2 :].mean()) < 0.15 * expected


def test_crs_follows_the_stream_partition():
    y = long_tailed_stream()
    m = ClassAgnosticReservoir(200, y.shape[1], seed=0)
    feed(m, y)
    stream = y.sum(0) / y.sum()
    mem = m.class_counts() / m.class_counts().sum()
    assert 0.5 * np.abs(stream - mem).sum() < 0.08


@pytest.mark.parametrize("q", [0.0, -0.03, 0.5])
def test_prs_budget_and_partition_toward_target(q):
    y = long_tailed_stream()
    cap = 200
    prs = PartitioningReservoir(cap, y.shape[1], q=q, seed=0)
    crs = ClassAgnosticReservoir(cap, y.shape[1], seed=0)

    def within_budget(mem):
        assert len(mem) <= cap
        assert np.array_equal(mem.class_counts(), mem.targets.sum(0))

    feed(prs, y, check=within_budget)
    feed(crs, y)
    assert len(prs) == cap and prs.seen == len(y)
    target = prs.target_partition()
    assert np.isclose(target.sum(), 1.0)
    d_prs, d_crs = prs.partition_distance(), crs_distance(crs, target)
    assert d_prs < d_crs
    if q <= 0:  # a flat (or rare-favouring) target: the rarest classes gain memory share over CRS
        rare = np.argsort(y.sum(0))[:4]
        assert prs.class_counts()[rare].sum() > crs.class_counts()[rare].sum()


def test_prs_q_one_is_close_to_stream_and_counts_match_target():
    y = long_tailed_stream(seed=3)
    prs = PartitioningReservoir(300, y.shape[1], q=1.0, seed=1)
    feed(prs, y)
    n = y.sum(0)
    assert np.allclose(prs.target_partition(), n / n.sum())
    assert prs.partition_distance() < 0.1


def test_prs_sample_in_probability():
    m = PartitioningReservoir(10, 3, q=0.0, seed=0)
    m.stream_counts[:] = [100, 5, 0]
    p = m.target_partition()
    assert np.allclose(p, [0.5, 0.5, 0.0])
    assert m.sample_in_probability(np.array([0]), p) == pytest.approx(10 * 0.5 / 100)
    assert m.sample_in_probability(np.array([1]), p) == 1.0  # under-represented class: always in
    # the rare class dominates the softmax(-n) weights
    assert m.sample_in_probability(np.array([0, 1]), p) == pytest.approx(1.0, abs=1e-6)
    assert m.sample_in_probability(np.array([], dtype=np.int64), p) == 0.0


def test_memory_errors_and_factory():
    with pytest.raises(ValueError, match="unknown memory"):
        create_memory("mir", 10, 3)
    m = create_memory("crs", 5, 3)
    with pytest.raises(ValueError, match=r"targets must be \[2, 3\]"):
        m.update(np.arange(2), np.zeros((2, 4)))
    rng = np.random.default_rng(0)
    assert len(m.sample(4, rng)[0]) == 0
    m.update(np.arange(3), np.eye(3, dtype=np.uint8))
    idx, y = m.sample(10, rng)
    assert sorted(idx.tolist()) == [0, 1, 2] and y.shape == (3, 3)


# -- PRS eviction="reference" (the published cdjkim/PRS rule) -----------------------------------------------
def _prs_state(y, n, eviction, q=1.0):
    """A full PRS memory holding the rows of ``y`` (slot order) with stream counts ``n`` (hand-set)."""
    y = np.asarray(y, np.uint8)
    m = PartitioningReservoir(len(y), y.shape[1], q=q, seed=0, eviction=eviction)
    m.update(np.arange(len(y)), y)
    m.stream_counts[:] = n
    if eviction == "reference":
        m._refresh_reference_partition()
    return m


def test_prs_reference_keeps_first_candidate_when_no_deviation_below_capacity():
    # capacity 4, classes 0/1/3 over-filled, class 2 under-filled (p = n / 103 with n = [1, 1, 100, 1]).
    y = [[1, 0, 0, 1], [1, 1, 0, 1], [0, 1, 0, 1], [0, 0, 1, 0]]
    n = [1, 1, 100, 1]
    ref, doc = _prs_state(y, n, "reference"), _prs_state(y, n, "argmin")
    # every class is present, so both partitions are n / 103
    np.testing.assert_allclose(ref.target_partition(), np.array(n) / 103)
    np.testing.assert_allclose(doc.target_partition(), np.array(n) / 103)
    # class 0 drawn: candidates slots 0 and 1 (both lack the under-filled class 2). Deviation after removing
    # slot 0: |1-.06|+|2-.06|+|1-5.83|+|2-.06| = 9.65; slot 1: .95+.95+3.85+1.95 = 7.71. Both >= capacity 4:
    # the published code keeps the first candidate, the paper's rule takes the minimum.
    assert ref._evict_from(0, ref.target_partition()) == 0
    assert doc._evict_from(0, doc.target_partition()) == 1


def test_prs_reference_minimises_when_a_deviation_is_below_capacity():
    # capacity 10 (six extra single-class-2 items) so that the deviations (< 10) count
    y = [[1, 0, 0, 1], [1, 1, 0, 1], [0, 1, 0, 1]] + [[0, 0, 1, 0]] * 7
    n = [1, 1, 100, 1]
    ref = _prs_state(y, n, "reference")
    assert ref._evict_from(0, ref.target_partition()) == 1


def test_prs_reference_partition_over_classes_present_in_memory():
    # class 3 was seen 4 times in the stream but is not in the memory; l = [3, 2, 1, 0], L = 6
    y = [[1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0]]
    n = [2, 1, 1, 4]
    ref, doc = _prs_state(y, n, "reference"), _prs_state(y, n, "argmin")
    np.testing.assert_allclose(doc.target_partition(), [0.25, 0.125, 0.125, 0.5])
    np.testing.assert_allclose(ref.target_partition(), [0.5, 0.25, 0.25, 0.0])
    # class 1 drawn (candidates: slots 0 and 3).
    # Paper (p over seen classes): pL = [1.5, .75, .75, 3], delta = [1.5, 1.25, .25, -3]: no *present* class is
    # under-filled, both stay; deviation after removing slot 0 = 1 + .5 + .5 + 2 = 4, slot 3 = 1.75 + .375 +
    # .375 + 2.5 = 5 -> slot 0.
    assert doc._evict_from(1, doc.target_partition()) == 0
    # Published code (p over present classes): pL = [3, 1.5, 1.5], delta = [0, .5, -.5]: classes 0 and 2 are
    # under-filled; slot 0 lacks class 2 (score 1), slot 3 lacks 0 and 2 (score 2) -> slot 3.
    assert ref._evict_from(1, ref.target_partition()) == 3
    # class 0 drawn, published code: candidates 0 and 1 (score 1 each); deviation over the present classes
    # after removing slot 0 = 0 (< capacity) -> slot 0
    assert ref._evict_from(0, ref.target_partition()) == 0
    # an item of the absent class 3: the paper admits it with probability min(1, 4 * .5 / 4) = .5; the
    # published code's share of a never-present class is 0, so it is never admitted
    assert doc.sample_in_probability(np.array([3])) == pytest.approx(0.5)
    assert ref.sample_in_probability(np.array([3])) == 0.0


def test_prs_reference_runs_within_budget_and_differs_from_argmin():
    y = long_tailed_stream(2000, 10, seed=3)
    ref = PartitioningReservoir(60, 10, q=-0.03, seed=0, eviction="reference")
    doc = PartitioningReservoir(60, 10, q=-0.03, seed=0, eviction="argmin")
    feed(ref, y)
    feed(doc, y)
    assert len(ref) == len(doc) == 60
    assert sorted(ref.indices.tolist()) != sorted(doc.indices.tolist())
    with pytest.raises(ValueError, match="eviction"):
        PartitioningReservoir(4, 2, eviction="first")
