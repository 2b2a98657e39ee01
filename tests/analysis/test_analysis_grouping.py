"""Label grouping (ML-VPT section 3.3): affinities against the formula, block recovery, files, over-inference."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labelwise.analysis.grouping import (
    LabelGroups,
    cooccurrence_false_positive_rate,
    frequent_pairs,
    group_labels,
    label_affinities,
    plot_label_groups,
    spectral_groups,
)
from labelwise.data.stats import conditional_probabilities, symmetric_cooccurrence


def block_targets(sizes, n=600, p=0.5, seed=0):
    """Each sample draws its labels from one block only: co-occurrence is block-diagonal."""
    rng = np.random.default_rng(seed)
    block_of = np.repeat(np.arange(len(sizes)), sizes)
    which = rng.integers(0, len(sizes), size=n)
    y = (rng.random((n, len(block_of))) < p) & (block_of[None] == which[:, None])
    starts = np.cumsum(sizes) - np.asarray(sizes)
    y[np.arange(n), starts[which]] = True  # >= 1 label per sample, inside its block
    return y.astype(np.uint8), block_of


@pytest.mark.parametrize("sizes", [(3, 3, 3), (2, 5, 3), (4, 1, 2, 3), (6, 2)])
@pytest.mark.parametrize("seed", [0, 1])
def test_co_groups_recover_blocks(sizes, seed):
    y, block_of = block_targets(sizes, seed=seed)
    groups = group_labels(y, n_groups=len(sizes), seed=seed)
    expected = sorted([np.flatnonzero(block_of == b).tolist() for b in range(len(sizes))])
    assert sorted(groups.co) == expected
    assert groups.co == sorted(groups.co, key=lambda g: g[0])  # numbered by smallest member


@pytest.mark.parametrize("tau", [0.5, 1.0, 3.0])
def test_hand_made_affinity_blocks_with_noise(tau):
    rng = np.random.default_rng(0)
    truth = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    a = np.where(truth[:, None] == truth[None], 0.8, 0.05) + rng.uniform(0, 0.03, (9, 9))
    a = (a + a.T) / 2
    assert spectral_groups(a ** (1 / tau), 3, seed=0) == [[0, 1, 2], [3, 4], [5, 6, 7, 8]]


def _within_group_affinity(groups, m_plus):
    pairs = [m_plus[i, j] for g in groups for i in g for j in g if i < j]
    return float(np.mean(pairs)) if pairs else 0.0


@pytest.mark.parametrize("data_seed", range(4))
def test_dc_groups_hold_less_cooccurrence_than_co_groups(data_seed):
    # labels (0,1), (2,3), (4,5) always occur together. Spectral clustering of M- does not guarantee that
    # every such pair is split (the graph is nearly complete multipartite: its spectrum is degenerate, and a
    # normalised cut may split off one label; the earlier "every pair split" test passed or failed depending
    # on the BLAS build), but DC groups must hold less co-occurrence than CO groups
    rng = np.random.default_rng(data_seed)
    y = np.repeat(rng.random((400, 3)) < rng.uniform(0.2, 0.6, 3), 2, axis=1).astype(int)
    _, m_plus, _ = label_affinities(y)
    for seed in range(3):
        groups = group_labels(y, n_groups=2, seed=seed)
        assert _within_group_affinity(groups.dc, m_plus) < _within_group_affinity(groups.co, m_plus), groups
        assert all({2 * k, 2 * k + 1} <= set(g) for k in range(3) for g in groups.co if 2 * k in g), groups.co


def test_dc_groups_split_two_always_cooccurring_pairs():
    rng = np.random.default_rng(0)
    y = np.repeat(rng.random((400, 2)) < [0.3, 0.5], 2, axis=1).astype(int)  # (0,1) and (2,3) always together
    for seed in range(3):
        dc = group_labels(y, n_groups=2, seed=seed).dc
        assert sorted(map(sorted, dc)) in ([[0, 2], [1, 3]], [[0, 3], [1, 2]]), dc


@pytest.mark.parametrize("tau", [1.0, 2.0, 0.5])
def test_affinities_match_formula(tau):
    y = np.random.default_rng(3).random((200, 6)) < 0.3
    s, m_plus, m_minus = label_affinities(y, tau=tau)
    cond = conditional_probabilities(y).T  # stats: P[i, j] = p(i | j); ours: S[i, j] = p(j | i)
    np.testing.assert_allclose(s, cond)
    expected = (cond ** (1 / tau) + (cond ** (1 / tau)).T) / 2
    np.fill_diagonal(expected, 0)
    np.testing.assert_allclose(m_plus, expected)
    off = ~np.eye(6, dtype=bool)
    np.testing.assert_allclose(m_minus[off], 1 - expected[off])
    assert np.all(np.diag(m_minus) == 0)
    if tau == 1.0:
        sym = symmetric_cooccurrence(y)
        np.testing.assert_allclose(m_plus[off], sym[off])


def test_jaccard_normalization():
    y = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1], [1, 1, 1]])
    s, _, _ = label_affinities(y, normalization="jaccard")
    assert s[0, 1] == pytest.approx(2 / 4) and s[1, 2] == pytest.approx(2 / 3)


@pytest.mark.parametrize("bad", [{"tau": 0}, {"tau": -1.0}, {"normalization": "cosine"}])
def test_affinity_bad_options(bad):
    with pytest.raises(ValueError):
        label_affinities(np.eye(3), **bad)


def test_bad_targets_and_group_counts():
    with pytest.raises(ValueError, match="row 0, column 1"):
        group_labels(np.array([[1, 2], [0, 1]]), n_groups=1)
    with pytest.raises(ValueError, match="n_groups"):
        group_labels(np.eye(3), n_groups=4)
    with pytest.warns(UserWarning, match="no positive"):
        label_affinities(np.array([[1, 0], [1, 0]]))


def test_save_load_roundtrip(tmp_path):
    y, _ = block_targets((3, 3), seed=2)
    groups = group_labels(y, n_groups=2, class_names=[f"c{i}" for i in range(6)], tau=2.0)
    path = groups.save(tmp_path / "g" / "groups.json")
    data = json.loads(path.read_text())
    assert data["format"] == "labelwise.label_groups" and data["co"] == groups.co and data["meta"]["tau"] == 2.0
    back = LabelGroups.load(path)
    assert back.co == groups.co and back.dc == groups.dc and back.class_names == groups.class_names
    assert back.names("co")[0][0].startswith("c")


def test_published_layout(tmp_path):
    # the published ML-VPT files: a list of {class index (str): position inside the group}
    co = [{"3": 1, "0": 0}, {"1": 0, "2": 1, "4": 2}]
    cl = [{"4": 0, "0": 1}, {"1": 0, "2": 1, "3": 2}]
    (tmp_path / "x_coocurrence2_0.json").write_text(json.dumps(co))
    (tmp_path / "x_cluster2_0.json").write_text(json.dumps(cl))
    g = LabelGroups.load(tmp_path / "x_coocurrence2_0.json", dc=tmp_path / "x_cluster2_0.json")
    assert g.co == [[0, 3], [1, 2, 4]] and g.dc == [[4, 0], [1, 2, 3]] and g.num_classes == 5
    g.save_published(tmp_path / "a.json", tmp_path / "b.json")
    assert json.loads((tmp_path / "a.json").read_text()) == [{"0": 0, "3": 1}, {"1": 0, "2": 1, "4": 2}]
    with pytest.raises(ValueError, match="cluster file"):
        LabelGroups.load(tmp_path / "x_coocurrence2_0.json")


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"co": [[0, 1]], "dc": [[0]], "num_classes": 2}, "classes \\[1\\] are in no dc group"),
        ({"co": [[0, 1], [1]], "dc": [[0, 1], []], "num_classes": 2}, "class 1 is in co groups 0 and 1"),
        ({"co": [[0, 5]], "dc": [[0, 1]], "num_classes": 2}, "class 5, outside"),
        ({"co": [[0, 1]], "dc": [[0], [1]], "num_classes": 2}, "1 co groups but 2 dc groups"),
        ({"co": [[0, 1]]}, "missing key 'dc'"),
        ({"co": [[0, 1]], "dc": [[0, 1]], "version": 7}, "version"),
    ],
)
def test_bad_files_name_the_file(tmp_path, payload, match):
    path = tmp_path / "groups.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match=match) as err:
        LabelGroups.load(path)
    assert str(path) in str(err.value)


def test_bad_json_and_missing_file(tmp_path):
    path = tmp_path / "g.json"
    path.write_text('{"co": [[0]],\n "dc": [[0]\n')
    with pytest.raises(ValueError, match="line"):
        LabelGroups.load(path)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        LabelGroups.load(tmp_path / "nope.json")


def test_frequent_pairs_and_overinference_hand_case():
    train = np.array([[1, 1, 0], [1, 1, 0], [1, 1, 0], [1, 0, 1], [0, 0, 1]])
    pairs = frequent_pairs(train, top_k=2, min_count=1)
    assert pairs == [(1, 0, 1.0), (0, 1, 0.75)]
    scores = np.array([[0.9, 0.8, 0.1], [0.9, 0.2, 0.1], [0.1, 0.7, 0.1], [0.1, 0.1, 0.1], [0.1, 0.9, 0.1]])
    test = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 1, 0]])
    r = cooccurrence_false_positive_rate(scores, test, pairs)
    # pair (1, 0): no test sample has label 1 without label 0... sample 4 has 1 and not 0: score_0 = 0.1 -> 0/1
    assert r["per_pair"][0] == {"i": 1, "j": 0, "n": 1, "fpr": 0.0}
    # pair (0, 1): samples 0 and 1 hold 0 but not 1: one false positive (0.8)
    assert r["per_pair"][1] == {"i": 0, "j": 1, "n": 2, "fpr": 0.5}
    assert r["mean_fpr"] == pytest.approx(0.25) and r["pooled_fpr"] == pytest.approx(1 / 3)
    # baseline: label 0 on samples without 0 and 1 (2, 3): 0 FP; label 1 on samples 2, 3: one FP (0.7)
    assert r["baseline_fpr"] == pytest.approx(1 / 4)
    with pytest.raises(ValueError, match="distinct"):
        cooccurrence_false_positive_rate(scores, test, [(1, 1)])


def test_plot_writes_png(tmp_path):
    y, _ = block_targets((2, 3), seed=0)
    groups = group_labels(y, n_groups=2)
    fig = plot_label_groups(groups, y, tmp_path / "groups.png")
    assert (tmp_path / "groups.png").stat().st_size > 1000
    assert "sizes [2, 3]" in fig.axes[0].get_title()
