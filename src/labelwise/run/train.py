"""Training a configured run: :func:`train_from_config` (``labelwise train``) builds the pieces
(:mod:`labelwise.run.build`), claims the run directory, fits the :class:`~labelwise.engine.Trainer` and
evaluates the best checkpoint on the test split (``test_metrics.json`` and the test report).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..engine.run_dir import claim_output_dir
from .build import (
    _load_initial_weights,
    _model_kwargs_for,
    build_callbacks,
    build_datasets,
    build_loss,
    build_model,
    build_sampler,
    data_loss_options,
)

__all__ = ["train_from_config"]


def _evaluate_predictions(trainer: Any, preds: Any, class_names: list[str]) -> dict[str, Any]:
    """Metrics of predictions exactly as the trainer computes them for validation."""
    public = getattr(trainer, "metrics_from_predictions", None)
    if public is not None:
        return dict(public(preds, class_names))
    return dict(trainer.metrics_from_predictions(preds, class_names))


# -- training -----------------------------------------------------------------------------------------
def train_from_config(
    cfg: RunConfig,
    *,
    output_dir: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    evaluate_test: bool = True,
    callbacks: Iterable[Any] = (),
    log: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train the run described by ``cfg``, then evaluate the best checkpoint on the test split.

    Parameters
    ----------
    cfg : RunConfig
        The validated configuration (see :func:`labelwise.config.load_config`).
    output_dir : str or path, optional
        Run directory; default ``cfg.output_dir``, else ``runs/<name>-<timestamp>``.
    resume : str or path, optional
        A ``last`` checkpoint (or a run directory) to continue from (model, optimiser, schedule, EMA, RNG,
        sampler and callback states, and ``metrics.csv``); ``cfg`` must name the same ``sampler`` and
        ``callbacks`` as the interrupted run.
    evaluate_test : bool
        Evaluate the best checkpoint on ``data.test_split`` (when set) and write ``test_metrics.json`` and the
        test report.
    callbacks : iterable of labelwise.engine.Callback
        Extra trainer hooks, after those of ``cfg.callbacks``.
    log : callable, optional
        Receives one-line progress messages (the CLI prints them).
    overwrite : bool
        Allow a new run (no ``resume``) in a non-empty directory. A previous labelwise run there is replaced
        (its ``config.yaml``, ``metrics.csv``, ``test_metrics.json``, ``checkpoints/``, ``tb/`` and
        ``report/`` are removed first); in a directory that is not a run, files with those names are
        overwritten and other files are left alone. False (default): such a directory is refused with a
        ``FileExistsError``.

    Raises
    ------
    labelwise.engine.RunLockedError
        Another live run holds the run directory (the message names its pid, host and command).
    FileExistsError
        The run directory is not empty and neither ``resume`` nor ``overwrite`` was given.
    FileNotFoundError
        ``resume`` names no checkpoint or run directory.
    labelwise.engine.CheckpointWriteError
        A checkpoint could not be written (disk full...); the previous ``last`` checkpoint is intact.
    labelwise.engine.NonFiniteLossError
        The training loss became NaN/inf; the message names the epoch, step and learning rate.

    Returns
    -------
    dict
        The trainer's summary (``best_metric``, ``best_epoch``, ``last_metrics``, checkpoints, ...) plus
        ``output_dir``, ``class_names``, ``val_metrics`` (best checkpoint), ``test_metrics`` (or None),
        ``report`` (written PNG paths) and ``seconds`` (wall time).

    Examples
    --------
    >>> from labelwise.config import load_config
    >>> cfg = load_config("quickstart", ["trainer.max_epochs=1"])  # doctest: +SKIP
    >>> summary = train_from_config(cfg, output_dir="runs/try")                # doctest: +SKIP
    >>> round(summary["test_metrics"]["mAP"], 3)                                # doctest: +SKIP
    0.9
    """
    from ..engine.checkpoint import check_checkpoint_exists

    t0 = time.perf_counter()
    say = log or (lambda msg: None)
    if resume is not None:
        check_checkpoint_exists(resume)  # before a run directory is chosen or created
    run_dir = _run_dir_for(cfg, output_dir, resume)
    # DDP re-launches this command for the other ranks: they must use the same (timestamped) run dir.
    inherited = os.environ.get(_RUN_DIR_ENV)
    if inherited and output_dir is None and not cfg.output_dir and resume is None:
        run_dir = Path(inherited)
    os.environ[_RUN_DIR_ENV] = str(run_dir)
    try:
        # the lock and the non-empty check, in the writing process only (the other ranks of DDP do not write)
        with claim_output_dir(run_dir, overwrite=overwrite, resume=resume is not None, log=say):
            return _train(cfg, run_dir, resume=resume, evaluate_test=evaluate_test, callbacks=callbacks, say=say,
                          t0=t0)
    finally:
        os.environ.pop(_RUN_DIR_ENV, None)


_RUN_DIR_ENV = "LABELWISE_RUN_DIR"


def _train(cfg: RunConfig, run_dir: Path, *, resume: str | os.PathLike | None, evaluate_test: bool,
           callbacks: Iterable[Any], say: Callable[[str], None], t0: float) -> dict[str, Any]:
    from ..engine import Trainer, seed_everything
    from ..engine.checkpoint import load_checkpoint

    # Seed before anything random is created (validation carve-out, transforms, model initialisation);
    # Trainer.fit seeds again with the same seed before the first batch is drawn.
    seed_everything(cfg.trainer.seed, deterministic=cfg.trainer.deterministic)
    say(f"loading data {cfg.data.name!r}")
    data = build_datasets(cfg)
    kwargs = _model_kwargs_for(cfg, data.train)
    model = build_model(cfg, len(data.class_names), kwargs=kwargs)
    if kwargs.get("weights"):
        _load_initial_weights(model, cfg, kwargs["weights"])  # logs what it matched (logger of initial_weights)
    resolved = cfg.model_copy(update={"output_dir": str(run_dir)})
    resolved_dict = resolved.to_dict()
    resolved_dict["model"].update(kwargs)  # e.g. in_features found from the data, so checkpoints rebuild it
    loss_extra = data_loss_options(cfg, data.train)
    resolved_dict["loss"].update(loss_extra)  # recorded, so the resolved config rebuilds the same loss
    criterion = build_loss(cfg, kwargs={**cfg.loss.kwargs, **loss_extra})
    if loss_extra:
        say(f"loss {cfg.loss.name}: {', '.join(loss_extra)} computed from the training split")
    sampler = build_sampler(cfg, data.train)
    trainer = Trainer(cfg.trainer, callbacks=[*build_callbacks(cfg), *callbacks], output_dir=run_dir,
                      run_config=resolved_dict)
    say(
        f"training {cfg.model.name} on {cfg.data.name}: {len(data.train)} train / "
        f"{len(data.val) if data.val is not None else 0} val samples, {len(data.class_names)} classes -> {run_dir}"
    )
    if cfg.sampler.name != "random":
        say(f"batch sampler: {sampler!r}")
    summary = dict(trainer.fit(model, criterion, data.train, data.val, batch_sampler=sampler, resume=resume))
    summary["output_dir"] = str(run_dir)
    summary["class_names"] = data.class_names
    summary["val_metrics"] = None
    summary["test_metrics"] = None
    summary["report"] = sorted(str(p) for p in (run_dir / "report").glob("*.png")) if (run_dir / "report").is_dir() else []

    best = summary.get("best_checkpoint")
    if best is not None:
        ckpt = load_checkpoint(best, load_state=False)
        model.load_state_dict(ckpt.weights)
        summary["val_metrics"] = ckpt.meta.get("metrics")
    if evaluate_test and data.test is not None:
        say(f"evaluating the {'best' if best else 'final'} model on split {cfg.data.test_split!r}")
        preds = trainer.predict(model, data.test)
        metrics = _evaluate_predictions(trainer, preds, data.class_names)
        summary["test_metrics"] = metrics
        written = trainer.write_split_results("test", preds, metrics, dataset=data.test)  # the run dir's owner
        summary["report"] = sorted({*summary["report"], *map(str, written)})
    summary["seconds"] = time.perf_counter() - t0
    return summary


def _run_dir_for(cfg: RunConfig, output_dir: str | os.PathLike | None, resume: str | os.PathLike | None) -> Path:
    """``output_dir`` > ``cfg.output_dir`` > the run directory of ``resume`` > ``runs/<name>-<time>``."""
    if output_dir is not None:
        return Path(output_dir)
    if cfg.output_dir:
        return Path(cfg.output_dir)
    if resume is not None:
        p = Path(resume)
        if p.is_dir():
            return p.parent if p.name == "checkpoints" else p
        if p.parent.name == "checkpoints":
            return p.parent.parent
    return cfg.resolve_output_dir()
