"""Typed, validated configuration of the :class:`~labelwise.engine.Trainer`.

Every option of the training engine lives in one pydantic model, :class:`TrainerConfig`. Unknown keys and
out-of-range values are rejected with an error naming the key, so a typo in a YAML recipe fails at load
time rather than after an hour of training.

Batch sizes
-----------
``batch_size`` is the **global** training batch: the batch sampler yields global batches of dataset indices
and, under DDP, each of the ``world_size`` processes trains on its own shard of every global batch. One
process with ``batch_size=64`` and two processes with ``batch_size=64`` therefore take the same optimisation
steps (see :class:`~labelwise.engine.Trainer` for how the loss is reduced so that the update matches).
``eval_batch_size`` is the batch size of *each process* during evaluation and prediction (it only affects
memory and speed, never the metrics).

Examples
--------
>>> from labelwise.engine import TrainerConfig
>>> cfg = TrainerConfig(max_epochs=5, optimizer="adamw", lr=1e-3, schedule="cosine", warmup_epochs=1)
>>> cfg.monitor, cfg.monitor_mode
('mAP', 'max')
>>> try:
...     TrainerConfig(optimiser="adam")
... except ValueError as err:  # pydantic.ValidationError names the offending key
...     print(str(err).splitlines()[1])
optimiser
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["TrainerConfig", "SUPPORTED_STRATEGIES"]

#: Fabric strategies the trainer supports. Spawn-based strategies (``ddp_spawn``) are not offered because
#: the trainer's loop runs in the calling process; use ``ddp`` (which re-launches the script for the other
#: ranks, or picks up the ranks started by ``torchrun``) instead.
SUPPORTED_STRATEGIES = ("auto", "ddp", "ddp_find_unused_parameters_true", "single_device")


class TrainerConfig(BaseModel):
    """Options of the training engine (devices, optimisation, schedule, evaluation, checkpoints, logging).

    All fields have defaults; see each field's description (``TrainerConfig.model_fields``) for its meaning.
    Construct it from keyword arguments or a mapping (``TrainerConfig.model_validate(d)``); unknown keys are
    an error.

    Examples
    --------
    >>> cfg = TrainerConfig(batch_size=64, precision="bf16-mixed", ema_decay=0.9997)
    >>> cfg.model_copy(update={"max_epochs": 3}).max_epochs
    3
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # -- length and batches ------------------------------------------------------------------------------
    max_epochs: int = Field(10, ge=1, description="Number of training epochs.")
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many optimisation steps (None: run all `max_epochs`)."
    )
    batch_size: int = Field(
        32, ge=1, description="Global training batch size (summed over all processes under DDP)."
    )
    eval_batch_size: int | None = Field(
        None, ge=1, description="Per-process batch size for evaluation and prediction (None: `batch_size`)."
    )
    drop_last: bool = Field(
        False, description="Drop the last incomplete global training batch of each epoch."
    )
    num_workers: int | Literal["auto"] = Field(
        "auto",
        description=(
            "DataLoader worker processes per training process: a count, or 'auto' = the usable CPU cores "
            "(os.sched_getaffinity) divided among the node's training processes, 0 for datasets held in memory "
            "(MultiDigits, tabular) or on a single core (labelwise.engine.loading)."
        ),
    )
    pin_memory: bool | Literal["auto"] = Field("auto", description="Pin host memory in the DataLoader ('auto': on a CUDA device).")
    persistent_workers: bool = Field(
        True, description="Keep the DataLoader workers alive across epochs and evaluations of a fit (with num_workers > 0)."
    )

    # -- optimiser ---------------------------------------------------------------------------------------
    optimizer: Literal["adam", "adamw", "sgd"] = Field("adam", description="Optimiser.")
    lr: float = Field(1e-3, gt=0, description="Learning rate of the head (and of the backbone unless `backbone_lr`).")
    backbone_lr: float | None = Field(
        None, ge=0, description="Learning rate of `model.param_groups()['backbone']` (None: same as `lr`; 0 freezes it in the optimiser)."
    )
    weight_decay: float = Field(0.0, ge=0, description="Weight decay (decoupled for AdamW, L2 for Adam/SGD).")
    no_decay_norm_bias: bool = Field(
        True, description="Exclude biases and normalisation weights (every 1-D parameter) from weight decay."
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    nesterov: bool = Field(False, description="Use Nesterov momentum with SGD.")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam/AdamW coefficients (beta1, beta2), each in [0, 1).")

    # -- schedule ----------------------------------------------------------------------------------------
    schedule: Literal["none", "onecycle", "cosine", "plateau", "step"] = Field(
        "none",
        description=(
            "Learning-rate schedule: 'onecycle' and 'cosine' are stepped every optimisation step; 'plateau' "
            "(on the monitored metric, after each evaluation) and 'step' are stepped every epoch."
        ),
    )
    pct_start: float = Field(0.3, gt=0, lt=1, description="OneCycle: fraction of the steps spent increasing the lr.")
    div_factor: float = Field(25.0, ge=1, description="OneCycle: initial lr = max lr / div_factor.")
    final_div_factor: float = Field(1e4, ge=1, description="OneCycle: final lr = initial lr / final_div_factor.")
    cycle_momentum: bool = Field(
        True, description="OneCycle: cycle the momentum (SGD) or beta1 (Adam/AdamW) inversely to the lr."
    )
    warmup_epochs: float = Field(
        0.0, ge=0, description="Cosine: linear warm-up length in epochs (fractions allowed), from 0 to the lr."
    )
    min_lr: float = Field(0.0, ge=0, description="Cosine: final learning rate (an absolute value, reached at the last step).")
    step_size: int = Field(30, ge=1, description="Step: multiply the lr by `gamma` every `step_size` epochs.")
    gamma: float = Field(0.1, gt=0, le=1, description="Step: multiplicative lr decay.")
    plateau_factor: float = Field(0.1, gt=0, lt=1, description="Plateau: multiplicative lr decay on a plateau.")
    plateau_patience: int = Field(
        4, ge=0, description="Plateau: evaluations without improvement of `monitor` before the lr is reduced."
    )

    # -- regularisation / stability --------------------------------------------------------------------
    ema_decay: float | None = Field(
        None,
        gt=0,
        lt=1,
        description=(
            "Exponential moving average of the weights (None: off). When on, evaluation, the 'best' checkpoint "
            "and the returned model use the EMA weights; the raw weights are kept in the resume state."
        ),
    )
    ema_warmup: bool = Field(
        False, description="EMA: use decay min(ema_decay, (1 + step) / (10 + step)) so early averages are not dominated by the init."
    )
    grad_clip_norm: float | None = Field(None, gt=0, description="Clip the global gradient norm to this value (None: off).")
    grad_clip_value: float | None = Field(None, gt=0, description="Clip every gradient element to [-v, v] (None: off).")
    divergence_factor: float | None = Field(
        1e4,
        gt=1,
        description=(
            "A finite training loss whose magnitude exceeds this many times the median magnitude of the run's "
            "first 50 step losses is a divergence (None: no check; NaN/inf losses always stop the run)."
        ),
    )
    stop_on_divergence: bool = Field(
        True,
        description=(
            "On a divergence (`divergence_factor`): stop the run with an error naming the epoch, step and "
            "learning rate, keeping the last checkpoint (True), or log one warning and continue (False)."
        ),
    )

    # -- devices -----------------------------------------------------------------------------------------
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = Field("auto", description="Fabric accelerator.")
    devices: int | list[int] | Literal["auto"] = Field(
        1,
        description=(
            "Devices per node: a count, a list of device ids or 'auto'. Under torchrun the processes are "
            "the ones torchrun started (set `devices` to `--nproc_per_node`)."
        ),
    )
    num_nodes: int = Field(1, ge=1, description="Number of nodes (multi-node DDP, e.g. with torchrun or SLURM).")
    strategy: str = Field(
        "auto",
        description=f"Fabric strategy, one of {', '.join(SUPPORTED_STRATEGIES)} ('auto' picks DDP for several devices).",
    )
    sync_batchnorm: bool = Field(
        False, description="Convert BatchNorm layers to SyncBatchNorm under DDP (statistics over the global batch)."
    )
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"] = Field(
        "auto",
        description=(
            "Numerical precision: full fp32, or bf16/fp16 autocast mixed precision. 'auto': bf16-mixed on a CUDA "
            "device that supports bf16, else 32-true (CPU, MPS, older GPUs)."
        ),
    )
    channels_last: bool | Literal["auto"] = Field(
        "auto",
        description="Train and evaluate with channels-last (NHWC) model weights and image batches ('auto': on a CUDA device).",
    )
    compile: bool = Field(
        False, description="Compile the model with torch.compile for training and evaluation (first steps are slower)."
    )
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = Field(
        "default", description="torch.compile mode (with `compile: true`)."
    )

    # -- reproducibility ---------------------------------------------------------------------------------
    seed: int = Field(0, ge=0, description="Seed for python, numpy, torch, the batch sampler and DataLoader workers.")
    deterministic: bool = Field(
        False,
        description="Use deterministic algorithms (torch.use_deterministic_algorithms(warn_only=True), cudnn deterministic, no benchmark).",
    )

    # -- evaluation, monitoring, early stopping ----------------------------------------------------------
    evaluator: Literal["multilabel", "mulan", "pedestrian"] = Field(
        "multilabel", description="Metric family computed by the Evaluator on validation data."
    )
    threshold: float = Field(0.5, gt=0, lt=1, description="Decision threshold on probabilities for thresholded metrics.")
    top_k: int | None = Field(
        None, ge=1, description="Multilabel evaluator: also report the top-k metrics (the papers' 'top 3' columns)."
    )
    eval_every: int = Field(1, ge=1, description="Evaluate on the validation data every this many epochs (and after the last).")
    monitor: str = Field("mAP", min_length=1, description="Validation metric selecting the best checkpoint.")
    monitor_mode: Literal["max", "min"] = Field("max", description="Whether a larger or a smaller `monitor` is better.")
    early_stopping_patience: int | None = Field(
        None, ge=1, description="Stop after this many evaluations without improvement of `monitor` (None: off)."
    )
    early_stopping_min_delta: float = Field(0.0, ge=0, description="Minimum change of `monitor` that counts as an improvement.")
    tune_thresholds: bool = Field(
        False, description="Tune per-class thresholds on the validation data (max F1) and store them with the checkpoints."
    )

    # -- checkpoints, logging, progress ------------------------------------------------------------------
    save_checkpoints: bool = Field(True, description="Write checkpoints/best.* and checkpoints/last.* (needs an output_dir).")
    checkpoint_every_n_steps: int | None = Field(
        None, ge=1, description="Also write the 'last' checkpoint every this many optimisation steps (mid-epoch resume)."
    )
    log_every_n_steps: int = Field(50, ge=1, description="Log the training loss and lr to TensorBoard every this many steps.")
    tensorboard: bool = Field(True, description="Write TensorBoard events under <output_dir>/tb.")
    report: bool = Field(True, description="Write the run report (labelwise.analysis.report) at the end of fit.")
    progress: bool = Field(True, description="Show progress bars (rank 0 only, and only on a terminal).")
    on_error: Literal["raise", "skip"] | None = Field(
        None,
        description=(
            "Unreadable inputs: 'raise' fails fast naming the file, 'skip' drops and counts them (metrics.csv "
            "column `skipped`); None keeps each dataset's own `on_error` setting."
        ),
    )

    # -- validators ---------------------------------------------------------------------------------------
    @field_validator("betas")
    @classmethod
    def _check_betas(cls, v: tuple[float, float]) -> tuple[float, float]:
        for i, b in enumerate(v):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"betas[{i}] must be in [0, 1), got {b}")
        return v

    @field_validator("num_workers")
    @classmethod
    def _check_num_workers(cls, v: Any) -> Any:
        if isinstance(v, int) and v < 0:
            raise ValueError(f"num_workers must be >= 0 or 'auto', got {v}")
        return v

    @field_validator("strategy")
    @classmethod
    def _check_strategy(cls, v: str) -> str:
        if v not in SUPPORTED_STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(SUPPORTED_STRATEGIES)}, got {v!r}")
        return v

    @field_validator("devices")
    @classmethod
    def _check_devices(cls, v: Any) -> Any:
        if isinstance(v, int) and v < 1:
            raise ValueError(f"devices must be >= 1, got {v}")
        if isinstance(v, list) and (not v or any(d < 0 for d in v)):
            raise ValueError(f"devices must be a non-empty list of device ids >= 0, got {v}")
        return v

    @model_validator(mode="after")
    def _check_combination(self) -> TrainerConfig:
        if self.grad_clip_norm is not None and self.grad_clip_value is not None:
            raise ValueError("grad_clip_norm and grad_clip_value are mutually exclusive; set only one")
        if self.top_k is not None and self.evaluator != "multilabel":
            raise ValueError(f"top_k applies to the 'multilabel' evaluator only, not {self.evaluator!r}")
        return self

    # -- helpers ------------------------------------------------------------------------------------------
    def resolved_precision(self, device_type: str, *, bf16_supported: bool | None = None) -> str:
        """``precision`` with ``"auto"`` resolved for a device type (``"cuda"``, ``"cpu"``, ``"mps"``).

        Examples
        --------
        >>> TrainerConfig().resolved_precision("cpu"), TrainerConfig().resolved_precision("cuda", bf16_supported=True)
        ('32-true', 'bf16-mixed')
        >>> TrainerConfig(precision="16-mixed").resolved_precision("cpu")
        '16-mixed'
        """
        if self.precision != "auto":
            return self.precision
        if device_type != "cuda":
            return "32-true"
        if bf16_supported is None:
            import torch

            bf16_supported = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
        return "bf16-mixed" if bf16_supported else "32-true"

    @property
    def per_process_eval_batch_size(self) -> int:
        """``eval_batch_size``, or ``batch_size`` when unset."""
        return self.eval_batch_size or self.batch_size

    def is_better(self, new: float, best: float | None) -> bool:
        """Whether ``new`` improves on ``best`` by more than ``early_stopping_min_delta`` for ``monitor_mode``.

        Examples
        --------
        >>> TrainerConfig().is_better(0.7, 0.6), TrainerConfig(monitor_mode="min").is_better(0.7, 0.6)
        (True, False)
        """
        if best is None:
            return True
        if new != new:  # NaN never improves
            return False
        d = self.early_stopping_min_delta
        return new > best + d if self.monitor_mode == "max" else new < best - d
