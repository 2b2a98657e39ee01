"""The Lightning Fabric training loop: one explicit loop that research methods can read and hook into.

Running on several processes
----------------------------
The same code runs on one CPU, one GPU, several GPUs and several nodes; Fabric reads the environment:

* ``torchrun --nproc_per_node 2 train.py`` (or ``--nnodes N`` for multi-node, or SLURM): set
  ``devices`` to the processes per node, ``num_nodes`` to the nodes and ``strategy="ddp"``
  (``"auto"`` picks DDP when ``devices > 1``); each process runs the script.
* ``python train.py`` with ``devices=2``: Fabric re-launches the script for the other ranks (the script must
  be importable without side effects before the ``Trainer`` is created, as with Lightning).

Loss reduction under DDP
------------------------
The global batch of a step is split over the processes and DDP *averages* gradients over them. The trainer
computes the criterion element-wise (``reduction="none"``, ``[B, C]``) and reduces it itself so that the
update equals the single-process update on the whole global batch, whatever the criterion's reduction:

* ``"mean"``: the sum of the element losses divided by the number of *known* entries of the global batch;
* ``"batchmean"``: the sum divided by the global number of samples;
* ``"sum"``: the sum over the global batch.

Each process's loss is its local sum times ``world_size / global_denominator`` (the denominators are
summed with one all-reduce per step when ``world_size > 1``), so DDP's average of the gradients is the
gradient of the global loss. A model with its own ``loss(outputs, batch, criterion) -> [B]`` is reduced the
same way (``"sum"``: sum, otherwise divided by the global batch size). Terms from
:meth:`Callback.extra_loss` are added on each process as they are (DDP averages them over the processes).
A criterion without a ``reduction`` attribute must return element-wise ``[B, C]`` losses (treated as
``"mean"``) or a scalar (used as is; no per-sample losses are then available to callbacks).

The model contract and this reduction are :mod:`labelwise.engine.step` (shared with the tabular and online
loops). The per-sample loss given to callbacks is the sum over classes (and over ``loss_logits`` terms) of the
element losses of each sample in this process's shard.

BatchNorm statistics are computed per process unless ``sync_batchnorm=True``, so models with BatchNorm do
not reproduce single-process training exactly under DDP.

Run directory
-------------
The trainer is the directory's one owner (the files are written by :mod:`labelwise.engine.run_files`;
``labelwise.run`` adds the test split's results through :meth:`Trainer.write_split_results`). Only the
process of global rank 0 writes:

``config.yaml``
    ``run_config`` (the resolved recipe) when given, else ``{"trainer": <TrainerConfig>}``.
``metrics.csv``
    One row per epoch: ``epoch`` (1-based), ``step`` (global step at the end of the epoch), ``train_loss`` (mean over
    the epoch's steps of the global-batch loss, callback terms included), ``lr`` (the head lr at the end of
    the epoch, before an epoch-wise schedule step), every scalar validation metric (on evaluated epochs),
    ``val_skipped``, ``epoch_time`` (seconds of training, evaluation excluded) and ``skipped`` (unreadable
    training inputs, summed over processes).
``tb/``
    TensorBoard scalars: ``train/loss_step`` and ``train/lr`` every ``log_every_n_steps`` steps,
    ``epoch/*`` for the metrics rows.
``checkpoints/best.*``, ``checkpoints/last.*``
    See :mod:`labelwise.engine.checkpoint`. ``best`` (weights + sidecar, no resume state) is written when
    the monitored metric improves; ``last`` (with the resume state) after every epoch and every
    ``checkpoint_every_n_steps`` steps.
``report/``
    :func:`labelwise.analysis.report.write_report` on the best epoch's validation predictions, which are
    stored in ``report/predictions_val.npz`` for the page ``report/index.html``
    (:mod:`labelwise.analysis.html_report`).

Epoch numbering
---------------
Everything a user reads counts epochs from 1: ``metrics.csv``, the progress bar, ``best_epoch`` (summary and
sidecars), the ``epoch`` of a checkpoint sidecar (the epoch its weights come from: ``last`` written after
epoch 3 says 3, ``best`` selected on epoch 2 says 2, a mid-epoch ``last`` names the epoch in progress with its
``step_in_epoch``) and error messages. Internally ``Trainer.epoch`` (and the ``epoch`` argument of the
callback hooks) is the 0-based index of the current epoch, i.e. the number of epochs completed.

Safety
------
While ``fit`` runs, rank 0 holds the run-directory lock (:mod:`labelwise.engine.run_lock`) and sweeps the
temporary files an interrupted earlier run left behind. A non-finite training loss stops the run with a
:class:`NonFiniteLossError` naming the epoch, step and learning rate, before anything is evaluated or saved,
so the last checkpoint on disk is the last good one. A finite loss that blows up, more than
``divergence_factor`` (default 1e4) times the median magnitude of the run's first 50 step losses, is a
divergence: with ``stop_on_divergence`` (the default) it stops the run the same way with a
:class:`LossDivergedError`, else it is logged once as a warning and training continues. Validation scores
that are NaN/inf (weights that diverged after the last checked step) stop the run with a
:class:`LossDivergedError` too. The checks read the loss every step in a single CPU process and every
``log_every_n_steps`` steps (and before every checkpoint and evaluation) otherwise, so they add no device
synchronisation per step (:class:`~labelwise.engine.divergence.LossMonitor`). They are off with
``precision="16-mixed"``, whose gradient scaler skips the steps with non-finite values by design. A checkpoint that cannot be written (disk full) raises
:class:`~labelwise.engine.checkpoint.CheckpointWriteError` and leaves the previous one intact.

EMA
---
With ``ema_decay`` set, the EMA weights are evaluated, selected as "best", written as the weights of both
checkpoints (the raw weights go into the resume state) and copied into the model at the end of ``fit``.

Examples
--------
>>> import numpy as np, torch
>>> from labelwise.data import ArrayDataset
>>> from labelwise.engine import Trainer
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(64, 5)).astype("float32"); y = (x[:, :3] > 0).astype("uint8")
>>> ds = ArrayDataset(x, y, class_names=["a", "b", "c"])
>>> class Net(torch.nn.Module):
...     def __init__(self):
...         super().__init__(); self.fc = torch.nn.Linear(5, 3)
...     def forward(self, x):
...         return {"logits": self.fc(x)}
>>> class BCE(torch.nn.Module):
...     reduction = "mean"
...     def forward(self, logits, targets, mask=None):
...         loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
...         loss = loss * mask if mask is not None else loss
...         return loss if self.reduction == "none" else loss.sum() / mask.sum()
>>> trainer = Trainer(max_epochs=2, batch_size=16, lr=0.05, progress=False, accelerator="cpu")
>>> summary = trainer.fit(Net(), BCE(), ds, ds)
>>> summary["epochs"], summary["global_step"]
(2, 8)
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..protocols import Dataset
from .callbacks import Callback
from .checkpoint import (
    load_checkpoint,
    resolve_checkpoint_path,
    save_checkpoint,
    sweep_temporary_files,
)
from .config import TrainerConfig
from .distributed import device_type, restore_nvml_env
from .divergence import LossDivergedError, LossMonitor, NonFiniteLossError
from .ema import ModelEMA
from .loading import SeededBatches, SeededFetch, batch_seed, resolve_num_workers, resolve_pin_memory
from .logging import MetricsCSV, TensorBoardLogger, scalar_items
from .optim import build_optimizer, build_scheduler, scheduler_interval
from .predictions import Predictions, gather_predictions
from .run_files import RunFiles
from .samplers import EvalShardSampler, RandomBatchSampler, ShardedBatchSampler
from .seeding import seed_everything, seed_worker, set_rng_state
from .step import criterion_reduction, forward_and_loss, model_outputs
from .trainer_state import checkpoint_metadata, restore_trainer_state, trainer_state

__all__ = ["Trainer", "Predictions", "NonFiniteLossError", "LossDivergedError", "seed_everything"]

logger = logging.getLogger(__name__)


def _to_channels_last(batch: dict[str, Any]) -> dict[str, Any]:
    x = batch.get("input")
    if isinstance(x, torch.Tensor) and x.ndim == 4:
        batch = dict(batch)
        batch["input"] = x.contiguous(memory_format=torch.channels_last)
    return batch


def _set_on_error(data: Any, value: str | None) -> list[tuple[Any, str]]:
    """Set ``on_error`` on ``data`` and its parents (views); returns what to restore."""
    changed: list[tuple[Any, str]] = []
    if value is None:
        return changed
    seen = set()
    obj = data
    while obj is not None and id(obj) not in seen:
        seen.add(id(obj))
        if hasattr(obj, "on_error"):
            changed.append((obj, obj.on_error))
            obj.on_error = value
        obj = getattr(obj, "parent", None)
    return changed


class Trainer:
    """Train, evaluate and predict multi-label models with Lightning Fabric.

    Parameters
    ----------
    config : TrainerConfig, optional
        Engine options; ``**overrides`` are validated and applied on top (``Trainer(max_epochs=3)``).
    callbacks : iterable of Callback
        Hooks (continual strategies, replay, adaptive samplers...); their state is saved in checkpoints.
    output_dir : str or path, optional
        Run directory: ``config.yaml``, ``metrics.csv``, ``tb/``, ``checkpoints/{best,last}.*`` and the
        report. None: nothing is written (no checkpoints, no resume).
    run_config : dict, optional
        The resolved run configuration (which model, data and loss were used), written to
        ``config.yaml`` and stored verbatim in every checkpoint sidecar so the model can be rebuilt.
    evaluator : callable, optional
        Factory ``evaluator(kind=, threshold=, class_names=)`` of an object with ``update(scores, targets,
        indices=None)``, ``compute() -> dict`` and ``reset()``; default :class:`labelwise.metrics.Evaluator`.

    Attributes
    ----------
    model : nn.Module
        The model being trained (unwrapped from DDP).
    criterion, optimizer, scheduler, ema, fabric, callbacks
        The training objects (a callback may replace ``trainer.criterion``).
    epoch, global_step, step_in_epoch : int
        Progress counters (``epoch`` is the 0-based index of the current epoch = epochs completed; files and
        messages number epochs from 1, see "Epoch numbering").
    history : list of dict
        The metrics rows of the epochs (as in ``metrics.csv``; after a resume, rank 0 also holds the rows
        restored from the run directory).
    last_metrics : dict
        The latest validation metrics (scalars and per-class lists).
    world_size, global_rank, is_global_zero
        Distributed context.

    Examples
    --------
    See the module documentation; a minimal run::

        trainer = Trainer(max_epochs=10, optimizer="adamw", lr=1e-3, output_dir="runs/exp1",
                          run_config=resolved_yaml_dict)
        summary = trainer.fit(model, criterion, train_ds, val_ds)
        metrics = trainer.evaluate(model, test_ds)
        scores, targets = trainer.predict(model, test_ds)
    """

    def __init__(
        self,
        config: TrainerConfig | None = None,
        *,
        callbacks: Iterable[Callback] = (),
        output_dir: str | os.PathLike | None = None,
        run_config: dict | None = None,
        evaluator: Callable[..., Any] | None = None,
        **overrides: Any,
    ) -> None:
        base = config if config is not None else TrainerConfig()
        if not isinstance(base, TrainerConfig):
            raise TypeError(f"config must be a TrainerConfig, got {type(base).__name__}")
        if overrides:
            base = TrainerConfig.model_validate({**base.model_dump(), **overrides})
        self.config = base
        self.callbacks: list[Callback] = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be labelwise.engine.Callback instances, got {type(cb).__name__}")
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.run_config = dict(run_config or {})
        self.evaluator_factory = evaluator
        self.fabric: Any = None
        self.model: torch.nn.Module | None = None
        self.criterion: Any = None
        self.optimizer: Any = None
        self.scheduler: Any = None
        self.ema: ModelEMA | None = None
        self.batch_sampler: Any = None
        self.class_names: list[str] | None = None
        self.per_class_thresholds: list[float] | None = None
        self.epoch = 0
        self.global_step = 0
        self.step_in_epoch = 0
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.bad_evals = 0
        self.should_stop = False
        self.last_metrics: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self._fmodel: Any = None
        self._hooks: list[Callback] = []
        self._best_predictions: Predictions | None = None
        self._tb: TensorBoardLogger | None = None
        self._csv: MetricsCSV | None = None
        self._accum = {"loss_sum": 0.0, "steps": 0, "skipped": 0, "time": 0.0}
        self._loss_acc: torch.Tensor | None = None
        self._epoch_done = False
        self.precision: str = self.config.resolved_precision(device_type(self.config.accelerator))
        self._loaders: dict[tuple[str, int], tuple[Any, Any]] | None = None  # persistent loaders of a fit
        self._monitor = LossMonitor(self.config.divergence_factor, self.config.stop_on_divergence)

    # -- distributed context -------------------------------------------------------------------------
    def setup_fabric(self) -> Any:
        """Create (once) and launch the :class:`lightning.fabric.Fabric` of this trainer."""
        if self.fabric is None:
            from lightning.fabric import Fabric

            restore_nvml_env()
            cfg = self.config
            self.precision = cfg.resolved_precision(device_type(cfg.accelerator))
            fabric = Fabric(
                accelerator=cfg.accelerator,
                devices=cfg.devices,
                strategy=cfg.strategy,
                precision=self.precision,
                num_nodes=cfg.num_nodes,
            )
            fabric.launch()
            self.fabric = fabric
        return self.fabric

    @property
    def world_size(self) -> int:
        return 1 if self.fabric is None else int(self.fabric.world_size)

    @property
    def global_rank(self) -> int:
        return 0 if self.fabric is None else int(self.fabric.global_rank)

    @property
    def is_global_zero(self) -> bool:
        return self.global_rank == 0

    @property
    def device(self) -> torch.device:
        return torch.device("cpu") if self.fabric is None else self.fabric.device

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Gather ``tensor`` (same shape on every process) from all processes: ``[world_size, *shape]``.

        Not differentiable. On one process the result is ``tensor.unsqueeze(0)``.

        Examples
        --------
        >>> Trainer().all_gather(torch.ones(2)).shape
        torch.Size([1, 2])
        """
        if self.world_size == 1:
            return tensor.unsqueeze(0)
        import torch.distributed as dist

        t = tensor.detach().to(self.device).contiguous()
        parts = [torch.empty_like(t) for _ in range(self.world_size)]
        dist.all_gather(parts, t)
        return torch.stack(parts)

    def _progress(self, iterable: Any, *, total: int | None, desc: str, initial: int = 0) -> Any:
        from tqdm.auto import tqdm

        disable = not (self.config.progress and self.is_global_zero and sys.stderr.isatty())
        return tqdm(iterable, total=total, desc=desc, initial=initial, disable=disable, leave=False, dynamic_ncols=True)

    # -- data loading --------------------------------------------------------------------------------
    @property
    def channels_last(self) -> bool:
        """Whether models and image batches use the channels-last memory format (``trainer.channels_last``)."""
        setting = self.config.channels_last
        return self.device.type == "cuda" if setting == "auto" else bool(setting)

    def num_workers_for(self, data: Any) -> int:
        """DataLoader workers for ``data`` (``trainer.num_workers`` with ``"auto"`` resolved; engine.loading)."""
        per_node = max(1, self.world_size // max(1, self.config.num_nodes))
        return resolve_num_workers(self.config.num_workers, data, processes_per_node=per_node)

    def _loader(self, data: Any, batch_sampler: Any, *, seed_parts: list[int], offset: int = 0,
                cache: str | None = None) -> torch.utils.data.DataLoader:
        """The DataLoader of ``data`` batched by ``batch_sampler`` (see :mod:`labelwise.engine.loading`).

        With workers, batch ``i`` is loaded with the seed of ``(*seed_parts, offset + i)``. ``cache`` names a
        loader kept for the rest of the fit (persistent workers): a later call with the same name and dataset
        swaps in the new batch sampler and seeds and reuses the workers.
        """
        from labelwise.data import collate_batch

        cfg = self.config
        workers = self.num_workers_for(data)
        persistent = workers > 0 and cfg.persistent_workers and cache is not None and self._loaders is not None
        key = (cache or "", id(data))
        if persistent and key in self._loaders:
            loader, seeded = self._loaders[key]
            seeded.set(batch_sampler, seed_parts, offset)
            return loader
        gen = torch.Generator()
        gen.manual_seed(batch_seed(*seed_parts, offset))
        seeded = SeededBatches(batch_sampler, seed_parts, offset) if workers > 0 else None
        loader = torch.utils.data.DataLoader(
            SeededFetch(data) if workers > 0 else data,
            batch_sampler=seeded if workers > 0 else batch_sampler,
            collate_fn=collate_batch,
            num_workers=workers,
            pin_memory=resolve_pin_memory(cfg.pin_memory, self.device),
            worker_init_fn=seed_worker if workers > 0 else None,
            generator=gen,
            persistent_workers=persistent,
        )
        if persistent:
            self._loaders[key] = (loader, seeded)
        return loader

    def _close_loaders(self) -> None:
        """Stop the persistent workers of the fit."""
        loaders, self._loaders = self._loaders or {}, None
        for loader, _ in loaders.values():
            it = getattr(loader, "_iterator", None)
            shutdown = getattr(it, "_shutdown_workers", None)
            if callable(shutdown):
                shutdown()
            loader._iterator = None

    # -- one optimisation step -----------------------------------------------------------------------
    def _train_step(self, batch: dict[str, Any]) -> bool:
        """Run one step on this process's shard; returns False when the step was skipped (empty batch)."""
        cfg = self.config
        fabric = self.fabric
        self._accum["skipped"] += int(batch.get("skipped", 0) or 0)
        if fabric.device.type != "cpu":
            batch = fabric.to_device(batch)
        if self.channels_last:
            batch = _to_channels_last(batch)
        for cb in self._hooks:
            batch = cb.on_before_batch(self, batch)
            if batch is None:
                raise TypeError(f"{type(cb).__name__}.on_before_batch must return the batch, got None")
        empty = batch.get("input") is None or batch["target"].shape[0] == 0
        n_local = 0 if empty else int(batch["target"].shape[0])
        mask = None if empty else batch.get("mask")
        known_local = 0 if empty else (int(batch["target"].numel()) if mask is None else mask.sum())
        world = self.world_size
        if world > 1:
            stats = torch.stack(
                [torch.as_tensor(known_local, dtype=torch.float64, device=fabric.device),
                 torch.as_tensor(float(n_local), dtype=torch.float64, device=fabric.device),
                 torch.as_tensor(float(empty), dtype=torch.float64, device=fabric.device)]
            )
            stats = fabric.all_reduce(stats, reduce_op="sum")
            known_global, n_global, any_empty = stats.tolist()
            if any_empty > 0:
                return False
        else:
            if empty:
                return False
            known_global, n_global = known_local, n_local

        self.optimizer.zero_grad(set_to_none=True)
        outputs, terms = forward_and_loss(self.model, batch, self.criterion, module=self._fmodel)
        loss = terms.reduce(known=known_global, batch_size=n_global, world_size=world)
        logged = loss.detach() / world
        per_sample = terms.per_sample
        for cb in self._hooks:
            extra = cb.extra_loss(self, batch, outputs)
            if extra is not None:
                loss = loss + extra
                logged = logged + extra.detach() / world
        if self.precision != "16-mixed":  # the fp16 grad scaler skips non-finite steps by design
            self._monitor.record(loss, epoch=self.epoch, step_in_epoch=self.step_in_epoch,
                                 global_step=self.global_step + 1, lr=self.current_lr())
            if (fabric.device.type == "cpu" and world == 1) or (self.global_step + 1) % cfg.log_every_n_steps == 0:
                self._check_finite()  # free on one CPU process; elsewhere every log_every_n_steps (one sync)
        fabric.backward(loss)
        if cfg.grad_clip_norm is not None or cfg.grad_clip_value is not None:
            try:
                fabric.clip_gradients(
                    self._fmodel, self.optimizer, max_norm=cfg.grad_clip_norm, clip_val=cfg.grad_clip_value,
                    error_if_nonfinite=self.precision != "16-mixed",
                )
            except RuntimeError:
                self._check_finite()  # a non-finite loss gives non-finite gradients: say so
                raise
        self.optimizer.step()
        if self.scheduler is not None and scheduler_interval(cfg) == "step":
            total = getattr(self.scheduler, "total_steps", None)
            if total is None or self.scheduler.last_epoch < total:
                self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.global_step += 1
        self._loss_acc = logged.float() if self._loss_acc is None else self._loss_acc + logged.float()
        self._accum["steps"] += 1
        detached = per_sample.detach() if per_sample is not None else None
        for cb in self._hooks:
            cb.on_after_batch(self, batch, outputs, detached)
        if self._tb is not None and self.global_step % cfg.log_every_n_steps == 0:
            self._tb.log({"train/loss_step": float(logged) * world, "train/lr": self.current_lr()}, self.global_step)
        return True

    def _check_finite(self) -> None:
        """Check the recorded step losses (:meth:`LossMonitor.check`); every process calls it at the same steps."""
        self._monitor.check(
            kept=self._kept_checkpoint,
            all_reduce_min=(lambda t: self.fabric.all_reduce(t.to(self.device), reduce_op="min"))
            if self.world_size > 1 else None,
            warn=self.is_global_zero,
        )

    def _kept_checkpoint(self) -> str:
        """What an error that stops the run says about the checkpoint on disk."""
        last = self.checkpoint_dir / "last.json" if self.checkpoint_dir is not None and self.config.save_checkpoints else None
        return (f"the last checkpoint, {last}, was written before and is kept" if last is not None and last.exists()
                else "no checkpoint was written")

    def current_lr(self) -> float:
        """Learning rate of the first head group (or the first group)."""
        if self.optimizer is None:
            return float("nan")
        groups = self.optimizer.param_groups
        for g in groups:
            if g.get("name", "").startswith("head"):
                return float(g["lr"])
        return float(groups[0]["lr"])

    # -- evaluation ----------------------------------------------------------------------------------
    def _prepare_eval_module(self, model: torch.nn.Module) -> torch.nn.Module:
        self.setup_fabric()
        return model.to(self.fabric.device)

    @torch.no_grad()
    def _predict_arrays(self, module: torch.nn.Module, data: Any, *, desc: str = "predict") -> Predictions:
        fabric = self.fabric
        cfg = self.config
        sampler = EvalShardSampler(len(data), cfg.per_process_eval_batch_size, rank=self.global_rank, world_size=self.world_size)
        loader = self._loader(data, sampler, seed_parts=[cfg.seed, 7919, self.global_rank], cache="eval")
        was_training = module.training
        module.eval()
        scores, targets, indices = [], [], []
        skipped = 0
        restore = _set_on_error(data, cfg.on_error)
        try:
            for batch in self._progress(loader, total=len(sampler), desc=desc):
                skipped += int(batch.get("skipped", 0) or 0)
                if batch.get("input") is None:
                    continue
                if fabric.device.type != "cpu":
                    batch = fabric.to_device(batch)
                if self.channels_last:
                    batch = _to_channels_last(batch)
                with fabric.autocast():
                    out = model_outputs(module, batch["input"])
                scores.append(torch.sigmoid(out["logits"].float()))
                targets.append(batch["target"].to(torch.uint8))
                indices.append(batch["index"].to(torch.long))
        finally:
            module.train(was_training)
            for obj, old in restore:
                obj.on_error = old
        num_classes = len(getattr(data, "class_names", [])) or (scores[0].shape[1] if scores else 0)
        return gather_predictions(scores, targets, indices, num_classes=num_classes, dataset_size=len(data),
                                  device=fabric.device, world_size=self.world_size)

    def _make_evaluator(self, class_names: list[str] | None) -> Any:
        cfg = self.config
        factory = self.evaluator_factory
        if factory is None:
            from labelwise.metrics import Evaluator as factory
        extra = {"top_k": cfg.top_k} if cfg.top_k is not None else {}
        return factory(kind=cfg.evaluator, threshold=cfg.threshold, class_names=class_names, **extra)

    def metrics_from_predictions(self, preds: Predictions, class_names: list[str] | None = None) -> dict[str, Any]:
        """The configured Evaluator's metrics of ``preds`` (what :meth:`evaluate` returns for its data).

        Parameters
        ----------
        preds : Predictions
            Scores and targets, e.g. from :meth:`predict`.
        class_names : list of str, optional
            Names for the per-class entries.

        Returns
        -------
        dict
            The report of ``config.evaluator`` plus ``"skipped"`` (samples that could not be loaded).

        Examples
        --------
        >>> import numpy as np
        >>> from labelwise.engine import Predictions, Trainer, TrainerConfig
        >>> preds = Predictions(np.array([[0.9, 0.2], [0.1, 0.8]], "float32"), np.eye(2, dtype="uint8"), np.arange(2))
        >>> Trainer(TrainerConfig(progress=False, tensorboard=False)).metrics_from_predictions(preds)["mAP"]
        1.0
        """
        return self._metrics(preds, class_names)

    def _metrics(self, preds: Predictions, class_names: list[str] | None) -> dict[str, Any]:
        evaluator = self._make_evaluator(class_names)
        # Every process holds the full, de-duplicated predictions; passing the indices lets an Evaluator
        # that gathers across processes count each sample once.
        evaluator.update(torch.from_numpy(preds.scores), torch.from_numpy(preds.targets.astype(np.float32)),
                         torch.from_numpy(preds.indices))
        metrics = dict(evaluator.compute())
        metrics["skipped"] = preds.skipped
        return metrics

    def _eval_module(self) -> torch.nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def predict(self, model: torch.nn.Module, data: Dataset) -> Predictions:
        """Probabilities and targets of ``data`` in dataset order, gathered over all processes.

        Returns
        -------
        Predictions
            A tuple ``(scores, targets)`` (float32 and uint8 ``[N, C]``) with ``.indices`` and ``.skipped``.

        Examples
        --------
        >>> scores, targets = trainer.predict(model, test_ds)            # doctest: +SKIP
        """
        module = self._prepare_eval_module(model)
        return self._predict_arrays(module, data)

    def evaluate(self, model: torch.nn.Module, data: Dataset) -> dict[str, Any]:
        """Metrics of ``model`` on ``data`` (the Evaluator of ``config.evaluator``), identical on every process.

        Scores are ``sigmoid(logits)``; every sample counts once however the data is sharded. The result also
        holds ``"skipped"`` (inputs that could not be read, with ``on_error="skip"``).

        Examples
        --------
        >>> trainer.evaluate(model, test_ds)["mAP"]                       # doctest: +SKIP
        """
        preds = self.predict(model, data)
        return self._metrics(preds, list(getattr(data, "class_names", []) or []) or None)

    # -- checkpoints ---------------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path | None:
        return None if self.output_dir is None else self.output_dir / "checkpoints"

    def save_checkpoint(self, name: str, *, with_state: bool = True, metrics: dict[str, Any] | None = None) -> Path | None:
        """Write ``checkpoints/<name>.*`` (rank 0 writes; every process must call it). Returns the sidecar path."""
        if self.checkpoint_dir is None or not self.config.save_checkpoints:
            return None
        path = None
        if self.is_global_zero:
            weights = self._eval_module().state_dict()
            state = trainer_state(self) if with_state else None
            out = save_checkpoint(self.checkpoint_dir / name, weights, metadata=checkpoint_metadata(self, name, metrics or self.last_metrics), state=state)
            path = out["json"]
        if self.world_size > 1:
            self.fabric.barrier()
        return path if path is not None else self.checkpoint_dir / f"{name}.json"

    # -- the loop ------------------------------------------------------------------------------------
    def fit(
        self,
        model: torch.nn.Module,
        criterion: Any,
        train_data: Any,
        val_data: Any | None = None,
        *,
        batch_sampler: Any | None = None,
        resume: str | os.PathLike | None = None,
    ) -> dict[str, Any]:
        """Train ``model`` with ``criterion`` on ``train_data``, evaluating on ``val_data``.

        Parameters
        ----------
        model : nn.Module
            Returns ``{"logits": [B, C], ...}``; may define ``needs_targets``, ``loss`` and
            ``param_groups`` (see the architecture contract).
        criterion : callable
            ``criterion(logits, targets, mask)`` with a ``reduction`` attribute (see "Loss reduction").
        train_data, val_data : MultiLabelDataset
            Datasets returning dict items (``labelwise.data``). ``class_names`` come from ``train_data``.
        batch_sampler : optional
            Global batch sampler (default: :class:`~labelwise.engine.samplers.RandomBatchSampler` seeded with
            ``seed``). A sampler that is a :class:`Callback` also receives the hooks.
        resume : str or path, optional
            A checkpoint (prefix, ``.json`` or ``.safetensors``) or a run directory (its ``last``
            checkpoint): restores model, optimiser, scheduler, EMA, RNG, sampler and callback states and the
            progress counters; ``metrics.csv`` continues from the resumed epoch.

        Returns
        -------
        dict
            ``best_metric``, ``best_epoch``, ``monitor``, ``last_metrics``, ``epochs``, ``global_step``,
            ``stopped_early``, ``skipped``, ``output_dir``, ``best_checkpoint``, ``last_checkpoint``.
        """
        fabric = self.setup_fabric()
        lock = None
        if self.output_dir is not None and self.is_global_zero:
            from .run_lock import RunLock

            lock = RunLock(self.output_dir).acquire()  # re-entrant: train_from_config may hold it already
            for d in (self.output_dir, self.output_dir / "checkpoints"):
                for p in sweep_temporary_files(d):
                    logger.info("removed %s, left by an interrupted write", p)
        try:
            return self._fit(fabric, model, criterion, train_data, val_data, batch_sampler=batch_sampler, resume=resume)
        finally:
            if lock is not None:
                lock.release()

    def _fit(self, fabric: Any, model: torch.nn.Module, criterion: Any, train_data: Any, val_data: Any | None, *,
             batch_sampler: Any | None, resume: str | os.PathLike | None) -> dict[str, Any]:
        cfg = self.config
        seed_everything(cfg.seed, deterministic=cfg.deterministic)
        if fabric.device.type == "cuda" and not cfg.deterministic:
            torch.backends.cudnn.benchmark = True  # fixed-size image batches: let cuDNN pick its fastest kernels
        if len(train_data) == 0:
            raise ValueError("train_data is empty")
        if scheduler_interval(cfg) == "eval" and val_data is None:
            raise ValueError("schedule='plateau' steps on the monitored validation metric: give val_data")
        self.class_names = list(getattr(train_data, "class_names", []) or []) or None
        self.criterion = criterion
        if isinstance(criterion, torch.nn.Module):
            criterion.to(fabric.device)
        criterion_reduction(criterion)  # a ValueError before anything is trained

        sampler = batch_sampler
        if sampler is None:
            sampler = RandomBatchSampler(len(train_data), cfg.batch_size, drop_last=cfg.drop_last, seed=cfg.seed)
        for attr in ("__iter__", "__len__", "set_epoch"):
            if not hasattr(sampler, attr):
                raise TypeError(f"batch_sampler {type(sampler).__name__} has no {attr}")
        self.batch_sampler = sampler
        self._hooks = list(self.callbacks)
        if isinstance(sampler, Callback) and sampler not in self._hooks:
            self._hooks.append(sampler)

        if cfg.sync_batchnorm and self.world_size > 1:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        optimizer = build_optimizer(model, cfg)
        forward = torch.compile(model, mode=cfg.compile_mode) if cfg.compile else model
        self._fmodel, self.optimizer = fabric.setup(forward, optimizer)
        steps_per_epoch = max(len(sampler), 1)
        self.scheduler = build_scheduler(optimizer, cfg, steps_per_epoch=steps_per_epoch)
        self.ema = ModelEMA(model, cfg.ema_decay, warmup=cfg.ema_warmup) if cfg.ema_decay is not None else None
        self.epoch = self.global_step = self.step_in_epoch = self.bad_evals = 0
        self.best_metric = self.best_epoch = None
        self.should_stop = False
        self._accum = {"loss_sum": 0.0, "steps": 0, "skipped": 0, "time": 0.0}
        self._loss_acc = None
        self._best_predictions = None
        self.history = []
        self._epoch_done = False
        self._monitor = LossMonitor(cfg.divergence_factor, cfg.stop_on_divergence)

        rng_state = None
        if resume is not None:
            rng_state = restore_trainer_state(self, resume)

        out = self.output_dir
        if out is not None and self.is_global_zero:
            out.mkdir(parents=True, exist_ok=True)
            files = RunFiles(out)
            files.write_config(self.run_config if self.run_config else {"trainer": self.config.model_dump(mode="json")})
            # rows are numbered from 1: keep those of the epochs completed before the checkpoint
            self._csv = files.open_metrics(resume_before_epoch=self.epoch + 1 if resume is not None else None)
            self.history = [dict(r) for r in self._csv.rows]
            if cfg.tensorboard:
                self._tb = files.open_tensorboard(purge_step=self.global_step if resume is not None else None)
        restore_err = [_set_on_error(d, cfg.on_error) for d in (train_data, val_data) if d is not None]
        self._loaders = {}
        try:
            for cb in self._hooks:
                cb.on_fit_start(self)
            if rng_state is not None:
                set_rng_state(rng_state)
            self._run(train_data, val_data)
            if self.ema is not None:
                self.model.load_state_dict(self.ema.module.state_dict())
            for cb in self._hooks:
                cb.on_fit_end(self)
            self._write_report(val_data)
        finally:
            self._close_loaders()
            for changed in reversed(restore_err):
                for obj, old in reversed(changed):
                    obj.on_error = old
            if self._tb is not None:
                self._tb.close()
                self._tb = None
        ckdir = self.checkpoint_dir if cfg.save_checkpoints else None
        return {
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "monitor": cfg.monitor,
            "last_metrics": self.last_metrics,
            "epochs": self.epoch,
            "global_step": self.global_step,
            "stopped_early": self.should_stop,
            "skipped": int(sum(r.get("skipped", 0) or 0 for r in self.history)),
            "output_dir": str(out) if out is not None else None,
            "best_checkpoint": str(ckdir / "best.json") if ckdir is not None and (ckdir / "best.json").exists() else None,
            "last_checkpoint": str(ckdir / "last.json") if ckdir is not None and (ckdir / "last.json").exists() else None,
        }

    def _run(self, train_data: Any, val_data: Any | None) -> None:
        cfg = self.config
        interval = scheduler_interval(cfg)
        while self.epoch < cfg.max_epochs and not self.should_stop:
            epoch = self.epoch
            self._epoch_done = False
            self.batch_sampler.set_epoch(epoch)
            skip = self.step_in_epoch
            shard = ShardedBatchSampler(self.batch_sampler, rank=self.global_rank, world_size=self.world_size, skip=skip)
            loader = self._loader(train_data, shard, seed_parts=[cfg.seed, epoch, self.global_rank], offset=skip,
                                  cache="train")
            for cb in self._hooks:
                cb.on_epoch_start(self, epoch)
            self.model.train()
            t0 = time.perf_counter()
            reached_max = False
            for batch in self._progress(loader, total=len(shard) + skip, initial=skip, desc=f"epoch {epoch + 1}"):
                self._train_step(batch)
                self.step_in_epoch += 1
                if cfg.max_steps is not None and self.global_step >= cfg.max_steps:
                    reached_max = True
                if (
                    cfg.checkpoint_every_n_steps is not None
                    and self.global_step % cfg.checkpoint_every_n_steps == 0
                    and not reached_max
                ):
                    self._accum["time"] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    self._flush_loss()
                    self.save_checkpoint("last", with_state=True)
                if reached_max:
                    break
            self._accum["time"] += time.perf_counter() - t0
            self._flush_loss()
            last_epoch = reached_max or epoch + 1 >= cfg.max_epochs
            row = self._end_epoch(val_data, last_epoch=last_epoch, interval=interval)
            if reached_max:
                self.should_stop = True
            for cb in self._hooks:
                cb.on_epoch_end(self, epoch, row)
            self.epoch += 1
            self._epoch_done = True
            self.step_in_epoch = 0
            self._accum = {"loss_sum": 0.0, "steps": 0, "skipped": 0, "time": 0.0}
            self.save_checkpoint("last", with_state=True)

    def _flush_loss(self) -> None:
        self._check_finite()
        if self._loss_acc is not None:
            self._accum["loss_sum"] += float(self._loss_acc)
            self._loss_acc = None

    def _end_epoch(self, val_data: Any | None, *, last_epoch: bool, interval: str | None) -> dict[str, Any]:
        cfg = self.config
        fabric = self.fabric
        stats = torch.tensor([self._accum["loss_sum"], float(self._accum["steps"]), float(self._accum["skipped"])],
                             dtype=torch.float64, device=fabric.device)
        if self.world_size > 1:
            stats = fabric.all_reduce(stats, reduce_op="sum")
        loss_sum, steps_sum, skipped = stats.tolist()
        steps = self._accum["steps"]
        train_loss = loss_sum / steps if steps else float("nan")
        row: dict[str, Any] = {"epoch": self.epoch + 1, "step": self.global_step, "train_loss": train_loss, "lr": self.current_lr()}
        metrics: dict[str, Any] = {}
        evaluated = val_data is not None and ((self.epoch + 1) % cfg.eval_every == 0 or last_epoch)
        if evaluated:
            preds = self._predict_arrays(self._eval_module(), val_data, desc="validate")
            self._monitor.check_scores(preds.scores, epoch=self.epoch + 1, global_step=self.global_step,
                                       lr=self.current_lr(), kept=self._kept_checkpoint)
            metrics = self._metrics(preds, self.class_names)
            if cfg.monitor not in metrics:
                raise KeyError(
                    f"monitor {cfg.monitor!r} is not a validation metric; available: {', '.join(sorted(scalar_items(metrics)))}"
                )
            value = float(metrics[cfg.monitor])
            improved = cfg.is_better(value, self.best_metric)
            if improved:
                self.best_metric, self.best_epoch, self.bad_evals = value, self.epoch + 1, 0
                if cfg.tune_thresholds:
                    self.per_class_thresholds = _tune(preds.scores, preds.targets)
                self._best_predictions = preds
            else:
                self.bad_evals += 1
                if cfg.early_stopping_patience is not None and self.bad_evals >= cfg.early_stopping_patience:
                    self.should_stop = True
            if interval == "eval":
                self.scheduler.step(value)
            self.last_metrics = metrics
            row.update({k: v for k, v in scalar_items(metrics).items() if k not in ("skipped",)})
            val_skipped = int(metrics.get("skipped", 0))
            row["val_skipped"] = val_skipped
            if improved:
                self.save_checkpoint("best", with_state=False, metrics=metrics)
        if interval == "epoch":
            self.scheduler.step()
        row["epoch_time"] = self._accum["time"]
        row["skipped"] = int(skipped)
        self.history.append(scalar_items(row))
        if self._csv is not None:
            self._csv.append(row)
        if self._tb is not None:
            self._tb.log({k: v for k, v in row.items() if k not in ("epoch", "step")}, self.global_step, prefix="epoch/")
            self._tb.flush()
        return row

    def _write_report(self, val_data: Any | None) -> None:
        cfg = self.config
        out = self.output_dir
        if out is None or not cfg.report or val_data is None or self.best_metric is None:
            return
        preds = self._best_predictions
        if preds is None and self.checkpoint_dir is not None and (self.checkpoint_dir / "best.json").exists():
            # The best epoch was before a resume: re-predict with the best weights (every process).
            import copy

            best = load_checkpoint(self.checkpoint_dir / "best.json", load_state=False)
            module = copy.deepcopy(self._eval_module())
            module.load_state_dict(best.weights)
            preds = self._predict_arrays(module, val_data, desc="report")
        if preds is None or not self.is_global_zero:
            return
        # report/predictions_val.npz + report/index.html (labelwise.run adds the test split's)
        RunFiles(out).write_report("val", preds, self.class_names, thresholds=self.per_class_thresholds,
                                   global_threshold=cfg.threshold, dataset=val_data)

    def write_split_results(self, split: str, preds: Predictions, metrics: dict[str, Any] | None = None, *,
                            dataset: Any = None) -> list[Path]:
        """Write a split's results into the run directory (rank 0): ``<split>_metrics.json`` and its report.

        The run directory's one owner writes them (``labelwise.run`` calls this for the test split). The
        report (``report/*_<split>*.png``, ``report/predictions_<split>.npz``, ``report/index.html``) is
        written when ``trainer.report`` is on and there are predictions. Returns the report's PNG paths.

        Examples
        --------
        >>> Trainer().write_split_results("test", None)  # no output_dir: nothing is written
        []
        """
        if self.output_dir is None or not self.is_global_zero:
            return []
        files = RunFiles(self.output_dir)
        if metrics is not None:
            files.write_metrics_json(split, metrics)
        if not self.config.report or not len(preds.scores):
            return []
        return files.write_report(split, preds, self.class_names, thresholds=self.per_class_thresholds,
                                  global_threshold=self.config.threshold, dataset=dataset)

    # -- continual learning --------------------------------------------------------------------------
    def end_task(self, task: Any) -> None:
        """Tell every callback that a continual task ended (``on_task_end(trainer, task)``).

        Examples
        --------
        >>> Trainer().end_task(0)
        """
        hooks = self._hooks or self.callbacks
        for cb in hooks:
            cb.on_task_end(self, task)


def _tune(scores: np.ndarray, targets: np.ndarray) -> list[float]:
    from labelwise.metrics import tune_thresholds

    th = tune_thresholds(scores, targets)
    return [float(v) for v in np.asarray(th, dtype=np.float64).reshape(-1)]


_ = resolve_checkpoint_path
