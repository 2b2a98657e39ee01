"""The MULAN cross-validation pipeline of multi-label batch selection (Zhou et al., section 4.1):
:func:`run_benchmark` runs the protocol (:mod:`labelwise.tabular.protocol`) over datasets and folds, in one
process or in spawned workers, computes the statistics (:mod:`labelwise.tabular.statistics`) and saves the
results (:mod:`labelwise.tabular.results`). The names of those modules are re-exported here.

Examples
--------
>>> from labelwise.tabular import MulanProtocol, run_benchmark
>>> protocol = MulanProtocol(epochs=2, n_folds=2, selection_pressures=(2.0,), warmup_epochs=1)
>>> result = run_benchmark(["emotions"], protocol=protocol, log=None)  # doctest: +SKIP
>>> sorted({r["strategy"] for r in result.records})  # doctest: +SKIP
['adaptive', 'chain', 'hard', 'random']
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import scipy.sparse as sp
import torch

from .protocol import (
    PAPER_FEATURE_SELECTION,
    TABLE1_DATASETS,
    BenchmarkData,
    MulanProtocol,
    PreparedFold,
    _data_and_splits,
    load_benchmark_data,
    make_splits,
    prepare_fold,
    run_candidate,
    run_fold,
    select_candidate,
)
from .results import BenchmarkResult, format_summary_markdown, format_wilcoxon_markdown, save_results
from .statistics import HIGHER_IS_BETTER, METRICS, summary_table, wilcoxon_table

__all__ = [
    "METRICS",
    "HIGHER_IS_BETTER",
    "TABLE1_DATASETS",
    "PAPER_FEATURE_SELECTION",
    "MulanProtocol",
    "BenchmarkData",
    "BenchmarkResult",
    "load_benchmark_data",
    "make_splits",
    "PreparedFold",
    "prepare_fold",
    "run_candidate",
    "select_candidate",
    "run_fold",
    "run_benchmark",
    "summary_table",
    "wilcoxon_table",
    "format_summary_markdown",
    "format_wilcoxon_markdown",
    "save_results",
]

logger = logging.getLogger(__name__)


def _dataset_info(data: BenchmarkData, protocol: MulanProtocol) -> dict[str, Any]:
    return {
        "n_samples": int(data.Y.shape[0]), "n_features": data.num_features, "n_features_used": None,
        "n_labels": int(data.Y.shape[1]), "dropped_labels": len(data.dropped_labels),
        "sparse": bool(sp.issparse(data.X)), "feature_selection": protocol.features_kept(data.name),
        "cardinality": float(data.Y.sum(1).mean()),
    }


def _fold_task(name: str, root: Any, protocol: MulanProtocol, fold: int, verbose: bool,
               fixed: dict[str, float] | None = None, threads: int | None = None,
               ) -> tuple[str, dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    if threads is not None:
        torch.set_num_threads(threads)
    data, splits = _data_and_splits(name, root, protocol)
    if verbose and fold == 0:
        logger.info(f"{data.name}: {data.Y.shape[0]} samples, {data.num_features} features, {data.Y.shape[1]} "
                    f"labels kept ({len(data.dropped_labels)} with < {protocol.min_positives} positives dropped)")
    info = _dataset_info(data, protocol)
    recs, hist = run_fold(data, splits[fold], fold=fold, protocol=protocol, log=logger.info if verbose else None,
                          fixed_pressures=fixed)
    info["n_features_used"] = recs[0]["n_features"]
    return data.name, info, recs, hist


def _chosen_pressures(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    return {f"{r['model']}/{r['strategy']}": float(r["selection_pressure"]) for r in records
            if r["selected"] and r["selection_pressure"] is not None}


def run_benchmark(datasets: Sequence[str], *, protocol: MulanProtocol | None = None,
                  root: str | os.PathLike | None = None, output_dir: str | os.PathLike | None = None,
                  log: Callable[[str], None] | None = logger.info, jobs: int = 1) -> BenchmarkResult:
    """Run the protocol on every dataset (by MULAN name or path) and optionally save the results.

    Parameters
    ----------
    datasets : sequence of str
        MULAN dataset names (e.g. :data:`TABLE1_DATASETS`) or paths.
    protocol : MulanProtocol, optional
        Settings (default ``MulanProtocol()``).
    root : path-like, optional
        The MULAN collection directory (default ``labelwise.data.formats.mulan.default_mulan_root()``).
    output_dir : path-like, optional
        Where :func:`save_results` writes the tables (also after every finished fold, so a long run keeps
        its finished work).
    log : callable or None
        Progress messages (default: this module's logger at INFO; with ``jobs > 1`` the worker processes log
        to stderr at the level of the parent's ``labelwise`` logger).
    jobs : int
        Worker processes (spawned), each running whole (dataset, fold) tasks with one torch thread. The
        results do not depend on ``jobs``: every task is seeded by the protocol and its fold.

    Returns
    -------
    BenchmarkResult
        Records ordered by dataset (as given), fold, model, strategy and s_e.
    """
    protocol = protocol or MulanProtocol()
    if not datasets:
        raise ValueError("no dataset given")
    if int(jobs) < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    t0 = time.perf_counter()
    result = BenchmarkResult(records=[], histories={}, protocol=protocol, datasets={})
    n_run = protocol.run_folds or protocol.n_folds
    staged = protocol.pressure_selection == "first_fold"
    total = len(datasets) * n_run
    done: dict[tuple[int, int], tuple[str, dict[str, Any], list[dict[str, Any]], dict[str, Any]]] = {}
    # ready tasks: (dataset index, fold, fixed pressures); with "first_fold" the later folds of a dataset
    # become ready when its fold 0 is done
    ready = [(i, 0 if staged else f, None) for i in range(len(datasets)) for f in ([0] if staged else range(n_run))]

    def collect(key: tuple[int, int], out: tuple) -> list[tuple[int, int, dict[str, float] | None]]:
        done[key] = out
        result.records, result.histories, result.datasets = [], {}, {}
        for k in sorted(done):
            name, info, recs, hist = done[k]
            result.datasets[name] = info
            result.records.extend(recs)
            result.histories.update(hist)
        result.elapsed = time.perf_counter() - t0
        if log is not None:
            log(f"finished {out[0]} fold {key[1]} ({len(done)}/{total} tasks, {result.elapsed:.0f}s)")
        if output_dir is not None:
            save_results(result, output_dir)
        if staged and key[1] == 0:
            fixed = _chosen_pressures(out[2])
            return [(key[0], f, fixed) for f in range(1, n_run)]
        return []

    if int(jobs) == 1:
        while ready:
            i, fold, fixed = ready.pop(0)
            out = _fold_task(datasets[i], root, protocol, fold, False, fixed) if log is None else \
                _logged_task(datasets[i], root, protocol, fold, fixed, log)
            ready = collect((i, fold), out) + ready
    else:
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        level = logging.getLogger("labelwise").getEffectiveLevel()
        with ProcessPoolExecutor(max_workers=int(jobs), mp_context=mp.get_context("spawn"),
                                 initializer=_worker_logging, initargs=(level,)) as pool:
            running = {}
            while ready or running:
                while ready:
                    i, fold, fixed = ready.pop(0)
                    fut = pool.submit(_fold_task, datasets[i], root, protocol, fold, log is not None, fixed, 1)
                    running[fut] = (i, fold)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    ready.extend(collect(running.pop(fut), fut.result()))
    result.elapsed = time.perf_counter() - t0
    return result


def _worker_logging(level: int) -> None:
    """In a spawned worker (blank logging set-up): show the ``labelwise`` loggers on stderr at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[labelwise] %(message)s"))
    root = logging.getLogger("labelwise")
    root.addHandler(handler)
    root.setLevel(level)


def _logged_task(name: str, root: Any, protocol: MulanProtocol, fold: int, fixed: dict[str, float] | None,
                 log: Callable[[str], None]) -> tuple[str, dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    data, splits = _data_and_splits(name, root, protocol)
    if fold == 0:
        log(f"{data.name}: {data.Y.shape[0]} samples, {data.num_features} features, {data.Y.shape[1]} labels kept "
            f"({len(data.dropped_labels)} with < {protocol.min_positives} positives dropped)")
    info = _dataset_info(data, protocol)
    recs, hist = run_fold(data, splits[fold], fold=fold, protocol=protocol, log=log, fixed_pressures=fixed)
    info["n_features_used"] = recs[0]["n_features"]
    return data.name, info, recs, hist
