"""A resumable sweep of the MULAN batch-selection grid: one result per (dataset, model, strategy, fold, s_e).

A full paper-budget grid (13 datasets x 5 models x random/adaptive x 5 folds x 4 selection pressures, 100
epochs each) takes far longer than one session on a small machine. The sweep therefore treats every
**cell** - one training run of one (dataset, model, strategy, fold, s_e) - as the unit of work and appends
its record to a :class:`ResultStore` (a JSON-lines file) as soon as it finishes. A rerun with the same
settings skips the cells already in the store, so the grid accumulates across sessions and machines, and
:func:`sweep_progress` reports the cells done, the cells left and the time left estimated from the measured
cell times.

Cells are keyed by their grid coordinates *and* a fingerprint of the training protocol
(:func:`protocol_fingerprint`: epochs, learning rate, model options, ...), so a store never mixes results
of different settings under one key; the grid itself (datasets, models, strategies, folds, pressures) is
not part of the fingerprint, so it can grow between sessions.

Examples
--------
>>> from labelwise.tabular import MulanProtocol
>>> spec = SweepSpec(["scene", "yeast"], protocol=MulanProtocol(models=("dela",), strategies=("random", "adaptive"),
...                  selection_pressures=(8, 2)))
>>> len(spec.cells()), spec.cells()[0].key  # 2 datasets x 5 folds x (1 random + 2 adaptive)
(30, 'scene/dela/random/s-/fold0')
>>> [c.key for c in spec.cells()[:3]]
['scene/dela/random/s-/fold0', 'scene/dela/adaptive/s8/fold0', 'scene/dela/random/s-/fold1']
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .protocol import (
    MulanProtocol,
    PreparedFold,
    _data_and_splits,
    prepare_fold,
    run_candidate,
    select_candidate,
)
from .results import _json_default
from .statistics import METRICS

__all__ = [
    "Cell",
    "ResultStore",
    "SweepSpec",
    "protocol_fingerprint",
    "run_sweep",
    "sweep_progress",
    "format_progress",
    "selected_cells",
    "run_cell",
    "results_rows",
    "metric_keys",
]

logger = logging.getLogger(__name__)

#: Protocol fields that describe the grid rather than how one cell trains (excluded from the fingerprint).
_GRID_FIELDS = ("strategies", "models", "run_folds", "selection_pressures", "pressure_selection", "device")


def protocol_fingerprint(protocol: MulanProtocol, model: str) -> str:
    """A short hash of everything that decides how a cell of ``model`` trains under ``protocol``.

    The grid fields (models, strategies, folds run, pressures) and the device are left out, and only
    ``model``'s own constructor options count, so adding a model or a dataset keeps the finished cells.

    Examples
    --------
    >>> from labelwise.tabular import MulanProtocol
    >>> a = protocol_fingerprint(MulanProtocol(models=("dela",), epochs=100), "dela")
    >>> a == protocol_fingerprint(MulanProtocol(models=("dela", "clif"), epochs=100), "dela")
    True
    >>> a == protocol_fingerprint(MulanProtocol(models=("dela",), epochs=50), "dela")
    False
    """
    d = protocol.to_dict()
    for k in _GRID_FIELDS:
        d.pop(k, None)
    d["model_params"] = {**_constructor_defaults(model), **d.get("model_params", {}).get(model, {})}
    d["sampler_params"] = {k: v for k, v in sorted(d.get("sampler_params", {}).items())}
    blob = json.dumps(d, sort_keys=True, default=_json_default)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _constructor_defaults(model: str) -> dict[str, Any]:
    """The keyword defaults of ``model``'s constructor, so that a changed default changes the fingerprint."""
    import inspect

    from labelwise.models.registry import MODELS

    try:
        factory = MODELS.get(model)
        sig = inspect.signature(factory)
    except (KeyError, TypeError, ValueError):
        return {}
    return {k: v.default for k, v in sig.parameters.items()
            if v.default is not inspect.Parameter.empty and k not in ("num_classes", "in_features")}


@dataclass(frozen=True)
class Cell:
    """One training run of the grid."""

    dataset: str
    model: str
    strategy: str
    fold: int
    selection_pressure: float | None

    @property
    def key(self) -> str:
        """``"<dataset>/<model>/<strategy>/s<se>/fold<k>"`` (``s-`` for random)."""
        se = "-" if self.selection_pressure is None else f"{self.selection_pressure:g}"
        return f"{self.dataset}/{self.model}/{self.strategy}/s{se}/fold{self.fold}"


class ResultStore:
    """An append-only JSON-lines file of cell records, safe against a killed writer.

    Every record is one line written with a single ``write`` under an exclusive ``flock``, after a newline
    if the file does not end with one (so a line torn by a killed process never merges with the next
    record). Reading skips lines that do not parse (a torn line is logged and ignored), so the store stays
    valid whatever point a writer was killed at; the cell of a torn line simply counts as not done.

    Parameters
    ----------
    path : path-like
        The ``.jsonl`` file (created with its directory on the first append).

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "cells.jsonl")
    >>> store = ResultStore(path)
    >>> store.append({"cell": "a", "fingerprint": "f", "macro_f1": 0.5})
    >>> with open(path, "a") as fh:
    ...     _ = fh.write('{"cell": "b", "finger')  # a writer killed mid-line
    >>> store.append({"cell": "c", "fingerprint": "f"})
    >>> [r["cell"] for r in store.records()], sorted(store.done_keys())
    (['a', 'c'], [('a', 'f'), ('c', 'f')])
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def records(self) -> list[dict[str, Any]]:
        """Every complete record, in the order written."""
        if not self.path.exists():
            return []
        out = []
        with open(self.path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    logger.warning("%s line %d is not a complete JSON record (a killed write?): skipped",
                                   self.path, lineno)
                    continue
                if isinstance(rec, dict) and "cell" in rec:
                    out.append(rec)
                else:
                    logger.warning("%s line %d has no 'cell' key: skipped", self.path, lineno)
        return out

    def done_keys(self) -> set[tuple[str, str]]:
        """``(cell key, fingerprint)`` of every stored record."""
        return {(r["cell"], r.get("fingerprint", "")) for r in self.records()}

    def append(self, record: dict[str, Any]) -> None:
        """Append one record atomically (one ``write`` of one line, under an exclusive lock)."""
        import fcntl

        if "cell" not in record:
            raise KeyError("a store record needs a 'cell' key")
        line = json.dumps(record, default=_json_default, allow_nan=True)
        if "\n" in line:
            raise ValueError("record serialises to more than one line")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            lead = b""
            if size:
                os.lseek(fd, size - 1, os.SEEK_SET)
                if os.read(fd, 1) != b"\n":
                    lead = b"\n"
            os.write(fd, lead + line.encode("utf-8") + b"\n")
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


@dataclass
class SweepSpec:
    """The grid of a sweep: datasets (in run order) x ``protocol``'s models, strategies, folds and pressures.

    Cells are ordered dataset by dataset (give the cheapest first), then model, then **pressure pass**:
    the first pass runs random and the first selection pressure of ``protocol.selection_pressures`` over
    all folds, each later pass one more pressure. A sweep stopped early thus leaves whole
    (dataset, model) blocks comparing random with adaptive at the first pressure, rather than a few
    folds with every pressure.
    """

    datasets: Sequence[str]
    protocol: MulanProtocol
    root: str | os.PathLike | None = None

    @property
    def n_folds_run(self) -> int:
        return int(self.protocol.run_folds or self.protocol.n_folds)

    def cells(self) -> list[Cell]:
        """Every cell, in run order."""
        p = self.protocol
        out: list[Cell] = []
        loss_based = [s for s in p.strategies if s != "random"]
        for ds in self.datasets:
            for model in p.models:
                for i, se in enumerate(p.selection_pressures):
                    for fold in range(self.n_folds_run):
                        if i == 0 and "random" in p.strategies:
                            out.append(Cell(ds, model, "random", fold, None))
                        for s in loss_based:
                            out.append(Cell(ds, model, s, fold, float(se)))
        return out

    def fingerprints(self) -> dict[str, str]:
        """Fingerprint per model."""
        return {m: protocol_fingerprint(self.protocol, m) for m in self.protocol.models}

    def pending(self, store: ResultStore) -> list[Cell]:
        """The cells not yet in ``store`` (under this protocol's fingerprints), in run order."""
        done = store.done_keys()
        fp = self.fingerprints()
        return [c for c in self.cells() if (c.key, fp[c.model]) not in done]


# ---- running ---------------------------------------------------------------------------------------
_FOLD_CACHE: dict[tuple[str, int, str], PreparedFold] = {}


def _prepared(name: str, root: Any, protocol: MulanProtocol, fold: int) -> PreparedFold:
    key = (str(name), int(fold), json.dumps(protocol.to_dict(), sort_keys=True, default=_json_default))
    if key not in _FOLD_CACHE:
        if len(_FOLD_CACHE) >= 5:  # at most the 5 folds of one dataset in memory
            _FOLD_CACHE.pop(next(iter(_FOLD_CACHE)))
        data, splits = _data_and_splits(name, root, protocol)
        _FOLD_CACHE[key] = prepare_fold(data, splits[fold], fold=fold, protocol=protocol)
    return _FOLD_CACHE[key]


def run_cell(cell: Cell, protocol: MulanProtocol, *, root: Any = None, threads: int | None = None) -> dict[str, Any]:
    """Train one cell and return its store record (test measures, validation score, times, history)."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    pf = _prepared(cell.dataset, root, protocol, cell.fold)
    prep = time.perf_counter() - t0
    rec, history = run_candidate(pf, cell.model, cell.strategy, cell.selection_pressure, protocol=protocol)
    rec.pop("selected", None)
    rec["dataset"] = cell.dataset  # the name the grid uses (the loader's display name may differ in case)
    keep = ("train_loss", f"val_{protocol.monitor}")
    rec.update({
        "cell": cell.key, "fingerprint": protocol_fingerprint(protocol, cell.model), "device": protocol.device,
        "host_cpus": os.cpu_count(),
        "cell_time": time.perf_counter() - t0, "fold_prep_time": prep,
        # per epoch, compactly: {measure: [value of epoch 1, 2, ...]} rounded to 5 decimals
        "history": {k: [round(float(h[k]), 5) for h in history] for k in keep if history and k in history[0]},
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    return rec


def run_sweep(spec: SweepSpec, store: ResultStore, *, jobs: int = 1, max_cells: int | None = None,
              deadline: float | None = None, log: Callable[[str], None] | None = print) -> int:
    """Run the pending cells of ``spec`` and append each record to ``store`` as it finishes.

    Parameters
    ----------
    spec : SweepSpec
    store : ResultStore
    jobs : int
        Worker processes (spawned, one torch thread each); 1 runs in this process.
    max_cells : int, optional
        Stop after this many cells.
    deadline : float, optional
        ``time.time()`` after which no new cell is started (running ones finish).
    log : callable or None
        Progress lines.

    Returns
    -------
    int
        Cells run and stored. A cell that raises is logged and left pending (a later run retries it).
    """
    todo = spec.pending(store)
    if max_cells is not None:
        todo = todo[: int(max_cells)]
    total = len(spec.cells())
    n_done0 = total - len(spec.pending(store))
    if log is not None:
        log(f"sweep: {n_done0}/{total} cells done, {len(todo)} to run now")
    ran = 0

    def finished(rec: dict[str, Any]) -> None:
        nonlocal ran
        store.append(rec)
        ran += 1
        if log is not None:
            log(f"[{n_done0 + ran}/{total}] {rec['cell']}: test macro_f1 {rec['macro_f1']:.4f} "
                f"macro_auc {rec['macro_auc']:.4f} (best epoch {rec['best_epoch']}/{rec['epochs_run']}), "
                f"{rec['cell_time']:.0f}s")

    def expired() -> bool:
        return deadline is not None and time.time() >= deadline

    def failed(cell: Cell, exc: BaseException) -> None:
        # a failing cell is logged and left pending (a later run retries it); the others go on
        logger.error("cell %s failed: %s: %s", cell.key, type(exc).__name__, exc)
        if log is not None:
            log(f"FAILED {cell.key}: {type(exc).__name__}: {exc}")

    if int(jobs) <= 1:
        for cell in todo:
            if expired():
                break
            try:
                rec = run_cell(cell, spec.protocol, root=spec.root)
            except Exception as exc:  # noqa: BLE001 - one bad cell must not end a long sweep
                failed(cell, exc)
                continue
            finished(rec)
        return ran
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    queue = list(todo)
    with ProcessPoolExecutor(max_workers=int(jobs), mp_context=mp.get_context("spawn")) as pool:
        running: dict[Any, Cell] = {}
        while queue or running:
            while queue and len(running) < int(jobs) and not expired():
                cell = queue.pop(0)
                running[pool.submit(run_cell, cell, spec.protocol, root=spec.root, threads=1)] = cell
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                cell = running.pop(fut)
                try:
                    rec = fut.result()
                except Exception as exc:  # noqa: BLE001 - one bad cell must not end a long sweep
                    failed(cell, exc)
                    continue
                finished(rec)
    return ran


# ---- progress and results ---------------------------------------------------------------------------
#: (samples, features used, labels kept) of Table 1's datasets in the shared collection (docs/batch_selection.md),
#: for estimating the time of cells of datasets without any measured cell.
DATASET_SIZES: dict[str, tuple[int, int, int]] = {
    "corel5k": (5000, 499, 149), "rcv1subset1": (6000, 944, 80), "rcv1subset2": (6000, 944, 81),
    "rcv1subset3": (6000, 944, 82), "yahoo-Arts1": (7484, 2314, 24), "cal500": (502, 68, 119),
    "yahoo-Business1": (11214, 2192, 25), "tmc2007": (28596, 500, 22), "bibtex": (7395, 1836, 159),
    "enron": (1702, 1001, 33), "yeast": (2417, 103, 14), "langlog": (1460, 1004, 22), "scene": (2407, 294, 6),
}


def _cost(dataset: str, model: str, rec: dict[str, Any] | None = None) -> float | None:
    """A relative cost of one cell: samples x (features + labels), or samples x labels for CLIF."""
    if rec is not None:
        n, d, q = float(rec.get("n_train", 0)) * 1.25, float(rec.get("n_features", 0)), float(rec.get("n_labels", 0))
    elif dataset in DATASET_SIZES:
        n, d, q = (float(v) for v in DATASET_SIZES[dataset])
    else:
        return None
    return n * q if model == "clif" else n * (d + q)


def sweep_progress(spec: SweepSpec, store: ResultStore, *, jobs: int = 1) -> dict[str, Any]:
    """Cells done / total and the time left, estimated from the measured cell times.

    The estimate of a pending cell is the mean measured ``cell_time`` of its (dataset, model, strategy),
    else of its (dataset, model), else its model's median seconds per unit of cost on the measured datasets
    times the cell's cost (samples x (features + labels); samples x labels for CLIF;
    :data:`DATASET_SIZES`), else the mean of all measured cells; the sum is divided by ``jobs``. The
    times are those of the machine the cells ran on.
    """
    fp = spec.fingerprints()
    recs = [r for r in store.records() if r.get("fingerprint") == fp.get(r.get("model", ""))]
    cells = spec.cells()
    keys = {c.key for c in cells}
    done_keys = {r["cell"] for r in recs} & keys
    times: dict[tuple, list[float]] = {}
    rate: dict[str, list[float]] = {}  # per model: seconds per unit of _cost
    for r in recs:
        t = float(r.get("cell_time", r.get("train_time", 0.0)))
        for k in ((r["dataset"], r["model"], r["strategy"]), (r["dataset"], r["model"]), ()):
            times.setdefault(k, []).append(t)
        c = _cost(r["dataset"], r["model"], r)
        if c:
            rate.setdefault(r["model"], []).append(t / c)
    left = 0.0
    unknown = 0
    by_ds: dict[str, list[int]] = {}
    for c in cells:
        d = by_ds.setdefault(c.dataset, [0, 0])
        d[1] += 1
        if c.key in done_keys:
            d[0] += 1
            continue
        for k in ((c.dataset, c.model, c.strategy), (c.dataset, c.model)):
            if k in times:
                left += float(np.mean(times[k]))
                break
        else:
            cost = _cost(c.dataset, c.model)
            if c.model in rate and cost:
                left += float(np.median(rate[c.model])) * cost
            elif () in times:
                left += float(np.mean(times[()]))
            else:
                unknown += 1
    return {"done": len(done_keys), "total": len(cells), "seconds_left": left / max(1, int(jobs)),
            "cells_without_estimate": unknown, "per_dataset": by_ds, "measured_cells": len(recs)}


def format_progress(progress: dict[str, Any]) -> str:
    """One line per dataset and a total line with the estimated time left."""
    lines = [f"{ds}: {d[0]}/{d[1]}" for ds, d in progress["per_dataset"].items()]
    h = progress["seconds_left"] / 3600
    note = ""
    if progress["cells_without_estimate"]:
        note = f" ({progress['cells_without_estimate']} cells without any measured time: not counted)"
    lines.append(f"total: {progress['done']}/{progress['total']} cells done, about {h:.1f} h left{note}")
    return "\n".join(lines)


def selected_cells(records: Iterable[dict[str, Any]], *, monitor: str = "macro_auc",
                   pressures: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """One record per (dataset, model, strategy, fold): random as is, a loss-based strategy at the s_e with
    the best validation ``monitor`` among its finished pressures (restricted to ``pressures`` if given).

    Each returned record gets ``pressures_tried`` (the s_e values it was chosen from).

    Examples
    --------
    >>> recs = [{"dataset": "d", "model": "m", "strategy": "adaptive", "fold": 0, "selection_pressure": s,
    ...          "val_macro_auc": v} for s, v in ((2.0, 0.7), (8.0, 0.8))]
    >>> [(r["selection_pressure"], r["pressures_tried"]) for r in selected_cells(recs)]
    [(8.0, [2.0, 8.0])]
    """
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        se = r.get("selection_pressure")
        if pressures is not None and se is not None and float(se) not in {float(p) for p in pressures}:
            continue
        groups.setdefault((r["dataset"], r["model"], r["strategy"], int(r["fold"])), []).append(r)
    out = []
    for rs in groups.values():
        rs = sorted(rs, key=lambda r: -1.0 if r.get("selection_pressure") is None else float(r["selection_pressure"]))
        best = dict(rs[select_candidate(rs, monitor)])
        best["pressures_tried"] = [r.get("selection_pressure") for r in rs if r.get("selection_pressure") is not None]
        out.append(best)
    return out


def metric_keys() -> tuple[str, ...]:
    """The six measures stored per cell (:data:`labelwise.tabular.METRICS`)."""
    return tuple(METRICS)


def _nan_to_none(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


def results_rows(selected: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of ``docs/results/batch_selection.json``: ``dataset``, ``method`` (``<model>:<strategy>``),
    ``seed`` (the fold), the six measures and the chosen ``selection_pressure``."""
    rows = []
    for r in selected:
        row = {"dataset": r["dataset"], "method": f"{r['model']}:{r['strategy']}", "seed": int(r["fold"])}
        row.update({m: _nan_to_none(float(r[m])) for m in METRICS})
        row["selection_pressure"] = r.get("selection_pressure")
        row["pressures_tried"] = r.get("pressures_tried", [])
        row["best_epoch"] = r.get("best_epoch")
        rows.append(row)
    rows.sort(key=lambda x: (x["dataset"], x["method"], x["seed"]))
    return rows

