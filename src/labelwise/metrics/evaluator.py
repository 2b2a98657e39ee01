"""The Evaluator: accumulate scores and targets batch by batch (and across DDP ranks), then report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..registry import Registry
from ._validation import prepare, prepare_scores, prepare_targets
from .distributed import all_gather_rows, exchange_device, world_size
from .mulan import mulan_report
from .pedestrian import pedestrian_report
from .thresholded import multilabel_report

__all__ = ["Evaluator", "REPORTS", "metric_names"]

#: Evaluator kinds: the report function of each (``report(scores, targets, **options) -> dict``).
REPORTS = Registry("evaluator kind", supplied=("scores", "targets"))
REPORTS.register("multilabel")(multilabel_report)
REPORTS.register("mulan")(mulan_report)
REPORTS.register("pedestrian")(pedestrian_report)


def metric_names(kind: str = "multilabel", top_k: int | None = None) -> list[str]:
    """The scalar metrics an :class:`Evaluator` of ``kind`` reports (what ``trainer.monitor`` may name).

    Found by running the report on a tiny example, so it always matches what the report returns.

    Examples
    --------
    >>> "mAP" in metric_names("multilabel"), "mAP" in metric_names("mulan"), "mA" in metric_names("pedestrian")
    (True, False, True)
    >>> [k for k in metric_names("multilabel", top_k=3) if k.startswith("CF1")]
    ['CF1', 'CF1_top3']
    """
    REPORTS.get(kind)  # an unknown kind: KeyError with close matches
    scores = np.array([[0.9, 0.2, 0.6], [0.3, 0.8, 0.4], [0.7, 0.1, 0.2], [0.2, 0.6, 0.9]], dtype=np.float32)
    targets = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 0], [0, 1, 1]], dtype=np.float32)
    kwargs: dict[str, Any] = {"threshold": 0.5}
    if kind == "multilabel" and top_k is not None:
        kwargs["top_k"] = min(int(top_k), scores.shape[1])
    report = REPORTS.create(kind, scores=scores, targets=targets, **kwargs)
    names = sorted(k for k, v in report.items() if isinstance(v, int | float | np.floating) and not isinstance(v, bool))
    if kind == "multilabel" and top_k is not None and int(top_k) != kwargs["top_k"]:
        names = sorted(n.replace(f"_top{kwargs['top_k']}", f"_top{int(top_k)}") for n in names)
    return names


class Evaluator:
    """Accumulate ``[B, C]`` scores and targets, gather them across ranks and compute a metrics report.

    Parameters
    ----------
    kind : {"multilabel", "mulan", "pedestrian"}, default "multilabel"
        Which report :meth:`compute` returns (:func:`multilabel_report`, :func:`mulan_report`,
        :func:`pedestrian_report`).
    threshold : float, default 0.5
        Decision threshold passed to the report.
    top_k : int, optional
        Top-k variants (only for ``kind="multilabel"``).
    class_names : sequence of str, optional
        Class names for per-class entries and warnings.
    empty_class : {"exclude", "zero", "raise"}, default "exclude"
        Policy for classes where a metric is undefined.
    **report_kwargs
        Further keyword options of the report function (e.g. ``ap_method=``, ``coverage=``).

    Notes
    -----
    Chunks are stored on the CPU in their own float dtype. When ``torch.distributed`` is initialised,
    :meth:`compute` all-gathers the chunks of every rank (tensor ``all_gather`` with padding, so any backend
    with ``all_gather`` works; with NCCL the exchange goes through the current CUDA device). If sample
    indices were passed to :meth:`update`, each index is kept once (DistributedSampler pads the last batch
    with repeated samples) and rows are sorted by index, so the result equals a single-process evaluation
    exactly. Every rank must call :meth:`compute` (it is a collective operation).

    Examples
    --------
    >>> ev = Evaluator(kind="multilabel", threshold=0.5)
    >>> ev.update([[0.9, 0.2], [0.4, 0.7]], [[1, 0], [0, 1]], indices=[0, 1])
    >>> ev.update([[0.1, 0.8], [0.4, 0.7]], [[1, 1], [0, 1]], indices=[2, 1])  # index 1 repeated (padding)
    >>> round(ev.compute()["mAP"], 4), ev.scores.shape
    (0.9167, (3, 2))
    """

    def __init__(
        self,
        kind: str = "multilabel",
        threshold: float = 0.5,
        top_k: int | None = None,
        class_names: Sequence[str] | None = None,
        empty_class: str = "exclude",
        **report_kwargs: Any,
    ) -> None:
        REPORTS.check_options(kind, report_kwargs)  # an unknown kind (KeyError) or report option, now
        if top_k is not None and kind != "multilabel":
            raise ValueError(f"top_k is only supported for kind='multilabel', not {kind!r}")
        self.kind = kind
        self.threshold = float(threshold)
        self.top_k = top_k
        self.class_names = list(class_names) if class_names is not None else None
        self.empty_class = empty_class
        self.report_kwargs = report_kwargs
        self.reset()

    def reset(self) -> None:
        """Forget every accumulated chunk."""
        self._scores: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []
        self._indices: list[torch.Tensor] = []
        self._with_indices: bool | None = None
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        """Number of rows accumulated on this rank (before gathering / de-duplication)."""
        return sum(int(x.shape[0]) for x in self._scores)

    def update(self, scores: Any, targets: Any, indices: Any = None) -> None:
        """Add a batch: ``scores`` and ``targets`` ``[B, C]``, optional dataset ``indices`` ``[B]``."""
        s = prepare_scores(scores)
        t = prepare_targets(targets)
        if s.shape != t.shape:
            raise ValueError(f"scores and targets must have the same shape, got {tuple(s.shape)} and {tuple(t.shape)}")
        if self._scores and s.shape[1] != self._scores[0].shape[1]:
            raise ValueError(f"batch has {s.shape[1]} classes, earlier batches had {self._scores[0].shape[1]}")
        if self.class_names is not None and s.shape[1] != len(self.class_names):
            raise ValueError(f"batch has {s.shape[1]} classes but {len(self.class_names)} class_names were given")
        with_idx = indices is not None
        if self._with_indices is not None and with_idx != self._with_indices:
            raise ValueError("pass indices either with every update or with none")
        self._with_indices = with_idx
        if with_idx:
            idx = torch.as_tensor(np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices))
            idx = idx.reshape(-1).to(torch.int64)
            if idx.shape[0] != s.shape[0]:
                raise ValueError(f"indices has {idx.shape[0]} entries for a batch of {s.shape[0]} rows")
            self._indices.append(idx)
        self._scores.append(s.clone())
        self._targets.append(t.clone())
        self._cache = None

    def _gathered(self) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is not None:
            return self._cache
        if self._scores:
            dtype = torch.float64 if any(x.dtype == torch.float64 for x in self._scores) else torch.float32
            s = torch.cat([x.to(dtype) for x in self._scores], 0)
            t = torch.cat(self._targets, 0)
            c = s.shape[1]
        else:
            s, t, c = None, None, None
        idx = torch.cat(self._indices, 0) if self._with_indices else None
        if world_size() > 1:
            device = exchange_device()
            # agree on the number of classes, dtype and whether indices are used (ranks may be empty)
            meta = torch.tensor(
                [c if c is not None else -1, 1 if s is not None and s.dtype == torch.float64 else 0,
                 -1 if self._with_indices is None else int(self._with_indices)],
                dtype=torch.int64, device=device,
            )
            metas = [torch.zeros_like(meta) for _ in range(torch.distributed.get_world_size())]
            torch.distributed.all_gather(metas, meta)
            metas_l = [m.cpu().tolist() for m in metas]
            cs = {m[0] for m in metas_l if m[0] >= 0}
            if len(cs) > 1:
                raise ValueError(f"ranks disagree on the number of classes: {sorted(cs)}")
            uses = {m[2] for m in metas_l if m[2] >= 0}
            if len(uses) > 1:
                raise ValueError("some ranks passed indices to update() and others did not")
            if not cs:
                raise ValueError("Evaluator.compute() called before any update() on every rank")
            c = cs.pop()
            dtype = torch.float64 if any(m[1] for m in metas_l) else torch.float32
            if s is None:
                s, t = torch.empty(0, c, dtype=dtype), torch.empty(0, c, dtype=torch.bool)
            with_idx = uses.pop() == 1 if uses else False
            if with_idx and idx is None:
                idx = torch.empty(0, dtype=torch.int64)
            s = all_gather_rows(s.to(dtype))
            t = all_gather_rows(t.to(torch.uint8)).bool()
            idx = all_gather_rows(idx) if with_idx else None
        if s is None:
            raise ValueError("Evaluator.compute() called before any update()")
        if idx is not None:
            uniq, first = np.unique(idx.numpy(), return_index=True)  # sorted by index, first occurrence
            keep = torch.from_numpy(first)
            s, t = s[keep], t[keep]
        self._cache = (s.numpy(), t.numpy())
        return self._cache

    @property
    def scores(self) -> np.ndarray:
        """All accumulated scores ``[N, C]`` (gathered, de-duplicated and sorted by index when given)."""
        return self._gathered()[0]

    @property
    def targets(self) -> np.ndarray:
        """All accumulated targets ``[N, C]`` (bool), aligned with :attr:`scores`."""
        return self._gathered()[1]

    def compute(self) -> dict:
        """Gather (across ranks), de-duplicate by index and return the report of ``kind``."""
        s, t = self._gathered()
        prepare(s, t)
        kwargs = dict(self.report_kwargs)
        kwargs.update(threshold=self.threshold, empty_class=self.empty_class, class_names=self.class_names)
        if self.kind == "multilabel":
            kwargs["top_k"] = self.top_k
        return REPORTS.create(self.kind, scores=s, targets=t, **kwargs)
