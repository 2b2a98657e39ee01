"""MultiDigits: the embedded multi-label image benchmark, generated from scikit-learn's handwritten digits.

Every image (RGB, ``image_size`` square, default 64) holds one or more coloured digits at random positions
and scales on a dark, mildly cluttered background. A class is a (digit, colour) pair named ``"3-red"``.

* ``multidigits20``: 10 digits x 2 colours (red, cyan), like PASCAL VOC's 20 classes, ~2.4 labels per image.
* ``multidigits80``: 10 digits x 8 colours, like MS-COCO's 80 classes, ~2.9 labels per image.
* ``multidigits40``: 10 digits x 4 *other* colours (white, brown, teal, indigo: in neither palette above), the
  pretraining corpus of the shipped weights (:mod:`labelwise.pretrain`): its label space is disjoint from the
  evaluation variants'.

The sources are the 1797 8x8 digits of :func:`sklearn.datasets.load_digits` (no download). They are split once,
stratified by digit and independently of ``seed``, into two disjoint halves: the *train pool* (used by the
``train`` and ``val`` splits) and the *test pool* (``test`` split), so a test image never shows a handwritten
digit seen in training.

Label model (a latent "scene context" per image):

1. A global long-tailed class prior ``p(c) ∝ (1 + rank(c)) ** -tail`` over a seeded random ranking of the
   classes (``tail=0`` is balanced).
2. ``num_contexts`` scene contexts, each a sparse preference ``q_k ∝ p * g_k`` with
   ``g_k ~ Dirichlet(context_concentration)``; an image draws a context uniformly and its classes from
   ``p(c | k) = (1 - context_strength) p(c) + context_strength q_k(c)``, so classes favoured by the same
   context co-occur.
3. The number of distinct labels is ``1 + K``, ``K`` a Poisson truncated to ``max_objects - 1`` whose rate is
   solved so that the expected number of labels equals ``cardinality``; the labels are drawn without
   replacement from ``p(c | k)`` (Gumbel top-k). Each label gets a second instance with probability
   ``duplicate_prob`` while the image holds fewer than ``max_objects`` digits (a label is still a single 1).
4. A floor: every class is given at least ``min(min_count, n // n_classes)`` images of the split, by adding
   it to random images that lack it and have room.

Rendering: each instance's 8x8 source (intensities 0-16) is resized bilinearly to its side, drawn
log-uniformly in ``[min_scale, max_scale] * image_size`` (so small objects are common), tinted with its colour
(per-instance brightness and channel jitter, never enough to confuse two palette colours) and alpha-composited
in a random order. Positions are uniform inside the image; a later digit's box may cover at most
``max_occlusion`` of the box of each earlier digit (rejection sampling, 32 tries with shrinking sides; the
rare instances that still exceed it are counted in ``metadata["occlusion_violations"]``). Clutter (scaled by
``clutter``; 0 gives a clean black background): a dark tinted background with a low-frequency gradient, up to
three faint grey strokes and Gaussian pixel noise.

Generation is deterministic for a given set of options (byte-identical arrays on one platform), each split
drawn from its own random stream (changing ``n_train`` does not change the test split), takes a few seconds
for the default sizes and is cached as an uncompressed ``.npz`` (no pickle) named by a hash of the options and
:data:`GENERATOR_VERSION`.

Examples
--------
>>> from labelwise.data import load_dataset
>>> ds = load_dataset("multidigits20", split="train", n_train=8, cache=False)
>>> ds.inputs.shape, ds.targets.shape, ds.class_names[:3]
(torch.Size([8, 3, 64, 64]), (8, 20), ['0-red', '0-cyan', '1-red'])
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .base import ArrayDataset
from .registry import register_dataset

__all__ = [
    "GENERATOR_VERSION",
    "PALETTES",
    "VARIANTS",
    "MultiDigitsDataset",
    "generate_multidigits",
    "load_multidigits",
    "source_pools",
    "default_cache_dir",
]

#: Bumped whenever the generated arrays change for the same options; part of every cache file name.
GENERATOR_VERSION = 1

#: Colour name -> RGB. Hues are >= 30 degrees apart and differ by >= 90 in some channel.
PALETTES: dict[int, dict[str, tuple[int, int, int]]] = {
    2: {"red": (235, 40, 35), "cyan": (35, 215, 235)},
    8: {
        "red": (235, 35, 35),
        "orange": (255, 145, 0),
        "yellow": (240, 235, 40),
        "green": (40, 205, 55),
        "cyan": (35, 225, 235),
        "blue": (55, 95, 255),
        "purple": (160, 60, 240),
        "pink": (255, 90, 200),
    },
    # the pretraining palette: none of these is a colour of the 2- or 8-colour palettes; each pair differs by
    # >= 110 in some channel
    4: {"white": (235, 235, 235), "brown": (170, 90, 20), "teal": (20, 150, 140), "indigo": (60, 40, 170)},
}

#: Registered variants: number of colours and the variant-specific defaults.
VARIANTS: dict[str, dict[str, Any]] = {
    "multidigits20": {"n_colors": 2, "cardinality": 2.4, "max_objects": 5, "num_contexts": 4, "tail": 0.8},
    "multidigits80": {"n_colors": 8, "cardinality": 2.9, "max_objects": 6, "num_contexts": 10, "tail": 0.9},
    "multidigits40": {"n_colors": 4, "cardinality": 2.6, "max_objects": 6, "num_contexts": 6, "tail": 0.5},
}

_SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
_POOL_SEED = 20240517  # fixed: the train/test pools never depend on `seed`
_SCENE_STREAM = 7
_TRIES = 32

# Options shared by both variants (variant defaults override the None entries).
_DEFAULTS: dict[str, Any] = {
    "image_size": 64,
    "n_train": 5000,
    "n_val": 1000,
    "n_test": 5000,
    "seed": 0,
    "cardinality": None,
    "max_objects": None,
    "num_contexts": None,
    "context_strength": 0.8,
    "context_concentration": 0.3,
    "tail": None,
    "duplicate_prob": 0.15,
    "min_count": 10,
    "min_scale": 0.2,
    "max_scale": 0.5,
    "max_occlusion": 0.4,
    "clutter": 1.0,
}


def default_cache_dir() -> Path:
    """``$LABELWISE_CACHE/multidigits`` if the variable is set, else ``~/.cache/labelwise/multidigits``.

    Examples
    --------
    >>> default_cache_dir().name
    'multidigits'
    """
    base = os.environ.get("LABELWISE_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "labelwise") / "multidigits"


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.float32), d.target.astype(np.int64)


def source_pools() -> dict[str, np.ndarray]:
    """Disjoint train/test pools of ``load_digits`` indices, stratified by digit (half of each digit each).

    Returns
    -------
    dict
        ``{"train": int64 [~899], "test": int64 [~898]}``, sorted indices into ``load_digits().images``.

    Examples
    --------
    >>> pools = source_pools()
    >>> len(pools["train"]) + len(pools["test"]), len(set(pools["train"]) & set(pools["test"]))
    (1797, 0)
    """
    _, labels = _digits()
    rng = np.random.default_rng(_POOL_SEED)
    train, test = [], []
    for d in range(10):
        idx = rng.permutation(np.flatnonzero(labels == d))
        half = (len(idx) + 1) // 2
        train.append(idx[:half])
        test.append(idx[half:])
    return {"train": np.sort(np.concatenate(train)), "test": np.sort(np.concatenate(test))}


# -- options --------------------------------------------------------------------------------------------
def _resolve_options(variant: str, options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(_DEFAULTS))
    if unknown:
        raise TypeError(f"{variant}: unknown option(s) {', '.join(map(repr, unknown))}; accepted: "
                        f"{', '.join(sorted(_DEFAULTS))}, cache")
    spec = VARIANTS[variant]
    opt = {k: (spec.get(k) if v is None else v) for k, v in {**_DEFAULTS, **options}.items()}
    for k, v in list(opt.items()):
        if v is None:
            opt[k] = spec[k]

    def _int(name: str, lo: int, hi: int | None = None) -> None:
        v = opt[name]
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise ValueError(f"{variant}: option {name!r} must be an integer, got {v!r}")
        if v < lo or (hi is not None and v > hi):
            rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
            raise ValueError(f"{variant}: option {name!r} must be {rng}, got {v}")
        opt[name] = int(v)

    def _float(name: str, lo: float, hi: float | None = None, *, open_lo: bool = False) -> None:
        v = opt[name]
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating) or not math.isfinite(v):
            raise ValueError(f"{variant}: option {name!r} must be a finite number, got {v!r}")
        if v < lo or (open_lo and v == lo) or (hi is not None and v > hi):
            lo_s = f"> {lo}" if open_lo else f">= {lo}"
            rng = lo_s if hi is None else f"{lo_s} and <= {hi}"
            raise ValueError(f"{variant}: option {name!r} must be {rng}, got {v}")
        opt[name] = float(v)

    _int("image_size", 16, 1024)
    for n in ("n_train", "n_val", "n_test"):
        _int(n, 0)
    _int("seed", 0)
    _int("max_objects", 1, 10 * spec["n_colors"])
    _int("num_contexts", 1)
    _int("min_count", 0)
    _float("cardinality", 1.0, float(opt["max_objects"]))
    _float("context_strength", 0.0, 1.0)
    _float("context_concentration", 0.0, open_lo=True)
    _float("tail", 0.0, 10.0)
    _float("duplicate_prob", 0.0, 1.0)
    _float("min_scale", 0.0, 1.0, open_lo=True)
    _float("max_scale", 0.0, 1.0, open_lo=True)
    _float("max_occlusion", 0.0, 1.0)
    _float("clutter", 0.0, 4.0)
    if opt["min_scale"] > opt["max_scale"]:
        raise ValueError(f"{variant}: option 'min_scale' ({opt['min_scale']}) exceeds 'max_scale' ({opt['max_scale']})")
    if round(opt["min_scale"] * opt["image_size"]) < 4:
        raise ValueError(f"{variant}: min_scale * image_size = {opt['min_scale'] * opt['image_size']:.1f} px; "
                         "digits need at least 4 px (raise 'min_scale' or 'image_size')")
    if opt["cardinality"] > opt["max_objects"]:
        raise ValueError(f"{variant}: option 'cardinality' ({opt['cardinality']}) exceeds 'max_objects' ({opt['max_objects']})")
    return opt


# -- the label model ------------------------------------------------------------------------------------
def _truncated_poisson_rate(mean: float, kmax: int) -> float:
    """Rate ``lam`` with ``E[K | K <= kmax] = mean`` for ``K ~ Poisson(lam)`` (bisection)."""
    if kmax == 0 or mean <= 0:
        return 0.0
    ks = np.arange(kmax + 1)
    logfact = np.cumsum(np.log(np.maximum(ks, 1)))

    def tmean(lam: float) -> float:
        logw = ks * math.log(lam) - logfact
        w = np.exp(logw - logw.max())
        return float((ks * w).sum() / w.sum())

    lo, hi = 1e-9, 1.0
    while tmean(hi) < mean and hi < 1e6:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if tmean(mid) < mean else (lo, mid)
    return 0.5 * (lo + hi)


def _scene_model(opt: dict[str, Any], n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Global prior ``[C]`` and per-context class distributions ``[K, C]`` (shared by every split)."""
    rng = np.random.default_rng(np.random.SeedSequence([opt["seed"], _SCENE_STREAM]))
    rank = rng.permutation(n_classes)
    prior = (1.0 + rank) ** (-opt["tail"])
    prior /= prior.sum()
    gains = rng.dirichlet(np.full(n_classes, opt["context_concentration"]), size=opt["num_contexts"])
    pref = prior[None] * gains + 1e-12
    pref /= pref.sum(axis=1, keepdims=True)
    s = opt["context_strength"]
    cond = (1.0 - s) * prior[None] + s * pref
    return prior, cond / cond.sum(axis=1, keepdims=True)


def _draw_labels(rng: np.random.Generator, n: int, opt: dict[str, Any], cond: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Object classes ``int64 [n, max_objects]`` (-1 = empty slot, random slot order) and contexts ``[n]``."""
    n_ctx, n_classes = cond.shape
    m = opt["max_objects"]
    kmax = min(m, n_classes) - 1
    lam = _truncated_poisson_rate(opt["cardinality"] - 1.0, kmax)
    ks = np.arange(kmax + 1)
    pmf = np.exp(ks * math.log(max(lam, 1e-300)) - np.cumsum(np.log(np.maximum(ks, 1)))) if lam > 0 else (ks == 0) * 1.0
    cdf = np.cumsum(pmf / pmf.sum())
    n_labels = 1 + np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), kmax)

    ctx = rng.integers(0, n_ctx, size=n)
    keys = np.log(cond[ctx]) + rng.gumbel(size=(n, n_classes))
    order = np.argsort(-keys, axis=1, kind="stable")
    labels = np.where(np.arange(m)[None] < n_labels[:, None], order[:, :m], -1) if m <= n_classes else \
        np.concatenate([np.where(np.arange(n_classes)[None] < n_labels[:, None], order, -1),
                        np.full((n, m - n_classes), -1)], axis=1)

    # floor: every class in at least min(min_count, n // C) images of the split
    targets = np.zeros((n, n_classes), dtype=bool)
    rows = np.nonzero(labels >= 0)
    targets[rows[0], labels[rows]] = True
    floor = min(opt["min_count"], n // n_classes)
    count = (labels >= 0).sum(axis=1)
    for c in np.flatnonzero(targets.sum(axis=0) < floor):
        need = floor - int(targets[:, c].sum())
        cand = np.flatnonzero(~targets[:, c] & (count < m))
        pick = rng.choice(cand, size=min(need, len(cand)), replace=False)
        labels[pick, count[pick]] = c
        targets[pick, c] = True
        count[pick] += 1

    # duplicates: a second instance of a label while the image has room
    dup = (labels >= 0) & (rng.random(labels.shape) < opt["duplicate_prob"])
    dup_rank = np.cumsum(dup, axis=1)
    room = m - count
    dup &= dup_rank <= room[:, None]
    extra = np.where(dup, labels, -1)
    # move the duplicates into the free slots
    extra_sorted = -np.sort(-extra, axis=1)  # valid (>= 0) first
    n_extra = dup.sum(axis=1)
    slot = np.arange(m)[None]
    fill = (slot >= count[:, None]) & (slot < (count + n_extra)[:, None])
    src = np.clip(slot - count[:, None], 0, m - 1)
    labels = np.where(fill, np.take_along_axis(extra_sorted, src, axis=1), labels)

    # random drawing order of the valid slots, empties last
    perm_keys = np.where(labels >= 0, rng.random(labels.shape), 2.0)
    labels = np.take_along_axis(labels, np.argsort(perm_keys, axis=1, kind="stable"), axis=1)
    return labels, ctx


def _place(rng: np.random.Generator, labels: np.ndarray, opt: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Box side, top and left ``int64 [n, m]`` for each object slot; returns also the violation count."""
    n, m = labels.shape
    size = opt["image_size"]
    lo_px, hi_px = opt["min_scale"] * size, opt["max_scale"] * size
    side = np.zeros((n, m), dtype=np.int64)
    top = np.zeros((n, m), dtype=np.int64)
    left = np.zeros((n, m), dtype=np.int64)
    cover = np.zeros((n, m), dtype=np.float64)  # fraction of each box covered by later boxes (upper bound)
    violations = 0
    shrink = np.linspace(1.0, 0.0, _TRIES)[None]  # later tries shrink the side towards the minimum
    for j in range(m):
        act = np.flatnonzero(labels[:, j] >= 0)
        if act.size == 0:
            continue
        a = act.size
        u = rng.random(a)
        s0 = np.exp(np.log(lo_px) + u * (np.log(hi_px) - np.log(lo_px)))
        s = np.maximum(np.rint(lo_px + (s0[:, None] - lo_px) * shrink), 4).astype(np.int64)  # [a, T]
        s = np.minimum(s, size)
        y = np.floor(rng.random((a, _TRIES)) * (size - s + 1)).astype(np.int64)
        x = np.floor(rng.random((a, _TRIES)) * (size - s + 1)).astype(np.int64)
        if j == 0:
            best = np.zeros(a, dtype=np.int64)
            new_cov = np.zeros((a, _TRIES, 0))
        else:
            ps, py, px = side[act, :j, None], top[act, :j, None], left[act, :j, None]  # [a, j, 1]
            valid_prev = (labels[act, :j] >= 0)[:, :, None]
            ih = np.clip(np.minimum(py + ps, y[:, None] + s[:, None]) - np.maximum(py, y[:, None]), 0, None)
            iw = np.clip(np.minimum(px + ps, x[:, None] + s[:, None]) - np.maximum(px, x[:, None]), 0, None)
            frac = np.where(valid_prev, ih * iw / np.maximum(ps * ps, 1), 0.0)  # [a, j, T]
            new_cov = cover[act, :j, None] + frac
            worst = new_cov.max(axis=1)  # [a, T]
            ok = worst <= opt["max_occlusion"] + 1e-9
            best = np.where(ok.any(axis=1), ok.argmax(axis=1), worst.argmin(axis=1))
            violations += int((~ok.any(axis=1)).sum())
            cover[act, :j] = new_cov[np.arange(a), :, best]
        r = np.arange(a)
        side[act, j], top[act, j], left[act, j] = s[r, best], y[r, best], x[r, best]
    return side, top, left, violations


# -- rendering ------------------------------------------------------------------------------------------
def _background(rng: np.random.Generator, n: int, size: int, clutter: float) -> torch.Tensor:
    """Dark cluttered canvases ``float32 [n, size, size, 3]`` in 0..255."""
    # a dark tinted base plus a separable low-frequency gradient (row profile + column profile, each a linear
    # interpolation of 4 random control values)
    base = torch.from_numpy((rng.random((n, 1, 1, 3)) * 14.0 * clutter).astype(np.float32))
    ctrl = torch.from_numpy((rng.random((n * 3 * 2, 1, 4)) * 12.0 * clutter).astype(np.float32))
    prof = F.interpolate(ctrl, size=size, mode="linear", align_corners=False).view(n, 3, 2, size)
    canvas = base + prof[:, :, 0].transpose(1, 2)[:, :, None, :] + prof[:, :, 1].transpose(1, 2)[:, None, :, :]
    n_strokes = 3
    present = rng.random((n, n_strokes)) < 0.5 * min(clutter, 1.0)
    p0 = rng.random((n, n_strokes, 2)) * size
    ang = rng.random((n, n_strokes)) * 2 * np.pi
    length = (0.2 + 0.4 * rng.random((n, n_strokes))) * size
    d = np.stack([np.cos(ang), np.sin(ang)], axis=-1) * length[..., None]
    level = np.where(present, (30.0 + 40.0 * rng.random((n, n_strokes))) * min(clutter, 1.5), 0.0)
    width = 0.6 + 0.8 * rng.random((n, n_strokes))
    grid = torch.arange(size, dtype=torch.float32) + 0.5
    gy, gx = grid[:, None], grid[None, :]
    strokes = torch.zeros(n, size, size)
    chunk = 1024
    for k in range(n_strokes):
        have = np.flatnonzero(present[:, k])
        for b in range(0, have.size, chunk):
            sel = have[b:b + chunk]
            y0, x0 = (torch.from_numpy(p0[sel, k, i].astype(np.float32))[:, None, None] for i in (0, 1))
            dx, dy = (torch.from_numpy(d[sel, k, i].astype(np.float32))[:, None, None] for i in (0, 1))
            ry, rx = gy - y0, gx - x0
            t = ((ry * dy + rx * dx) / (dy * dy + dx * dx)).clamp_(0, 1)
            dist = ((ry - t * dy).square_() + (rx - t * dx).square_()).sqrt_()
            w = torch.from_numpy(width[sel, k].astype(np.float32))[:, None, None]
            lv = torch.from_numpy(level[sel, k].astype(np.float32))[:, None, None]
            idx = torch.from_numpy(sel)
            strokes[idx] = torch.maximum(strokes[idx], (1.0 + w - dist).clamp_(0, 1).mul_(lv))
    return canvas.contiguous().add_(strokes[..., None])


def _render(rng: np.random.Generator, labels: np.ndarray, side: np.ndarray, top: np.ndarray, left: np.ndarray,
            sources: np.ndarray, colours: np.ndarray, opt: dict[str, Any]) -> np.ndarray:
    n, m = labels.shape
    size = opt["image_size"]
    canvas = _background(rng, n, size, opt["clutter"])
    digits = torch.from_numpy(_digits()[0])  # [1797, 8, 8]
    flat = canvas.view(n * size * size, 3)
    for j in range(m):
        act = np.flatnonzero(labels[:, j] >= 0)
        for s in np.unique(side[act, j]):
            s = int(s)
            sel = act[side[act, j] == s]
            src = digits[torch.from_numpy(sources[sel, j])][:, None]
            patch = F.interpolate(src, size=(s, s), mode="bilinear", align_corners=False)
            alpha = (patch.reshape(-1, 1) * (1.25 / 16.0)).clamp_(0, 1)  # [M*s*s, 1]
            col = torch.from_numpy(colours[sel, j].astype(np.float32)).repeat_interleave(s * s, dim=0)
            # flat pixel index of every patch pixel: (image * size + row) * size + column
            rows = torch.from_numpy(sel * size + top[sel, j])[:, None, None] + torch.arange(s)[None, :, None]
            lin = (rows * size + torch.from_numpy(left[sel, j])[:, None, None] + torch.arange(s)[None, None, :]).reshape(-1)
            region = flat.index_select(0, lin)
            flat.index_copy_(0, lin, region + alpha * (col - region))
    amp = 7.0 * opt["clutter"]  # uniform pixel noise in [-amp, amp] (std ~ 0.58 amp)
    noise = torch.from_numpy(rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8))
    out = (canvas + noise.to(torch.float32).mul_(amp / 127.5).sub_(amp)).round_().clamp_(0, 255).to(torch.uint8)
    return out.permute(0, 3, 1, 2).contiguous().numpy()


def generate_multidigits(variant: str, split: str, **options: Any) -> dict[str, Any]:
    """Generate one split of a MultiDigits variant in memory (no cache).

    Parameters
    ----------
    variant : {"multidigits20", "multidigits80", "multidigits40"}
    split : {"train", "val", "test"}
    **options
        See :func:`load_multidigits`.

    Returns
    -------
    dict
        ``images`` uint8 ``[N, 3, S, S]``, ``targets`` uint8 ``[N, C]``, ``class_names``, ``contexts`` int64
        ``[N]``, per-object arrays ``object_image``, ``object_class``, ``object_source`` (index into
        ``load_digits``), ``object_side``, ``object_top``, ``object_left``, ``object_color`` (RGB after
        jitter), and ``metadata`` (a JSON-serialisable dict).

    Examples
    --------
    >>> out = generate_multidigits("multidigits80", "test", n_test=4, image_size=32)
    >>> out["images"].shape, out["targets"].shape
    ((4, 3, 32, 32), (4, 80))
    """
    if variant not in VARIANTS:
        raise KeyError(f"unknown MultiDigits variant {variant!r}; expected one of {sorted(VARIANTS)}")
    if split not in _SPLIT_CODES:
        raise ValueError(f"{variant}: unknown split {split!r}; expected 'train', 'val' or 'test'")
    opt = _resolve_options(variant, options)
    t0 = time.perf_counter()
    n_colors = VARIANTS[variant]["n_colors"]
    palette = PALETTES[n_colors]
    colour_names = list(palette)
    class_names = [f"{d}-{c}" for d in range(10) for c in colour_names]
    n_classes = len(class_names)
    n = opt[f"n_{split}"]

    _, cond = _scene_model(opt, n_classes)
    rng = np.random.default_rng(np.random.SeedSequence([opt["seed"], 1 + _SPLIT_CODES[split]]))
    labels, ctx = _draw_labels(rng, n, opt, cond)
    side, top, left, violations = _place(rng, labels, opt)

    # sources: a random digit of the right class from this split's pool
    pool = source_pools()["test" if split == "test" else "train"]
    pool_digit = _digits()[1][pool]
    order = np.argsort(pool_digit, kind="stable")
    pool_sorted = pool[order]
    start = np.searchsorted(pool_digit[order], np.arange(10))
    count = np.bincount(pool_digit, minlength=10)
    digit = np.where(labels >= 0, labels // n_colors, 0)
    pick = np.floor(rng.random(labels.shape) * count[digit]).astype(np.int64)
    sources = pool_sorted[start[digit] + pick]

    # colours: palette colour, brightness in [0.8, 1] and small per-channel jitter
    base = np.asarray(list(palette.values()), dtype=np.float64)[np.where(labels >= 0, labels % n_colors, 0)]
    bright = 0.8 + 0.2 * rng.random(labels.shape + (1,))
    colours = np.clip(base * bright + rng.normal(0.0, 6.0, labels.shape + (3,)), 0, 255)

    images = _render(rng, labels, side, top, left, sources, colours, opt)
    targets = np.zeros((n, n_classes), dtype=np.uint8)
    valid = labels >= 0
    img_idx, slot_idx = np.nonzero(valid)
    targets[img_idx, labels[valid]] = 1
    elapsed = time.perf_counter() - t0
    metadata = {
        "variant": variant,
        "split": split,
        "generator_version": GENERATOR_VERSION,
        "options": opt,
        "colors": {k: list(v) for k, v in palette.items()},
        "floor": int(min(opt["min_count"], n // n_classes)),
        "min_class_count": int(targets.sum(axis=0).min()) if n else 0,
        "n_objects": int(valid.sum()),
        "occlusion_violations": int(violations),
        "generation_seconds": round(elapsed, 4),
    }
    return {
        "images": images,
        "targets": targets,
        "class_names": class_names,
        "contexts": ctx.astype(np.int64),
        "object_image": img_idx.astype(np.int64),
        "object_class": labels[valid].astype(np.int64),
        "object_source": sources[valid].astype(np.int64),
        "object_side": side[valid].astype(np.int64),
        "object_top": top[valid].astype(np.int64),
        "object_left": left[valid].astype(np.int64),
        "object_color": np.rint(colours[valid]).astype(np.uint8),
        "metadata": metadata,
    }


# -- the dataset and its cache --------------------------------------------------------------------------
_ARRAY_KEYS = ("images", "targets", "contexts", "object_image", "object_class", "object_source", "object_side",
               "object_top", "object_left", "object_color")


class MultiDigitsDataset(ArrayDataset):
    """One split of MultiDigits: an :class:`~labelwise.data.ArrayDataset` of uint8 images with the scene record.

    Attributes
    ----------
    objects : dict of str to ndarray
        One entry per digit instance: ``image``, ``class``, ``source`` (``load_digits`` index), ``side``,
        ``top``, ``left`` (pixels) and ``color`` (uint8 RGB).
    contexts : ndarray of int64, shape (N,)
        The latent scene context of each image.
    metadata : dict
        Resolved options, generator version, floor and minimum class count, occlusion violations, generation
        time, ``cache_file`` and ``from_cache``.

    Examples
    --------
    >>> ds = load_multidigits("multidigits20", split="val", n_val=4, cache=False)
    >>> sorted(ds.objects), ds.contexts.shape
    (['class', 'color', 'image', 'left', 'side', 'source', 'top'], (4,))
    """

    def __init__(self, data: dict[str, Any], *, name: str, transform: Any = None) -> None:
        super().__init__(torch.from_numpy(data["images"]), data["targets"], data["class_names"], name=name,
                         transform=transform)
        self.contexts = data["contexts"]
        self.objects = {k[len("object_"):]: data[k] for k in _ARRAY_KEYS if k.startswith("object_")}
        self.metadata = dict(data["metadata"])

    @property
    def source_indices(self) -> np.ndarray:
        """Sorted distinct ``load_digits`` indices drawn in this split (disjoint between train/val and test)."""
        return np.unique(self.objects["source"])


def _cache_key(variant: str, split: str, opt: dict[str, Any]) -> str:
    relevant = {k: v for k, v in opt.items() if not (k.startswith("n_") and k != f"n_{split}")}
    payload = json.dumps({"variant": variant, "split": split, "version": GENERATOR_VERSION, **relevant},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: data[k] for k in _ARRAY_KEYS}
    arrays["class_names"] = np.asarray(data["class_names"], dtype=str)
    arrays["metadata"] = np.asarray(json.dumps(data["metadata"], sort_keys=True))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp.npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _load(path: Path, expected_key: str) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in (*_ARRAY_KEYS, "class_names", "metadata") if k not in z.files]
        if missing:
            raise ValueError(f"missing arrays {missing}")
        data = {k: z[k] for k in _ARRAY_KEYS}
        data["class_names"] = [str(c) for c in z["class_names"]]
        data["metadata"] = json.loads(str(z["metadata"]))
    if data["metadata"].get("cache_key") != expected_key:
        raise ValueError("cache key mismatch")
    n = data["targets"].shape[0]
    if data["images"].shape[0] != n or data["images"].dtype != np.uint8 or data["contexts"].shape != (n,):
        raise ValueError("inconsistent array shapes")
    return data


def load_multidigits(variant: str, root: str | os.PathLike | None = None, split: str = "train", *,
                     cache: bool = True, transform: Any = None, **options: Any) -> MultiDigitsDataset:
    """Load (generate or read from the cache) one split of a MultiDigits variant.

    Parameters
    ----------
    variant : {"multidigits20", "multidigits80", "multidigits40"}
    root : str or path, optional
        Cache directory (default :func:`default_cache_dir`).
    split : {"train", "val", "test"}
        ``val`` is drawn from the training pool of source digits, ``test`` from the disjoint test pool.
    cache : bool
        Read/write ``<root>/<variant>-<split>-<hash>.npz``. A corrupted file is regenerated with a warning.
    transform : callable, optional
        Applied to each ``tv_tensors.Image`` item.
    **options
        ``image_size`` (64), ``n_train`` (5000), ``n_val`` (1000), ``n_test`` (5000), ``seed`` (0),
        ``cardinality`` (2.4 / 2.9: target mean labels per image), ``max_objects`` (5 / 6 digits per image),
        ``num_contexts`` (4 / 10), ``context_strength`` (0.8: 0 = independent labels),
        ``context_concentration`` (0.3: Dirichlet concentration of the context preferences, smaller is
        sparser), ``tail`` (0.8 / 0.9: Zipf exponent of the class prior, 0 = balanced), ``duplicate_prob``
        (0.15), ``min_count`` (10: per-class floor), ``min_scale`` / ``max_scale`` (0.2 / 0.5 of the image
        side), ``max_occlusion`` (0.4), ``clutter`` (1.0; 0 = clean background). Values are
        ``multidigits20`` / ``multidigits80`` defaults.

    Raises
    ------
    TypeError
        An unknown option (named).
    ValueError
        An invalid option value or split (named).

    Examples
    --------
    >>> ds = load_multidigits("multidigits80", split="test", n_test=6, image_size=32, cache=False)
    >>> len(ds), ds.num_classes, ds[0]["input"].shape
    (6, 80, torch.Size([3, 32, 32]))
    """
    if variant not in VARIANTS:
        raise KeyError(f"unknown MultiDigits variant {variant!r}; expected one of {sorted(VARIANTS)}")
    if split not in _SPLIT_CODES:
        raise ValueError(f"{variant}: unknown split {split!r}; expected 'train', 'val' or 'test'")
    if not isinstance(cache, bool):
        raise ValueError(f"{variant}: option 'cache' must be True or False, got {cache!r}")
    opt = _resolve_options(variant, options)
    key = _cache_key(variant, split, opt)
    path = (Path(root) if root is not None else default_cache_dir()) / f"{variant}-{split}-{key}.npz"
    data = None
    if cache and path.is_file():
        try:
            data = _load(path, key)
            data["metadata"]["from_cache"] = True
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            warnings.warn(f"{variant}: cache file {path} is unreadable ({exc}); regenerating it", UserWarning,
                          stacklevel=2)
            data = None
    if data is None:
        data = generate_multidigits(variant, split, **opt)
        data["metadata"]["cache_key"] = key
        if cache:
            _save(path, data)
        data["metadata"]["from_cache"] = False
    data["metadata"]["cache_file"] = str(path) if cache else None
    return MultiDigitsDataset(data, name=variant, transform=transform)


def _factory_doc(variant: str) -> str:
    spec = VARIANTS[variant]
    return (f"``{variant}``: MultiDigits with {10 * spec['n_colors']} classes (10 digits x {spec['n_colors']} "
            f"colours); see :func:`load_multidigits` for the options.")


@register_dataset("multidigits20")
def multidigits20(root: str | os.PathLike | None = None, split: str = "train", *, image_size: int = 64,
                  n_train: int = 5000, n_val: int = 1000, n_test: int = 5000, seed: int = 0,
                  cardinality: float = 2.4, max_objects: int = 5, num_contexts: int = 4,
                  context_strength: float = 0.8, context_concentration: float = 0.3, tail: float = 0.8,
                  duplicate_prob: float = 0.15, min_count: int = 10, min_scale: float = 0.2,
                  max_scale: float = 0.5, max_occlusion: float = 0.4, clutter: float = 1.0,
                  cache: bool = True) -> MultiDigitsDataset:
    opts = {k: v for k, v in locals().items() if k not in ("root", "split", "cache")}
    return load_multidigits("multidigits20", root, split, cache=cache, **opts)


@register_dataset("multidigits80")
def multidigits80(root: str | os.PathLike | None = None, split: str = "train", *, image_size: int = 64,
                  n_train: int = 5000, n_val: int = 1000, n_test: int = 5000, seed: int = 0,
                  cardinality: float = 2.9, max_objects: int = 6, num_contexts: int = 10,
                  context_strength: float = 0.8, context_concentration: float = 0.3, tail: float = 0.9,
                  duplicate_prob: float = 0.15, min_count: int = 10, min_scale: float = 0.2,
                  max_scale: float = 0.5, max_occlusion: float = 0.4, clutter: float = 1.0,
                  cache: bool = True) -> MultiDigitsDataset:
    opts = {k: v for k, v in locals().items() if k not in ("root", "split", "cache")}
    return load_multidigits("multidigits80", root, split, cache=cache, **opts)


multidigits20.__doc__ = _factory_doc("multidigits20")
multidigits80.__doc__ = _factory_doc("multidigits80")


@register_dataset("multidigits40")
def multidigits40(root: str | os.PathLike | None = None, split: str = "train", *, image_size: int = 64,
                  n_train: int = 5000, n_val: int = 1000, n_test: int = 5000, seed: int = 0,
                  cardinality: float = 2.6, max_objects: int = 6, num_contexts: int = 6,
                  context_strength: float = 0.8, context_concentration: float = 0.3, tail: float = 0.5,
                  duplicate_prob: float = 0.15, min_count: int = 10, min_scale: float = 0.2,
                  max_scale: float = 0.5, max_occlusion: float = 0.4, clutter: float = 1.0,
                  cache: bool = True) -> MultiDigitsDataset:
    opts = {k: v for k, v in locals().items() if k not in ("root", "split", "cache")}
    return load_multidigits("multidigits40", root, split, cache=cache, **opts)


multidigits40.__doc__ = _factory_doc("multidigits40")
