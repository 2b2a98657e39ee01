"""The online protocol of PRS (Kim et al., ECCV 2020) and its evaluation (DLFL Tables 7-8).

Protocol
--------
* The tasks of an :class:`~labelwise.continual.online.OnlineSequence` stream by in order; inside a task the
  images come in a seeded random order, in stream batches of ``stream_batch`` (10) images, and each image is
  seen **once** (one gradient step per stream batch).
* Methods with a memory (``crs``, ``prs``, ``gss``, ``exstream``, ``ocdm``) draw ``min(|M|, replay_batch)`` stored items (uniformly, without
  replacement) and train on stream batch + replay batch in one step; the stream batch is offered to the memory
  after the step. The memory holds ``memory_size`` (2000) items. GSS is offered the per-item loss gradients and
  ExStream the pooled features of the batch (model in eval mode, after the step; see their modules).
* ``finetune`` trains on the stream only; ``ewc`` adds the online EWC penalty
  (:class:`~labelwise.continual.online.OnlineEWC`); ``multitask`` is the joint upper bound: the whole stream,
  shuffled i.i.d. across tasks, ``multitask_epochs`` (1) pass(es) with batches of ``stream_batch +
  replay_batch`` images (the same number of images per step as the replay methods).
* Every method runs with the baseline head (``"ofml"``: pooled feature + linear classifier, PRS's ResNet) or
  the SSCA head (``"ssca"``: DLFL's plug-in between backbone and classifier; "PRS + SSCA" is the paper's
  "Ours + PRS").
* Loss: binary cross-entropy with logits over all classes (mean over batch and classes), summed over the
  model's ``loss_logits``; Adam; gradient clipping by value (5, as PRS).

Evaluation
----------
After each task, on the test images of the tasks seen so far, over the classes with a test positive there:
mAP, CP/CR/CF1 (CF1 = harmonic mean of the mean per-class precision and recall), OP/OR/OF1 at threshold 0.5,
overall and for the majority / moderate / minority classes (the groups restricted to the evaluated classes).
The final row (after the last task, all test images) is what Tables 7-8 report; :func:`summarize` gives mean
and standard deviation over runs and :func:`format_table` prints the Table 7 shape.

Examples
--------
>>> from labelwise.continual.online import multidigits_sequence, OnlineConfig, run_online
>>> seq = multidigits_sequence(n_train=300, n_test=300, image_size=24, cache=False)
>>> cfg = OnlineConfig(memory_size=20, backbone="test_resnet")
>>> res = run_online(seq, "prs", head="baseline", config=cfg, seed=0)
>>> sorted(res.final), len(res.tasks) == seq.num_tasks
(['majority', 'minority', 'moderate', 'overall'], True)
"""

from __future__ import annotations

import functools
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from labelwise.config import ConfigSection
from labelwise.engine.step import loss_terms, model_outputs
from labelwise.registry import Registry

from .ewc import OnlineEWC
from .memory_kinds import create_memory
from .sequences import GROUP_NAMES, OnlineSequence

logger = logging.getLogger(__name__)

__all__ = [
    "METHODS",
    "OnlineMethod",
    "HEADS",
    "OnlineConfig",
    "OnlineResult",
    "run_online",
    "evaluate_groups",
    "summarize",
    "format_table",
    "method_label",
]



class OnlineMethod(NamedTuple):
    """What an online method does: its memory kind (``None``: no memory; see ``MEMORY_KINDS``), whether it
    adds the online EWC penalty, whether it trains jointly (i.i.d. over the whole stream)."""

    memory: str | None
    ewc: bool
    joint: bool


#: The online methods by name: ``METHODS.create(name)`` gives its :class:`OnlineMethod`.
METHODS = Registry("online method")
for _name, _method in {
    "finetune": OnlineMethod(None, False, False),
    "ewc": OnlineMethod(None, True, False),
    "crs": OnlineMethod("crs", False, False),
    "prs": OnlineMethod("prs", False, False),
    "gss": OnlineMethod("gss", False, False),
    "exstream": OnlineMethod("exstream", False, False),
    "ocdm": OnlineMethod("ocdm", False, False),
    "multitask": OnlineMethod(None, False, True),
}.items():
    METHODS.register(_name)(functools.partial(OnlineMethod, *_method))
del _name, _method
HEADS = ("baseline", "ssca")
GROUPS = (*GROUP_NAMES, "overall")
METRICS = ("CF1", "OF1", "mAP")
_REPORT_KEYS = ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1")


class OnlineConfig(ConfigSection):
    """Options of an online run, the ``online:`` section (defaults: the PRS protocol; model options sized for a CPU).

    A pydantic section (:class:`labelwise.config.ConfigSection`): an unknown key or a bad value is an error
    naming it; :class:`labelwise.continual.online.config.OnlineRunConfig` holds it with the other sections of
    an ``online`` configuration.

    Attributes
    ----------
    stream_batch, replay_batch, memory_size : int
        PRS: 10, 10, 2000.
    q : float
        PRS target-partition power (COCOseq -0.03, NUS-WIDEseq 0.02).
    prs_eviction : {"argmin", "reference"}
        PRS eviction rule: the paper's (default) or the published code's
        (:class:`~labelwise.continual.online.PartitioningReservoir`).
    gss_samples : int
        GSS: memory items whose gradients score a new item (10).
    gss_params : {"all", "head"}
        GSS: gradients over every trained parameter (paper) or over the last linear layer only (cheaper).
    ocdm_rho : float
        OCDM target-distribution power (0: uniform over the seen classes).
    lr, weight_decay, clip_value : float
        Adam learning rate, weight decay, gradient clipping by value (0 disables).
    lambda_ewc, ewc_gamma : float
        Online EWC.
    multitask_epochs : int
        Passes of the joint upper bound.
    threshold : float
        Decision threshold of CF1/OF1 (PRS: 0.5).
    baseline_model : str
        Registered model of the baseline head (``"ofml"``: linear; ``"ofml_cosine"``: cosine classifier).
    backbone, backbone_kwargs, pretrained, weights : model options
    embed_dim, num_modules, scale : SSCA options (``scale`` also for ``ofml_cosine``)
    eval_batch : int
    threads : int, optional
        ``torch.set_num_threads`` for the run.
    device : str
    """

    stream_batch: int = Field(10, ge=1)
    replay_batch: int = Field(10, ge=0)
    memory_size: int = Field(2000, ge=0)
    q: float = -0.03
    prs_eviction: Literal["argmin", "reference"] = "argmin"
    gss_samples: int = Field(10, ge=1)
    gss_params: Literal["all", "head"] = "all"
    ocdm_rho: float = 0.0
    lr: float = 1e-3
    weight_decay: float = 0.0
    clip_value: float = 5.0
    lambda_ewc: float = 100.0
    ewc_gamma: float = 1.0
    multitask_epochs: int = Field(1, ge=1)
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    baseline_model: str = "ofml"
    backbone: str = "resnet10t"
    backbone_kwargs: dict[str, Any] = Field(default_factory=dict)
    pretrained: bool = False
    weights: str | None = None
    embed_dim: int | None = 128
    num_modules: int = 1
    scale: float = 30.0
    eval_batch: int = Field(256, ge=1)
    threads: int | None = None
    device: str = "cpu"

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> OnlineConfig:
        """Build from a mapping; an unknown key or a bad value raises ``ValueError`` (pydantic's) naming it.

        Examples
        --------
        >>> OnlineConfig.from_dict({"memory_size": 50}).memory_size
        50
        """
        return cls.model_validate(dict(options))


@dataclass
class OnlineResult:
    """One run: ``final[group][metric]`` after the last task, per-task overall rows, memory statistics."""

    method: str
    head: str
    seed: int
    final: dict[str, dict[str, float]]
    tasks: list[dict[str, Any]]
    memory_counts: list[int] | None
    seconds: float
    steps: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def method_label(method: str, head: str) -> str:
    """Table label: ``"PRS"``, ``"PRS + SSCA"``, ``"Multitask"``, ...

    Examples
    --------
    >>> method_label("prs", "ssca"), method_label("finetune", "baseline")
    ('PRS + SSCA', 'Finetune')
    """
    base = {
        "finetune": "Finetune",
        "ewc": "EWC",
        "crs": "CRS",
        "prs": "PRS",
        "gss": "GSS",
        "exstream": "ExStream",
        "ocdm": "OCDM",
        "multitask": "Multitask",
    }.get(method, method)
    return f"{base} + SSCA" if head == "ssca" else base


# ---------------------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------------------
def evaluate_groups(
    scores: np.ndarray, targets: np.ndarray, groups: dict[str, Sequence[int]], *, threshold: float = 0.5
) -> dict[str, dict[str, float]]:
    """PRS metrics overall and per group, over the classes with a positive in ``targets``.

    Returns ``{group: {"mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "num_classes"}}`` for ``"overall"`` and
    every group (NaN metrics for a group without evaluated class).

    Examples
    --------
    >>> s = np.array([[0.9, 0.2, 0.7], [0.1, 0.8, 0.3]]); t = np.array([[1, 0, 1], [0, 1, 0]])
    >>> r = evaluate_groups(s, t, {"majority": [0], "moderate": [1], "minority": [2]})
    >>> r["overall"]["mAP"], r["minority"]["OF1"], r["majority"]["num_classes"]
    (1.0, 1.0, 1)
    """
    from labelwise.metrics import multilabel_report

    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(targets)
    present = np.flatnonzero(t.sum(axis=0) > 0)
    sets = {"overall": present}
    for g in GROUP_NAMES:
        sets[g] = np.intersect1d(np.asarray(groups.get(g, []), dtype=np.int64), present)
    out: dict[str, dict[str, float]] = {}
    for g, cols in sets.items():
        if len(cols) == 0:
            out[g] = {k: float("nan") for k in _REPORT_KEYS} | {"num_classes": 0}
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rep = multilabel_report(s[:, cols], t[:, cols], threshold)
        out[g] = {k: float(rep[k]) for k in _REPORT_KEYS} | {"num_classes": len(cols)}
    return out


# ---------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------
def _fast_images(ds: Any) -> torch.Tensor | None:
    """The uint8 image tensor of an in-memory dataset without transform (MultiDigits), else None."""
    x = getattr(ds, "inputs", None)
    if isinstance(x, torch.Tensor) and x.ndim == 4 and x.dtype == torch.uint8 and ds.transform is None:
        return x
    return None


def _fast_features(ds: Any) -> torch.Tensor | None:
    """The float tensor of an in-memory dataset of cached feature maps without transform, else None."""
    x = getattr(ds, "inputs", None)
    if (isinstance(x, torch.Tensor) and x.is_floating_point() and getattr(ds, "transform", None) is None
            and not getattr(ds, "is_image", True)):
        return x
    return None


class _Fetcher:
    """Inputs and targets of root-dataset indices (fast paths for uint8 image arrays and cached feature maps)."""

    def __init__(self, ds: Any, device: torch.device) -> None:
        self.ds = ds
        self.device = device
        self.fast = _fast_images(ds)
        self.features = _fast_features(ds) if self.fast is None else None
        self.targets = np.asarray(ds.targets)

    def __call__(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        idx = np.asarray(idx, dtype=np.int64)
        if self.fast is not None:
            x = (self.fast[torch.from_numpy(idx)].float() / 255.0 - 0.5) / 0.25
            kept = idx
        elif self.features is not None:
            x = self.features[torch.from_numpy(idx)]
            kept = idx
        else:
            from labelwise.data import collate_batch

            items = [self.ds[int(i)] for i in idx]
            keep = [k for k, it in enumerate(items) if it is not None]
            batch = collate_batch([items[k] for k in keep])
            kept = idx[keep]
            x = batch["input"] if batch.get("input") is not None else torch.zeros(0)
        y = torch.from_numpy(self.targets[kept].astype(np.float32))
        return x.to(self.device), y.to(self.device), kept


# ---------------------------------------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------------------------------------
def build_model(num_classes: int, head: str, cfg: OnlineConfig) -> nn.Module:
    """The baseline (``cfg.baseline_model``) or SSCA model with the config's backbone options."""
    from labelwise.models import create_model

    common: dict[str, Any] = {
        "backbone": cfg.backbone,
        "pretrained": cfg.pretrained,
        "backbone_kwargs": dict(cfg.backbone_kwargs),
    }
    if cfg.weights:
        common["weights"] = cfg.weights
    if head == "ssca":
        return create_model(
            "ssca",
            num_classes=num_classes,
            num_modules=cfg.num_modules,
            embed_dim=cfg.embed_dim,
            scale=cfg.scale,
            **common,
        )
    if head == "baseline":
        if cfg.baseline_model == "ofml_cosine":
            common["scale"] = cfg.scale
        return create_model(cfg.baseline_model, num_classes=num_classes, **common)
    raise ValueError(f"unknown head {head!r}; expected one of {HEADS}")


def _bce_mean(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The protocol's criterion: BCE with logits, the mean over the batch and all classes (PRS)."""
    return F.binary_cross_entropy_with_logits(logits, targets)


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, outputs: dict[str, Any] | None = None) -> torch.Tensor:
    """The step loss of ``(x, y)`` (the model contract of :mod:`labelwise.engine.step`; criterion :func:`_bce_mean`)."""
    batch = {"input": x, "target": y}
    if outputs is None:
        outputs = model_outputs(model, x, y)
    return loss_terms(model, outputs, batch, _bce_mean).reduce()


def _head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of the model's last ``nn.Linear`` (the classifier), for ``gss_params="head"``."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("gss_params='head': the model has no nn.Linear layer")
    return [p for p in linears[-1].parameters() if p.requires_grad]


def _per_item_gradients_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: list[nn.Parameter]) -> torch.Tensor:
    rows = []
    for i in range(len(x)):
        grads = torch.autograd.grad(_loss(model, x[i : i + 1], y[i : i + 1]), params, allow_unused=True)
        rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)]))
    return torch.stack(rows)


def _per_item_gradients_vmap(model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: list[nn.Parameter]) -> torch.Tensor:
    from torch.func import functional_call, grad, vmap

    ids = {id(p) for p in params}
    named = dict(model.named_parameters())
    trained = {n: p.detach() for n, p in named.items() if id(p) in ids}
    fixed = {n: p.detach() for n, p in named.items() if id(p) not in ids}
    fixed.update(dict(model.named_buffers()))

    def loss_one(ps: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, {**fixed, **ps}, (xi.unsqueeze(0),))
        return _loss(model, xi.unsqueeze(0), yi.unsqueeze(0), outputs=out)

    g = vmap(grad(loss_one), in_dims=(None, 0, 0))(trained, x, y)
    order = [n for n, p in named.items() if id(p) in ids]
    return torch.cat([g[n].reshape(len(x), -1) for n in order], dim=1)


def _gradient_probe(model: nn.Module, fetch: _Fetcher, params: list[nn.Parameter]) -> Callable[[np.ndarray], np.ndarray]:
    """Root indices -> per-item gradient of the item's loss over ``params`` (``[k, P]``, model in eval mode).

    Vectorised with ``torch.func.vmap`` when the model allows it, else one backward pass per item (same
    values)."""
    state = {"vmap": True}

    def probe(idx: np.ndarray) -> np.ndarray:
        was = model.training
        model.eval()
        try:
            x, y, kept = fetch(idx)
            if len(kept) != len(idx):
                raise ValueError("gss: some memory items could not be loaded")
            if not len(x):
                return np.zeros((0, sum(p.numel() for p in params)), np.float32)
            g = None
            if state["vmap"]:
                try:
                    g = _per_item_gradients_vmap(model, x, y, params)
                except Exception as exc:  # data-dependent control flow etc.: fall back to the loop
                    logger.info("gss: per-item gradients without vmap (%s)", exc)
                    state["vmap"] = False
            if g is None:
                g = _per_item_gradients_loop(model, x, y, params)
            return g.detach().float().cpu().numpy()
        finally:
            model.train(was)

    return probe


def _feature_probe(model: nn.Module, fetch: _Fetcher) -> Callable[[np.ndarray], np.ndarray]:
    """Root indices -> the model's pooled ``"features"`` output ``[k, D]`` (eval mode, no gradient)."""

    @torch.no_grad()
    def probe(idx: np.ndarray) -> np.ndarray:
        was = model.training
        model.eval()
        try:
            x, _, _ = fetch(idx)
            out = model(x)
            if "features" not in out:
                raise ValueError("exstream: the model returns no 'features'")
            return out["features"].float().reshape(len(x), -1).cpu().numpy()
        finally:
            model.train(was)

    return probe


@torch.no_grad()
def _predict(model: nn.Module, fetch: _Fetcher, idx: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray]:
    was = model.training
    model.eval()
    scores, targets = [], []
    for s in range(0, len(idx), batch):
        x, y, _ = fetch(idx[s : s + batch])
        if len(x):
            scores.append(torch.sigmoid(model(x)["logits"].float()).cpu().numpy())
            targets.append(y.cpu().numpy())
    model.train(was)
    c = fetch.targets.shape[1]
    if not scores:
        return np.zeros((0, c)), np.zeros((0, c))
    return np.concatenate(scores), np.concatenate(targets)


# ---------------------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------------------
def run_online(
    seq: OnlineSequence,
    method: str,
    *,
    head: str = "baseline",
    config: OnlineConfig | None = None,
    seed: int = 0,
    eval_each_task: bool = True,
    log: Callable[[str], None] | None = None,
    model: nn.Module | None = None,
) -> OnlineResult:
    """Run one method on a sequence under the online protocol and evaluate it (module documentation).

    Parameters
    ----------
    seq : OnlineSequence
    method : {"finetune", "ewc", "crs", "prs", "gss", "exstream", "ocdm", "multitask"}
    head : {"baseline", "ssca"}
    config : OnlineConfig
    seed : int
        Seeds the model initialisation, the stream order, the memory and the replay draws.
    eval_each_task : bool
        Evaluate after every task (else only at the end).
    log : callable, optional
        Receives one line per task.
    model : nn.Module, optional
        A prebuilt model (default :func:`build_model`).
    """
    if method not in METHODS:
        raise ValueError(f"unknown online method {method!r}; expected one of {sorted(METHODS)}")
    cfg = config or OnlineConfig()
    mem_kind, use_ewc, joint = METHODS.create(method)
    old_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    try:
        from labelwise.engine import seed_everything

        seed_everything(seed)  # python, numpy and torch: model initialisation and any global draw
        device = torch.device(cfg.device)
        net = (model or build_model(seq.num_classes, head, cfg)).to(device)
        net.train()
        opt = torch.optim.Adam(
            [p for p in net.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        fetch_train = _Fetcher(seq.train, device)
        fetch_test = _Fetcher(seq.test, device)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x0C1]))
        memory = (
            create_memory(
                mem_kind,
                cfg.memory_size,
                seq.num_classes,
                q=cfg.q,
                seed=seed,
                eviction=cfg.prs_eviction,
                gss_samples=cfg.gss_samples,
                ocdm_rho=cfg.ocdm_rho,
            )
            if mem_kind
            else None
        )
        probe_kw: dict[str, Any] = {}
        if memory is not None and memory.needs == "gradients":
            params = (
                _head_parameters(net)
                if cfg.gss_params == "head"
                else [p for p in net.parameters() if p.requires_grad]
            )
            probe_kw["probe"] = _gradient_probe(net, fetch_train, params)
        elif memory is not None and memory.needs == "features":
            probe_kw["probe"] = _feature_probe(net, fetch_train)
        ewc = OnlineEWC(net, lambda_ewc=cfg.lambda_ewc, gamma=cfg.ewc_gamma) if use_ewc else None
        t0 = time.perf_counter()
        steps = 0
        rows: list[dict[str, Any]] = []

        def step(idx: np.ndarray) -> None:
            nonlocal steps
            x, y, kept = fetch_train(idx)
            if memory is not None and len(memory) and cfg.replay_batch:
                m_idx, _ = memory.sample(cfg.replay_batch, rng)
                mx, my, _ = fetch_train(m_idx)
                x, y = torch.cat([x, mx]), torch.cat([y, my])
            if len(x):
                loss = _loss(net, x, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if ewc is not None:
                    ewc.accumulate(net)
                    pen = ewc.penalty(net)
                    if pen.requires_grad:
                        pen.backward()
                if cfg.clip_value:
                    torch.nn.utils.clip_grad_value_(net.parameters(), cfg.clip_value)
                opt.step()
                steps += 1
            if memory is not None:
                memory.update(kept, fetch_train.targets[kept], **probe_kw)

        def evaluate(upto: int) -> dict[str, dict[str, float]]:
            idx = np.concatenate(seq.test_tasks[: upto + 1])
            scores, targets = _predict(net, fetch_test, idx, cfg.eval_batch)
            return evaluate_groups(scores, targets, seq.groups, threshold=cfg.threshold)

        final: dict[str, dict[str, float]] = {}
        if joint:
            stream = seq.stream_indices()
            b = cfg.stream_batch + cfg.replay_batch
            for _ in range(cfg.multitask_epochs):
                order = stream[rng.permutation(len(stream))]
                for s in range(0, len(order), b):
                    step(order[s : s + b])
            final = evaluate(seq.num_tasks - 1)
            rows.append(_task_row(seq.num_tasks - 1, seq, final, t0, steps))
        else:
            for t in range(seq.num_tasks):
                idx = seq.train_tasks[t][rng.permutation(len(seq.train_tasks[t]))]
                for s in range(0, len(idx), cfg.stream_batch):
                    step(idx[s : s + cfg.stream_batch])
                if ewc is not None:
                    ewc.end_task(net)
                if eval_each_task or t == seq.num_tasks - 1:
                    res = evaluate(t)
                    rows.append(_task_row(t, seq, res, t0, steps))
                    if t == seq.num_tasks - 1:
                        final = res
                    if log is not None:
                        r = res["overall"]
                        log(
                            f"{method_label(method, head)} seed {seed} task {t + 1}/{seq.num_tasks} (id {seq.task_ids[t]}): "
                            f"mAP {100 * r['mAP']:.1f} CF1 {100 * r['CF1']:.1f} OF1 {100 * r['OF1']:.1f}"
                        )
        seconds = time.perf_counter() - t0
        counts = memory.class_counts().tolist() if memory is not None else None
        return OnlineResult(method, head, int(seed), final, rows, counts, round(seconds, 2), steps)
    finally:
        torch.set_num_threads(old_threads)


def _task_row(
    t: int, seq: OnlineSequence, res: dict[str, dict[str, float]], t0: float, steps: int
) -> dict[str, Any]:
    r = res["overall"]
    return {
        "task": t,
        "task_id": seq.task_ids[t],
        "num_classes": r["num_classes"],
        "steps": steps,
        "seconds": round(time.perf_counter() - t0, 2),
        **{k: r[k] for k in _REPORT_KEYS},
    }


# ---------------------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------------------
def summarize(results: Iterable[OnlineResult]) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    """Mean and (sample) standard deviation over runs: ``{label: {group: {metric: (mean, std)}}}``.

    Examples
    --------
    >>> f = {g: {"CF1": 0.5, "OF1": 0.5, "mAP": 0.5} for g in GROUPS}
    >>> rs = [OnlineResult("prs", "ssca", s, f, [], None, 0.0, 0) for s in range(2)]
    >>> summarize(rs)["PRS + SSCA"]["overall"]["mAP"]
    (0.5, 0.0)
    """
    grouped: dict[str, list[OnlineResult]] = {}
    for r in results:
        grouped.setdefault(method_label(r.method, r.head), []).append(r)
    out: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    for label, rs in grouped.items():
        out[label] = {}
        for g in GROUPS:
            out[label][g] = {}
            for m in METRICS:
                v = np.array([r.final[g][m] for r in rs], dtype=np.float64)
                v = v[~np.isnan(v)]
                mean = float(v.mean()) if len(v) else float("nan")
                std = float(v.std(ddof=1)) if len(v) > 1 else 0.0 if len(v) else float("nan")
                out[label][g][m] = (mean, std)
    return out


def format_table(
    summary: dict[str, dict[str, dict[str, tuple[float, float]]]], *, title: str = "", std: bool = True
) -> str:
    """The Table 7 layout: majority / moderate / minority / overall x C-F1, O-F1, mAP (percent, mean ± std).

    Examples
    --------
    >>> f = {g: {"CF1": 0.5, "OF1": 0.25, "mAP": 0.75} for g in GROUPS}
    >>> print(format_table(summarize([OnlineResult("crs", "baseline", 0, f, [], None, 0.0, 0)]), std=False))
    ... # doctest: +NORMALIZE_WHITESPACE
    | method | majority C-F1 | majority O-F1 | majority mAP | moderate C-F1 | moderate O-F1 | moderate mAP | minority C-F1 | minority O-F1 | minority mAP | overall C-F1 | overall O-F1 | overall mAP |
    |---|---|---|---|---|---|---|---|---|---|---|---|---|
    | CRS | 50.0 | 25.0 | 75.0 | 50.0 | 25.0 | 75.0 | 50.0 | 25.0 | 75.0 | 50.0 | 25.0 | 75.0 |
    """
    names = {"CF1": "C-F1", "OF1": "O-F1", "mAP": "mAP"}
    head = ["method"] + [f"{g} {names[m]}" for g in GROUPS for m in METRICS]
    lines = [title] if title else []
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, groups in summary.items():
        cells = [label]
        for g in GROUPS:
            for m in METRICS:
                mean, sd = groups[g][m]
                if math.isnan(mean):
                    cells.append("-")
                elif std:
                    cells.append(f"{100 * mean:.1f} ± {100 * sd:.1f}")
                else:
                    cells.append(f"{100 * mean:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
