"""Angle analysis: hand-computed angles, statistics, CSV/plots and the optimal-angle curve."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from labelwise.analysis.angles import (
    DATASET_LABEL_COUNTS,
    AngleResult,
    angle_statistics,
    compute_angles,
    cosine_to_degrees,
    model_cosines,
    optimal_angle,
    plot_angle_distributions,
    write_angle_csv,
)
from labelwise.analyze import angles_main as main
from labelwise.data import ArrayDataset
from labelwise.models.heads.ssca import SSCAHead


@pytest.mark.parametrize(("m", "deg"), [(1, 0.0), (2, 45.0), (3, 54.7356), (26, 78.6901), (80, 83.5807)])
def test_optimal_angle(m, deg):
    assert optimal_angle(m) == pytest.approx(deg, abs=1e-4)


@pytest.mark.parametrize(("m", "m_pos"), [(2, 2), (3, 1), (7, 3)])
def test_optimal_angle_minimises_the_shared_feature_bce(m, m_pos):
    # Eq. 11-12: unit feature x against M orthogonal unit weights, alpha = |w||f|; minimise numerically.
    from scipy.optimize import minimize

    alpha = 30.0
    sign = np.r_[np.ones(m_pos), -np.ones(m - m_pos)]

    def loss(v):
        x = v / np.linalg.norm(v)
        return np.logaddexp(0.0, -alpha * sign * x).sum()

    best = minimize(loss, np.random.default_rng(0).uniform(0.1, 1.0, m) * sign, method="Nelder-Mead",
                    options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
    x = best.x / np.linalg.norm(best.x)
    np.testing.assert_allclose(np.degrees(np.arccos(np.abs(x))), optimal_angle(m), atol=0.05)
    assert optimal_angle(np.array([80, 26])).round(2).tolist() == [83.58, 78.69]
    assert DATASET_LABEL_COUNTS["MS-COCO"] == 80 and DATASET_LABEL_COUNTS["PA-100K"] == 26
    with pytest.raises(ValueError):
        optimal_angle(0)


class _LinearOFML(torch.nn.Module):
    """An OFML model stub: fixed pooled features, a linear classifier with bias (bias does not enter angles)."""

    def __init__(self, weight):
        super().__init__()
        self.head = torch.nn.Module()
        self.head.fc = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.head.fc.weight.copy_(weight)
            self.head.fc.bias.fill_(5.0)

    def forward(self, x):
        return {"logits": self.head.fc(x), "features": x}


def test_linear_ofml_angles_by_hand():
    w = torch.tensor([[1.0, 1.0], [0.0, 3.0], [-2.0, 0.0], [1.0, -1.7320508]])
    model = _LinearOFML(w)
    x = torch.tensor([[2.0, 0.0], [0.0, 0.5]])
    ds = ArrayDataset(x.numpy(), np.array([[1, 0, 0, 1], [0, 1, 1, 0]]), ["a", "b", "c", "d"])
    res = compute_angles(model, ds, batch_size=1)
    expected = [[45.0, 90.0, 180.0, 60.0], [45.0, 0.0, 90.0, 150.0]]
    np.testing.assert_allclose(res.angles, expected, atol=1e-4)
    assert res.targets.tolist() == [[1, 0, 0, 1], [0, 1, 1, 0]] and res.known.all()
    s = angle_statistics(res.angles, res.targets, res.class_names)
    # positives: 45, 60, 0, 90 -> median 52.5; negatives: 90, 180, 45, 150 -> median 120
    assert s["summary"]["median_positive"] == pytest.approx(52.5, abs=1e-4)
    assert s["summary"]["median_negative"] == pytest.approx(120.0, abs=1e-4)
    assert s["summary"]["frac_positive_below_90"] == pytest.approx(0.75)
    assert s["per_class"][0]["n_pos"] == 1 and s["per_class"][0]["pos_median"] == pytest.approx(45.0, abs=1e-4)


def test_ssca_angles_mean_and_last_module():
    torch.manual_seed(0)
    head = SSCAHead(6, 3, num_modules=2)
    fmap = torch.randn(4, 6, 2, 2)
    model = torch.nn.Module()
    model.head = head
    out = head(fmap)
    f1, _ = head.blocks[0](head.queries, fmap)
    cos1 = torch.nn.functional.cosine_similarity(f1, head.classifiers[0].weight[None], dim=-1)
    cos2 = torch.nn.functional.cosine_similarity(out["label_features"], head.classifiers[1].weight[None], dim=-1)
    torch.testing.assert_close(model_cosines(model, out, module="last"), cos2)
    torch.testing.assert_close(model_cosines(model, out), (cos1 + cos2) / 2)
    # the prediction's sign follows the mean-cosine angle: logit > 0 <=> angle < 90
    ang = cosine_to_degrees(model_cosines(model, out))
    assert ((out["logits"].detach().numpy() > 0) == (ang < 90)).all()


def test_statistics_with_known_mask_and_empty_classes():
    a = np.array([[10.0, 100.0], [20.0, 110.0], [170.0, 30.0]])
    t = np.array([[1, 0], [1, 0], [0, 0]])
    known = np.array([[True, True], [False, True], [True, True]])
    s = angle_statistics(a, t, ["x", "y"], known=known)
    assert s["per_class"][0]["n_pos"] == 1 and s["per_class"][0]["pos_median"] == 10.0
    assert s["per_class"][1]["n_pos"] == 0 and math.isnan(s["per_class"][1]["pos_median"])
    assert s["summary"]["mean_class_median_positive"] == 10.0
    assert s["summary"]["median_negative"] == pytest.approx(105.0)  # negatives 170 | 100, 110, 30
    with pytest.raises(ValueError, match="class names"):
        angle_statistics(a, t, ["x"])
    with pytest.raises(ValueError, match="must both be"):
        angle_statistics(a, t[:, :1], ["x", "y"])


def test_csv_and_plots(tmp_path):
    rng = np.random.default_rng(0)
    t = (rng.random((30, 4)) < 0.4).astype(np.uint8)
    res = {
        "OFML": AngleResult(rng.uniform(60, 120, (30, 4)), t, np.ones_like(t, bool), list("abcd")),
        "SSCA": AngleResult(np.where(t, 40.0, 140.0) + rng.normal(0, 5, (30, 4)), t, np.ones_like(t, bool), list("abcd")),
    }
    stats = {k: angle_statistics(r.angles, r.targets, r.class_names) for k, r in res.items()}
    per_class, summary = write_angle_csv(stats, tmp_path)
    rows = list(csv.DictReader(open(per_class)))
    assert len(rows) == 8 and {r["model"] for r in rows} == {"OFML", "SSCA"}
    srows = list(csv.DictReader(open(summary)))
    assert float(srows[1]["median_positive"]) < 50 < float(srows[0]["median_positive"])
    png = plot_angle_distributions(res, tmp_path / "dist.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = {"x": res["OFML"], "y": AngleResult(res["SSCA"].angles, t, res["SSCA"].known, list("abce"))}
    with pytest.raises(ValueError, match="different classes"):
        plot_angle_distributions(bad, tmp_path / "bad.png")


def test_main_curve_only(tmp_path, capsys):
    assert main(["--output", str(tmp_path), "--markers", "COCO=80,PA-100K=26"]) == 0
    assert (tmp_path / "optimal_angle_curve.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="NAME=M"):
        main(["--output", str(tmp_path), "--markers", "COCO=x"])
