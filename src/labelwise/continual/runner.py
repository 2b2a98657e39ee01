"""Run a class-incremental scenario with a strategy on the one :class:`~labelwise.engine.Trainer`.

For each task ``t``: the strategy gives the training data and criterion, ``trainer.fit`` trains (the strategy
is the trainer's callback: replay, teacher, extra losses), ``trainer.end_task`` lets the strategy update its
memory / relabel / keep the teacher, and the model is evaluated on the test images holding a seen class, over
the seen classes only: mAP, CP/CR/CF1, OP/OR/OF1 and FPR (at ``threshold``) and the per-class AP.

Threshold
---------
KRT, CSC and RebLL report CF1/OF1 at a threshold of **0.8**; that is our default too (``threshold=0.8``).
FPR is measured at the same threshold (the RebLL paper does not state its threshold for FPR).

Files (``output_dir``)
----------------------
``tasks.csv``         one row per task: seen classes, images, metrics, mean extra-loss terms, time
``ap_per_class.csv``  AP of every class (columns, in incremental order) after every task (rows)
``forgetting.csv``    per class: the task it was learned in, its final AP and its forgetting
``summary.json``      scenario, strategy and its options, Avg mAP, Last metrics, mean forgetting
``map_curve.png``     mAP after each task against the number of seen classes (RebLL Fig. 4)
``task_<t>/``         the trainer's run directory of each task (metrics.csv, checkpoints, ...)

Examples
--------
>>> import numpy as np, torch
>>> from labelwise.data import ArrayDataset
>>> from labelwise.continual import ClassIncrementalScenario, run_continual
>>> from labelwise.continual.strategies import create_strategy
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(120, 6)).astype("float32"); y = (x[:, :4] > 0.3).astype("uint8")
>>> ds = ArrayDataset(x, y, class_names=list("abcd"))
>>> class Net(torch.nn.Module):
...     def __init__(self):
...         super().__init__(); self.fc = torch.nn.Linear(6, 4)
...     def forward(self, x):
...         return {"logits": self.fc(x)}
>>> sc = ClassIncrementalScenario(ds, ds, base=2, increment=1)
>>> res = run_continual(sc, create_strategy("finetune"), Net(),
...                     trainer_options={"max_epochs": 1, "lr": 0.05, "progress": False, "accelerator": "cpu"})
>>> len(res.tasks), [k in res.summary for k in ("avg_mAP", "last", "forgetting")]
(3, [True, True, True])
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .metrics import average_incremental, class_forgetting
from .scenarios import ClassIncrementalScenario

if TYPE_CHECKING:
    from labelwise.engine import Trainer

    from .strategies.base import Strategy

__all__ = ["ContinualResult", "run_continual", "evaluate_seen", "plot_map_curves", "DEFAULT_THRESHOLD"]

DEFAULT_THRESHOLD = 0.8
_METRIC_KEYS = ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "FPR")


@dataclass
class ContinualResult:
    """What a continual run measured.

    Attributes
    ----------
    scenario, strategy : str
    tasks : list of dict
        One row per task (the rows of ``tasks.csv``).
    ap : ndarray [tasks, classes]
        Per-class AP after each task (columns in the dataset's class order; NaN where unseen or skipped).
    class_names : list of str
    summary : dict
        ``avg_mAP``, ``last`` (metrics after the final task), ``forgetting_mean``, ``forgetting`` (per class).
    """

    scenario: str
    strategy: str
    tasks: list[dict[str, Any]]
    ap: np.ndarray
    class_names: list[str]
    summary: dict[str, Any] = field(default_factory=dict)

    def curve(self) -> tuple[list[int], list[float]]:
        """(number of seen classes, mAP) after each evaluated task."""
        xs = [r["num_seen"] for r in self.tasks if not math.isnan(r["mAP"])]
        ys = [r["mAP"] for r in self.tasks if not math.isnan(r["mAP"])]
        return xs, ys


def evaluate_seen(scores: np.ndarray, targets: np.ndarray, seen: np.ndarray, *, threshold: float = DEFAULT_THRESHOLD,
                  class_names: Sequence[str] | None = None, ap_method: str = "sklearn") -> dict[str, Any]:
    """Metrics over the ``seen`` classes on the samples holding any of them (the MLCIL evaluation protocol).

    Examples
    --------
    >>> s = np.array([[0.9, 0.1, 0.7], [0.2, 0.8, 0.9], [0.1, 0.2, 0.95]])
    >>> t = np.array([[1, 0, 1], [0, 1, 1], [0, 0, 1]])
    >>> r = evaluate_seen(s, t, np.array([0, 1]))
    >>> r["num_samples"], r["mAP"], r["FPR"]
    (2, 1.0, 0.0)
    """
    from labelwise.metrics import multilabel_report

    seen = np.asarray(seen, dtype=np.int64)
    rows = np.asarray(targets)[:, seen].any(axis=1)
    s = np.asarray(scores)[rows][:, seen]
    t = np.asarray(targets)[rows][:, seen]
    names = None if class_names is None else [class_names[i] for i in seen]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes without test positives are excluded (NaN AP), by design
        rep = multilabel_report(s, t, threshold, class_names=None, ap_method=ap_method)
    out: dict[str, Any] = {k: float(rep[k]) for k in _METRIC_KEYS}
    out["num_samples"] = int(rows.sum())
    out["AP"] = np.asarray(rep["AP"], dtype=np.float64)
    if names is not None:
        out["class_names"] = names
    return out


def run_continual(
    scenario: ClassIncrementalScenario,
    strategy: Strategy,
    model: torch.nn.Module,
    *,
    trainer: Trainer | None = None,
    trainer_options: Mapping[str, Any] | None = None,
    base_lr: float | None = None,
    output_dir: str | os.PathLike | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    ap_method: str = "sklearn",
    eval_transform: Any = "inherit",
    run_config: dict | None = None,
    plot: bool = True,
    log: Any = None,
) -> ContinualResult:
    """Train ``model`` through every task of ``scenario`` with ``strategy``; evaluate after each task.

    Parameters
    ----------
    scenario : ClassIncrementalScenario
    strategy : Strategy
        From :func:`labelwise.continual.strategies.create_strategy`.
    model : nn.Module
        A model with one output per class of the dataset (``num_classes = scenario.num_classes``); the logits
        of classes not yet learned are ignored by the losses and by the evaluation.
    trainer : Trainer, optional
        A trainer to reuse (its callbacks must include ``strategy``); default: one is created from
        ``trainer_options`` with ``strategy`` as its callback.
    trainer_options : mapping, optional
        :class:`~labelwise.engine.TrainerConfig` options (``max_epochs`` = epochs per task, ``lr``, ...).
    base_lr : float, optional
        Learning rate of the first task (RebLL COCO: 3e-5, then ``lr`` = 5e-5); default ``lr``.
    output_dir : str or path, optional
        Where to write the files listed in the module documentation (None: nothing written).
    threshold : float, default 0.8
        Decision threshold of CP/CR/CF1/OP/OR/OF1 and FPR (KRT/CSC/RebLL use 0.8).
    ap_method : {"sklearn", "ranked"}
        Average-precision tie handling (see :mod:`labelwise.metrics.ranking`).
    eval_transform : callable or "inherit"
        Transform used when the strategy scores its memory (relabeling, stored logits, herding); default: the
        test dataset's transform.
    run_config : dict, optional
        Stored in every task's trainer run directory (``config.yaml``).
    plot : bool
        Write ``map_curve.png``.
    log : callable, optional
        ``log(str)`` receives one line per task (e.g. ``print``).

    Returns
    -------
    ContinualResult
    """
    from labelwise.engine import Trainer, TrainerConfig

    if eval_transform == "inherit":
        eval_transform = getattr(scenario.test, "transform", "inherit") if scenario.test is not None else "inherit"
    strategy.setup(scenario, eval_transform=eval_transform)
    if trainer is None:
        trainer = Trainer(callbacks=[strategy], **dict(trainer_options or {}), run_config=run_config)
    elif trainer_options:
        trainer.config = TrainerConfig.model_validate({**trainer.config.model_dump(), **dict(trainer_options)})
    if strategy not in trainer.callbacks:
        raise ValueError("the trainer's callbacks must include the strategy")
    base_cfg = trainer.config
    out = Path(output_dir) if output_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    names = scenario.class_names
    c = scenario.num_classes
    ap = np.full((scenario.num_tasks, c), np.nan)
    rows: list[dict[str, Any]] = []
    for info in scenario.tasks:
        t = info.index
        row: dict[str, Any] = {"task": t, "classes": " ".join(scenario.task_class_names(t)),
                               "num_seen": int(len(info.seen_classes))}
        if strategy.skip_task(t):
            row.update({k: float("nan") for k in _METRIC_KEYS})
            row.update({"train_images": 0, "test_images": 0, "train_time": 0.0, "skipped": True})
            rows.append(row)
            continue
        lr = base_lr if (t == 0 and base_lr is not None) else base_cfg.lr
        trainer.config = TrainerConfig.model_validate({**base_cfg.model_dump(), "lr": lr, "seed": base_cfg.seed + t})
        trainer.output_dir = out / f"task_{t}" if out is not None else None
        data = strategy.train_data(t)
        criterion = strategy.criterion(t)
        strategy.begin_task(trainer, t)
        t0 = time.perf_counter()
        trainer.fit(model, criterion, data, None)
        trainer.end_task(t)
        row["train_time"] = time.perf_counter() - t0
        row["train_images"] = len(data)
        preds = trainer.predict(model, scenario.test)
        ev = evaluate_seen(preds.scores, preds.targets, info.seen_classes, threshold=threshold, ap_method=ap_method)
        ap[t, info.seen_classes] = ev["AP"]
        row.update({k: ev[k] for k in _METRIC_KEYS})
        row["test_images"] = ev["num_samples"]
        row["skipped"] = False
        if strategy.memory is not None:
            row["memory_size"] = len(strategy.memory)
            row["memory_positive_labels"] = int(strategy.memory.targets.sum())
        row.update({f"loss_{k}": v for k, v in strategy.term_means().items()})
        rows.append(row)
        if log is not None:
            log(f"[{scenario.name} {strategy.name}] task {t} ({row['num_seen']} classes): mAP {row['mAP']:.4f} "
                f"CF1 {row['CF1']:.4f} OF1 {row['OF1']:.4f} FPR {row['FPR']:.4f} ({row['train_time']:.1f}s)")
    trainer.config = base_cfg

    forgetting = class_forgetting(ap)
    last = {k: rows[-1][k] for k in _METRIC_KEYS}
    summary = {
        "scenario": scenario.name,
        "strategy": strategy.name,
        "options": strategy.options(),
        "threshold": threshold,
        "class_order": scenario.class_order_names,
        "avg_mAP": average_incremental([r["mAP"] for r in rows]),
        "last": last,
        "forgetting_mean": float(np.nanmean(forgetting)) if np.isfinite(forgetting).any() else float("nan"),
        "forgetting": {names[i]: (None if math.isnan(forgetting[i]) else float(forgetting[i])) for i in scenario.order},
    }
    result = ContinualResult(scenario.name, strategy.name, rows, ap, list(names), summary)
    if out is not None and trainer.is_global_zero:
        _write_outputs(out, scenario, result, plot=plot)
    return result


def _write_outputs(out: Path, scenario: ClassIncrementalScenario, result: ContinualResult, *, plot: bool) -> None:
    keys: list[str] = []
    for r in result.tasks:
        keys.extend(k for k in r if k not in keys)
    with open(out / "tasks.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in result.tasks:
            w.writerow({k: r.get(k, "") for k in keys})
    order = scenario.order
    with open(out / "ap_per_class.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["task"] + [scenario.class_names[i] for i in order])
        for t in range(result.ap.shape[0]):
            w.writerow([t] + ["" if math.isnan(v) else f"{v:.6f}" for v in result.ap[t, order]])
    task_of = scenario.task_of_class()
    forgetting = class_forgetting(result.ap)
    with open(out / "forgetting.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["class", "task", "final_AP", "forgetting"])
        for i in order:
            fa, fg = result.ap[-1, i], forgetting[i]
            w.writerow([scenario.class_names[i], int(task_of[i]), "" if math.isnan(fa) else f"{fa:.6f}",
                        "" if math.isnan(fg) else f"{fg:.6f}"])
    (out / "summary.json").write_text(json.dumps(_jsonable(result.summary), indent=2))
    if plot:
        plot_map_curves({result.strategy: result.curve()}, out / "map_curve.png", title=f"{scenario.name}")


def plot_map_curves(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], path: str | os.PathLike, *,
                    title: str = "") -> Path:
    """Draw mAP (in %) against the number of seen classes, one line per method (RebLL Fig. 4).

    Examples
    --------
    >>> import tempfile, os
    >>> p = plot_map_curves({"rebll": ([4, 6], [0.9, 0.8])}, os.path.join(tempfile.mkdtemp(), "c.png"))
    >>> p.name
    'c.png'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for name, (xs, ys) in curves.items():
        ax.plot(list(xs), [100 * v for v in ys], marker="o", label=name)
    ax.set_xlabel("number of classes")
    ax.set_ylabel("mAP (%)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj
