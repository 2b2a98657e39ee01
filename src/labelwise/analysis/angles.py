"""Angle analysis of multi-label classifiers (DLFL, section 3.2 and Fig. 5 / Fig. 8).

With a threshold of 0.5 on ``sigmoid(logits)`` the prediction of label ``j`` only depends on the sign of
``cos(theta_j)``, the angle between the feature scored for label ``j`` and the class weight ``w_j`` (Eq. 3-4):
positive below 90 degrees, negative above. This module measures those angles for a trained model:

* **OFML** models (one pooled feature for every label: ``ofml``, ``ofml_cosine``): the angle between the
  shared pooled feature ``f_i`` and each class weight ``w_j``;
* **OFOL** models with one feature per label (``ssca``): the angle whose cosine the model predicts with,
  ``outputs["cosine"]``. For SSCA this is the mean over the ``S`` modules of ``cos(F^s_{ij}, w^s_j)`` (the
  prediction is ``gamma`` times that mean, so its arc-cosine is the angle that decides the label; with
  ``S = 1`` it is exactly the angle between label feature ``j`` and weight ``j``). ``module="last"`` uses
  the last module's label features instead.

and compares them with the theoretical optimum of a shared feature against ``M`` orthogonal classifiers of
equal norm, :func:`optimal_angle` ``= arccos(1 / sqrt(M))`` (83.58 degrees for ``M = 80``, 78.69 for 26).

Outputs of ``labelwise analyze angles`` (:func:`labelwise.analyze.angles_main`)::

    optimal_angle_curve.png     the theoretical curve with dataset markers (Fig. 5c)
    angle_distributions.png     per-class boxes of positive and negative angles per model (Fig. 8)
    angles_per_class.csv        model, class, n_pos, n_neg, median/quartiles of positive and negative angles
    angles_summary.csv          model, M, optimal angle, median positive / negative angle, ...

The output directory is locked while the command runs and must be new or empty unless ``--overwrite`` is
given (:func:`labelwise.engine.run_dir.claim_output_dir`).

Examples
--------
>>> import numpy as np
>>> from labelwise.analysis.angles import optimal_angle, angle_statistics
>>> round(optimal_angle(80), 2), round(optimal_angle(26), 2)
(83.58, 78.69)
>>> angles = np.array([[30.0, 100.0], [60.0, 120.0], [95.0, 40.0]])
>>> targets = np.array([[1, 0], [1, 0], [0, 1]])
>>> s = angle_statistics(angles, targets, ["a", "b"])
>>> s["summary"]["median_positive"], s["summary"]["median_negative"]
(40.0, 100.0)
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "DATASET_LABEL_COUNTS",
    "AngleResult",
    "optimal_angle",
    "cosine_to_degrees",
    "model_cosines",
    "compute_angles",
    "angle_statistics",
    "write_angle_csv",
    "plot_angle_distributions",
    "plot_optimal_angle_curve",
]

#: Number of labels of the datasets marked on the optimal-angle curve (Fig. 5c of the paper, plus RAP/PETA
#: as evaluated in its pedestrian experiments).
DATASET_LABEL_COUNTS: dict[str, int] = {
    "VOC": 20,
    "PA-100K": 26,
    "PETA": 35,
    "RAP": 51,
    "MS-COCO": 80,
    "NUS-WIDE": 81,
}


def optimal_angle(num_labels: int | np.ndarray) -> float | np.ndarray:
    """Optimal angle (degrees) between one shared feature and ``M`` orthogonal, equal-norm class weights.

    Minimising the BCE of Eq. 12 on the unit sphere gives ``|cos| = 1 / sqrt(M)`` for every label, i.e.
    ``arccos(1 / sqrt(M))`` for the positive labels (and its supplement for the negative ones).

    Parameters
    ----------
    num_labels : int or array of int
        ``M >= 1``.

    Examples
    --------
    >>> round(optimal_angle(2), 2), round(optimal_angle(3), 2), optimal_angle(1)
    (45.0, 54.74, 0.0)
    """
    m = np.asarray(num_labels, dtype=np.float64)
    if np.any(m < 1):
        raise ValueError(f"num_labels must be >= 1, got {num_labels!r}")
    out = np.degrees(np.arccos(1.0 / np.sqrt(m)))
    return float(out) if out.ndim == 0 else out


def cosine_to_degrees(cosine: np.ndarray | torch.Tensor) -> np.ndarray:
    """Angles in degrees from cosines (clipped to ``[-1, 1]`` against rounding).

    Examples
    --------
    >>> cosine_to_degrees(np.array([1.0, 0.0, -1.0, 1.0000001])).round(6).tolist()
    [0.0, 90.0, 180.0, 0.0]
    """
    c = cosine.detach().cpu().numpy() if isinstance(cosine, torch.Tensor) else np.asarray(cosine)
    return np.degrees(np.arccos(np.clip(c.astype(np.float64), -1.0, 1.0)))


def model_cosines(model: torch.nn.Module, outputs: Mapping[str, Any], *, module: str = "mean") -> torch.Tensor:
    """Cosine ``[B, C]`` between the feature scored for each label and that label's class weight.

    Parameters
    ----------
    model : nn.Module
        The model that produced ``outputs`` (its ``head.fc`` is read for linear OFML models).
    outputs : mapping
        The model's outputs dict.
    module : {"mean", "last"}
        For heads with several classifiers (SSCA): the mean over modules of the cosines (what the prediction
        uses) or the last module's cosine.

    Raises
    ------
    ValueError
        When the outputs carry neither ``"cosine"`` nor pooled ``"features"`` with a linear ``head.fc``.

    Examples
    --------
    >>> from labelwise.models import create_model
    >>> model = create_model("ofml", num_classes=3, backbone="test_resnet").eval()
    >>> out = model(torch.randn(2, 3, 64, 64))
    >>> model_cosines(model, out).shape
    torch.Size([2, 3])
    """
    if module not in ("mean", "last"):
        raise ValueError(f"module must be 'mean' or 'last', got {module!r}")
    if module == "last" and "module_cosine" in outputs:
        return outputs["module_cosine"][:, -1]
    if "cosine" in outputs:
        return outputs["cosine"]
    features = outputs.get("features")
    fc = getattr(getattr(model, "head", None), "fc", None)
    weight = getattr(fc, "weight", None)
    if features is None or weight is None or features.ndim != 2 or weight.shape[1] != features.shape[1]:
        raise ValueError(
            f"cannot measure angles of {type(model).__name__}: its outputs have no 'cosine' and no pooled "
            "'features' matching a linear classifier head.fc"
        )
    f = torch.nn.functional.normalize(features.float(), dim=1)
    w = torch.nn.functional.normalize(weight.detach().float(), dim=1)
    return f @ w.t()


@dataclass
class AngleResult:
    """Angles of a model on a dataset.

    Attributes
    ----------
    angles : ndarray of float64, shape (N, C)
        Degrees between the feature of each (sample, label) and the label's class weight.
    targets : ndarray of uint8, shape (N, C)
    known : ndarray of bool, shape (N, C)
        Known-label mask (unknown entries are left out of the statistics).
    class_names : list of str
    """

    angles: np.ndarray
    targets: np.ndarray
    known: np.ndarray
    class_names: list[str]


@torch.no_grad()
def compute_angles(
    model: torch.nn.Module,
    dataset: Any,
    *,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    module: str = "mean",
    num_workers: int = 0,
) -> AngleResult:
    """Run ``model`` (in eval mode) over ``dataset`` and collect the per-label angles.

    Parameters
    ----------
    model : nn.Module
        A labelwise model (``ofml``, ``ofml_cosine``, ``ssca``, ...).
    dataset : MultiLabelDataset
        With its evaluation transform set.
    batch_size, device, num_workers
        Inference settings.
    module : {"mean", "last"}
        See :func:`model_cosines`.

    Examples
    --------
    >>> import numpy as np
    >>> from labelwise.data import ArrayDataset
    >>> from labelwise.models import create_model
    >>> import labelwise.models.heads.ssca  # registers "ssca"
    >>> ds = ArrayDataset(np.random.rand(4, 3, 32, 32).astype("float32"), np.eye(4, 2, dtype="uint8"), ["a", "b"])
    >>> res = compute_angles(create_model("ssca", num_classes=2, backbone="test_resnet"), ds)
    >>> res.angles.shape, bool(((res.angles >= 0) & (res.angles <= 180)).all())
    ((4, 2), True)
    """
    from torch.utils.data import DataLoader

    from ..data import collate_batch

    was_training = model.training
    model.eval().to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_batch, num_workers=num_workers)
    angles, targets, known = [], [], []
    try:
        for batch in loader:
            if batch.get("input") is None:
                continue
            outputs = model(batch["input"].to(device))
            angles.append(cosine_to_degrees(model_cosines(model, outputs, module=module)))
            targets.append(batch["target"].numpy() > 0.5)
            known.append(batch["mask"].numpy())
    finally:
        model.train(was_training)
    c = len(dataset.class_names)
    return AngleResult(
        angles=np.concatenate(angles) if angles else np.zeros((0, c)),
        targets=(np.concatenate(targets) if targets else np.zeros((0, c), bool)).astype(np.uint8),
        known=np.concatenate(known).astype(bool) if known else np.zeros((0, c), bool),
        class_names=list(dataset.class_names),
    )


def _quantiles(values: np.ndarray) -> tuple[float, float, float]:
    if values.size == 0:
        return (math.nan, math.nan, math.nan)
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    return float(q1), float(med), float(q3)


def angle_statistics(
    angles: np.ndarray, targets: np.ndarray, class_names: Sequence[str], *, known: np.ndarray | None = None
) -> dict[str, Any]:
    """Per-class and overall statistics of positive and negative angles.

    Parameters
    ----------
    angles : array, shape (N, C)
        Degrees.
    targets : array, shape (N, C)
        0/1 labels: a *positive* angle belongs to a sample annotated with the label, a *negative* one to a
        sample without it.
    class_names : sequence of str
    known : array of bool, shape (N, C), optional
        Entries to use (unknown labels are skipped).

    Returns
    -------
    dict
        ``"per_class"``: one dict per class (``class``, ``n_pos``, ``n_neg``, ``pos_q1``, ``pos_median``,
        ``pos_q3``, ``neg_q1``, ``neg_median``, ``neg_q3``; NaN when a class has no such sample);
        ``"summary"``: ``M``, ``optimal_angle``, ``median_positive`` / ``median_negative`` (median over all
        positive / negative entries), ``mean_class_median_positive`` / ``mean_class_median_negative`` (mean of
        the per-class medians over the classes that have such entries), ``frac_positive_below_90``,
        ``frac_negative_above_90``.

    Examples
    --------
    >>> s = angle_statistics(np.array([[10.0, 170.0]]), np.array([[1, 0]]), ["x", "y"])
    >>> s["per_class"][0]["pos_median"], s["per_class"][1]["neg_median"], bool(np.isnan(s["per_class"][0]["neg_median"]))
    (10.0, 170.0, True)
    """
    a = np.asarray(angles, dtype=np.float64)
    t = np.asarray(targets) > 0.5
    if a.ndim != 2 or a.shape != t.shape:
        raise ValueError(f"angles {a.shape} and targets {t.shape} must both be [N, C]")
    if len(class_names) != a.shape[1]:
        raise ValueError(f"{len(class_names)} class names for {a.shape[1]} columns of angles")
    k = np.ones_like(t) if known is None else np.asarray(known, dtype=bool)
    if k.shape != t.shape:
        raise ValueError(f"known mask {k.shape} must match targets {t.shape}")
    pos, neg = t & k, ~t & k
    per_class = []
    for j, name in enumerate(class_names):
        p, n = a[pos[:, j], j], a[neg[:, j], j]
        pq, nq = _quantiles(p), _quantiles(n)
        per_class.append(
            {
                "class": str(name), "n_pos": int(p.size), "n_neg": int(n.size),
                "pos_q1": pq[0], "pos_median": pq[1], "pos_q3": pq[2],
                "neg_q1": nq[0], "neg_median": nq[1], "neg_q3": nq[2],
            }
        )
    all_pos, all_neg = a[pos], a[neg]
    pos_meds = [r["pos_median"] for r in per_class if r["n_pos"]]
    neg_meds = [r["neg_median"] for r in per_class if r["n_neg"]]
    summary = {
        "M": int(a.shape[1]),
        "optimal_angle": optimal_angle(a.shape[1]),
        "median_positive": float(np.median(all_pos)) if all_pos.size else math.nan,
        "median_negative": float(np.median(all_neg)) if all_neg.size else math.nan,
        "mean_class_median_positive": float(np.mean(pos_meds)) if pos_meds else math.nan,
        "mean_class_median_negative": float(np.mean(neg_meds)) if neg_meds else math.nan,
        "frac_positive_below_90": float(np.mean(all_pos < 90.0)) if all_pos.size else math.nan,
        "frac_negative_above_90": float(np.mean(all_neg > 90.0)) if all_neg.size else math.nan,
    }
    return {"per_class": per_class, "summary": summary}


def write_angle_csv(stats: Mapping[str, Mapping[str, Any]], output_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``angles_per_class.csv`` and ``angles_summary.csv`` for several models.

    Parameters
    ----------
    stats : mapping of model label to the dict of :func:`angle_statistics`
    output_dir : str or path

    Returns
    -------
    (Path, Path)
        The per-class and the summary CSV.

    Examples
    --------
    >>> import tempfile
    >>> s = angle_statistics(np.array([[10.0, 170.0]]), np.array([[1, 0]]), ["x", "y"])
    >>> per_class, summary = write_angle_csv({"OFML": s}, tempfile.mkdtemp())
    >>> summary.read_text().splitlines()[0].split(",")[:3]
    ['model', 'M', 'optimal_angle']
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    per_class_path, summary_path = out / "angles_per_class.csv", out / "angles_summary.csv"
    with open(per_class_path, "w", newline="", encoding="utf-8") as fh:
        writer = None
        for label, s in stats.items():
            for row in s["per_class"]:
                row = {"model": label, **row}
                if writer is None:
                    writer = csv.DictWriter(fh, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow(row)
    with open(summary_path, "w", newline="", encoding="utf-8") as fh:
        writer = None
        for label, s in stats.items():
            row = {"model": label, **s["summary"]}
            if writer is None:
                writer = csv.DictWriter(fh, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
    return per_class_path, summary_path


_COLORS = ["tab:blue", "tab:red", "tab:green", "tab:orange", "tab:purple", "tab:brown"]


def plot_angle_distributions(
    results: Mapping[str, AngleResult], path: str | os.PathLike, *, max_classes: int | None = 40, title: str | None = None
) -> Path:
    """Fig. 8: per-class boxes of the positive (top) and negative (bottom) angles, one color per model.

    The dashed lines mark the decision boundary (90 degrees) and the OFML optimum ``arccos(1/sqrt(M))`` and
    its supplement.

    Parameters
    ----------
    results : mapping of model label to :class:`AngleResult`
        All on the same classes.
    path : str or path
        PNG to write.
    max_classes : int, optional
        Show only the first classes (readability); ``None`` shows all.
    title : str, optional

    Examples
    --------
    >>> import tempfile, os
    >>> r = AngleResult(np.array([[30.0, 120.0], [80.0, 60.0]]), np.array([[1, 0], [0, 1]], "uint8"),
    ...                 np.ones((2, 2), bool), ["a", "b"])
    >>> p = plot_angle_distributions({"SSCA": r}, os.path.join(tempfile.mkdtemp(), "fig.png"))
    >>> p.stat().st_size > 0
    True
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("no results to plot")
    first = next(iter(results.values()))
    names = first.class_names
    for label, r in results.items():
        if r.class_names != names:
            raise ValueError(f"model {label!r} has different classes than the first model")
    c = len(names) if max_classes is None else min(len(names), max_classes)
    k = len(results)
    width = 0.8 / k
    fig, axes = plt.subplots(2, 1, figsize=(max(8.0, 0.45 * c * max(k, 1) + 2), 8.5), sharex=True)
    opt = optimal_angle(len(names))
    for ax, positive in zip(axes, (True, False), strict=True):
        for i, (label, r) in enumerate(results.items()):
            t = r.targets.astype(bool)
            sel = (t if positive else ~t) & r.known
            data = [r.angles[sel[:, j], j] for j in range(c)]
            positions = np.arange(c) + (i - (k - 1) / 2) * width
            keep = [j for j in range(c) if data[j].size]
            if not keep:
                continue
            bp = ax.boxplot([data[j] for j in keep], positions=positions[keep], widths=width * 0.9,
                            showfliers=False, patch_artist=True, manage_ticks=False)
            color = _COLORS[i % len(_COLORS)]
            for box in bp["boxes"]:
                box.set_facecolor(color)
                box.set_alpha(0.55)
            ax.plot([], [], color=color, lw=6, alpha=0.55, label=label)
        ax.axhline(90.0, color="green", ls="--", lw=1, label="decision boundary (90°)")
        ax.axhline(opt if positive else 180.0 - opt, color="purple", ls="--", lw=1,
                   label=f"OFML optimum ({opt if positive else 180.0 - opt:.2f}°)")
        ax.set_ylabel(("positive" if positive else "negative") + " samples: angle (°)")
        ax.set_ylim(0, 180)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="lower right" if positive else "upper right", fontsize=8)
    axes[1].set_xticks(np.arange(c))
    axes[1].set_xticklabels(names[:c], rotation=75, fontsize=8)
    axes[0].set_title(title or "Angle between label features and class weights")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_optimal_angle_curve(
    path: str | os.PathLike, *, markers: Mapping[str, int] | None = None, max_labels: int = 100
) -> Path:
    """Fig. 5c: ``arccos(1/sqrt(M))`` against ``M`` with the datasets' label counts marked.

    Parameters
    ----------
    path : str or path
        PNG to write.
    markers : mapping of dataset name to number of labels, optional
        Default :data:`DATASET_LABEL_COUNTS`.
    max_labels : int
        Right end of the curve.

    Examples
    --------
    >>> import tempfile, os
    >>> p = plot_optimal_angle_curve(os.path.join(tempfile.mkdtemp(), "curve.png"), markers={"COCO": 80})
    >>> p.suffix
    '.png'
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    markers = dict(DATASET_LABEL_COUNTS if markers is None else markers)
    m = np.arange(1, max(max_labels, *markers.values(), 2) + 1)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.plot(m, optimal_angle(m), color="black", lw=1.5, label=r"$\arccos(1/\sqrt{M})$")
    ax.axhline(90.0, color="green", ls="--", lw=1, label="decision boundary (90°)")
    for i, (name, count) in enumerate(sorted(markers.items(), key=lambda kv: kv[1])):
        a = optimal_angle(count)
        ax.plot([count], [a], marker="^", ms=9, ls="none", color=_COLORS[i % len(_COLORS)],
                label=f"{name} (M={count}): {a:.2f}°")
    ax.set_xlabel("number of labels M")
    ax.set_ylabel("optimal angle of a shared feature (°)")
    ax.set_ylim(0, 95)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("OFML: optimal angle between one shared feature and M orthogonal classifiers")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
