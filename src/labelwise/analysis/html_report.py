"""The run report page: ``report/index.html``, one self-contained HTML file per run.

The page needs no network and no other file: figures and thumbnails are embedded as base64 ``data:`` URIs,
the CSS is inline and a Content-Security-Policy forbids loading anything else. Sections:

* **Metrics**: the headline metrics of the best checkpoint on validation (``checkpoints/best.json``) and on
  the test split (``test_metrics.json``); recomputed from the stored predictions when neither exists.
* **Per-class results**: every class sorted by AP, with its number of positives in the evaluated split, its
  decision threshold (tuned per class on validation, or the global one) and precision/recall/F1 at it.
* **Precision-recall curves** and **learning curves** (the PNGs of :func:`labelwise.analysis.write_report`,
  drawn here when missing).
* **Label co-occurrence**: a heat map of ``p(column label | row label)`` over the evaluated split.
* **Error gallery**: the evaluated images with the highest-scored false positives and the lowest-scored
  false negatives (an image at most once per kind, at most ``max_gallery`` cards), as thumbnails with their true and predicted
  labels. For datasets of feature vectors the section says it does not apply.

It is built from the run directory alone: ``report/predictions_<split>.npz``
(:mod:`labelwise.analysis.predictions`), ``metrics.csv``, ``test_metrics.json``, ``checkpoints/best.json``
and the evaluated split for the thumbnails (given by the trainer; ``labelwise report RUN``, which rebuilds the
page, re-loads it from ``config.yaml`` with :func:`labelwise.run.load_run_split`). Training writes it at the
end of a run (the validation split, then the test split when one is evaluated).

Examples
--------
>>> import numpy as np, tempfile
>>> from labelwise.analysis.html_report import write_html_report
>>> from labelwise.analysis.predictions import predictions_path, save_predictions
>>> run = tempfile.mkdtemp()
>>> y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
>>> s = np.array([[.9, .1], [.2, .8], [.7, .6], [.1, .3]])
>>> _ = save_predictions(predictions_path(run, "val"), s, y, np.arange(4), ["a", "b"], split="val")
>>> page = write_html_report(run)
>>> page.name, "<h2 id=\\"gallery\\">" in page.read_text()
('index.html', True)
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.dataset_kind import is_image_dataset
from .predictions import StoredPredictions, load_predictions, predictions_path, save_predictions

__all__ = ["write_html_report", "write_split_report", "error_gallery", "plot_cooccurrence"]

logger = logging.getLogger(__name__)

#: ``loader(run_dir, split) -> (dataset or None, why not)``: see :func:`labelwise.run.load_run_split`.
DatasetLoader = Callable[[Path, str], tuple[Any | None, str]]

_HEADLINE = ("mAP", "CF1", "OF1", "CP", "CR", "OP", "OR", "mA", "instance_F1", "macro_F1", "micro_F1", "macro_AUC",
             "hamming_loss", "FPR")
_MAX_METRIC_ROWS = 24

# No request may leave the page: images are data: URIs, style and the table filter are inline.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1f3b5a;color:#fff;padding:14px 28px}
header h1{margin:0;font-size:21px;font-weight:600}
header p{margin:4px 0 0;color:#c9d6e4;font-size:13px}
nav{background:#fff;border-bottom:1px solid #dde2e8;padding:6px 28px;position:sticky;top:0;z-index:1}
nav a{margin-right:16px;color:#1f5f9a;text-decoration:none;font-size:13px}
main{max-width:1180px;margin:0 auto;padding:8px 28px 40px}
section{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:12px 18px;margin:16px 0}
h2{font-size:17px;margin:4px 0 10px}
p.note{color:#5b6575;font-size:13px;margin:4px 0 8px}
table{border-collapse:collapse;font-size:13px}
th,td{padding:3px 10px;text-align:right;border-bottom:1px solid #eceff3;white-space:nowrap}
th{background:#f0f3f6;font-weight:600}
td.l,th.l{text-align:left}
.scroll{max-height:480px;overflow:auto;border:1px solid #eceff3}
.scroll th{position:sticky;top:0}
.bar{display:inline-block;height:9px;background:#3b75af;vertical-align:middle;margin-right:6px}
.na{color:#9aa3ae}
img.fig{max-width:100%;height:auto;display:block;margin:6px 0}
.grid{display:flex;flex-wrap:wrap;gap:10px}
.card{width:158px;border:1px solid #dde2e8;border-radius:5px;padding:6px;font-size:12px;background:#fbfcfd}
.card img{width:146px;height:146px;object-fit:contain;background:#222;display:block;image-rendering:pixelated}
.card .miss{height:146px;display:flex;align-items:center;justify-content:center;background:#eee;color:#777}
.tag{font-weight:600;margin:4px 0 2px}
h3{font-size:14px;margin:12px 0 6px}
.fp{color:#b3261e}.fn{color:#a05a00}.ok{color:#1b6e2e}
.labels{margin:1px 0;word-break:break-word}
input#classfilter{margin:0 0 6px;padding:3px 6px;font-size:13px;width:220px}
"""

_FILTER_JS = """
document.getElementById('classfilter').addEventListener('input',function(e){
  var q=e.target.value.toLowerCase();
  document.querySelectorAll('#classtable tbody tr').forEach(function(r){
    r.style.display=r.getAttribute('data-name').indexOf(q)>=0?'':'none';});});
"""


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _png_data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _img(data: bytes, alt: str, mime: str = "image/png", cls: str = "fig") -> str:
    return f'<img class="{cls}" alt="{_esc(alt)}" src="{_png_data_uri(data, mime)}">'


# -- figures -------------------------------------------------------------------------------------------
def plot_cooccurrence(targets: Any, class_names: Sequence[str], path: str | os.PathLike, *, max_classes: int = 60,
                      title: str = "") -> Path:
    """Heat map of ``p(column label | row label)`` (the diagonal, always 1, is left blank).

    With more than ``max_classes`` classes, the most frequent ones are shown (in their original order).

    Parameters
    ----------
    targets : array-like of shape (n_samples, n_classes)
        0/1 targets.
    class_names : sequence of str
    path : str or path
        PNG file to write.
    max_classes : int
        Most classes drawn.
    title : str
        Figure title.

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, os
    >>> y = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1]])
    >>> plot_cooccurrence(y, ["a", "b", "c"], os.path.join(tempfile.mkdtemp(), "co.png")).suffix
    '.png'
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    from ..data.stats import conditional_probabilities

    y = np.asarray(targets)
    names = [str(c) for c in class_names]
    if y.ndim != 2 or y.shape[1] != len(names):
        raise ValueError(f"plot_cooccurrence: targets of shape {y.shape} for {len(names)} class names")
    if max_classes < 2:
        raise ValueError(f"plot_cooccurrence: max_classes must be >= 2, got {max_classes}")
    counts = y.sum(axis=0)
    keep = np.arange(len(names))
    if len(names) > max_classes:
        keep = np.sort(np.argsort(-counts, kind="stable")[:max_classes])
    # P[i, j] = p(i | j); the row-conditioned view is its transpose: row r, column c = p(c | r)
    p = conditional_probabilities(y[:, keep]).T.copy()
    np.fill_diagonal(p, np.nan)
    p[counts[keep] == 0, :] = np.nan
    n = len(keep)
    side = min(max(4.0, 0.17 * n + 2.2), 13.0)
    fig = Figure(figsize=(side + 1.0, side), dpi=100)
    ax = fig.add_subplot()
    cmap = colormaps["viridis"].with_extremes(bad="#e4e7eb")
    im = ax.imshow(p, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    fontsize = 8 if n <= 30 else max(4, 8 - (n - 30) // 10)
    labels = [names[i] for i in keep]
    ax.set_xticks(np.arange(n), labels, rotation=90, fontsize=fontsize)
    ax.set_yticks(np.arange(n), labels, fontsize=fontsize)
    ax.set_xlabel("column label", fontsize=9)
    ax.set_ylabel("row label (given)", fontsize=9)
    sub = f" ({n} most frequent of {len(names)} classes)" if n < len(names) else ""
    ax.set_title((title + ": " if title else "") + "p(column | row)" + sub, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    return path


def _figure(path: Path, draw: Any) -> tuple[bytes | None, str]:
    """The PNG at ``path`` (drawn by ``draw(path)`` when missing): (bytes or None, note)."""
    if not path.is_file():
        try:
            if draw(path) is None:
                return None, "nothing to draw"
        except Exception as exc:  # noqa: BLE001 - one figure must not cost the whole page
            logger.warning("run report page: could not draw %s: %s: %s", path.name, type(exc).__name__, exc)
            return None, f"could not be drawn ({type(exc).__name__}: {exc})"
    return path.read_bytes(), ""


# -- error gallery -------------------------------------------------------------------------------------
def error_gallery(scores: np.ndarray, targets: np.ndarray, thresholds: np.ndarray, *, max_items: int = 24
                  ) -> list[dict[str, Any]]:
    """The gallery's errors: highest-scored false positives and lowest-scored false negatives.

    A class is predicted when ``score >= threshold``. An image appears at most once per kind (false
    positive, false negative), for its most extreme error of that kind; half of ``max_items`` go to false positives and half to false negatives (a short list
    leaves its places to the other).

    Parameters
    ----------
    scores, targets : arrays of shape (n_samples, n_classes)
    thresholds : array of shape (n_classes,)
    max_items : int

    Returns
    -------
    list of dict
        ``{"row", "cls", "score", "kind"}`` with ``kind`` ``"fp"`` or ``"fn"``; false positives first
        (highest score first), then false negatives (lowest score first).

    Examples
    --------
    >>> s = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.3]])
    >>> y = np.array([[0, 1], [0, 1], [1, 0]])
    >>> [(e["kind"], e["row"], e["cls"]) for e in error_gallery(s, y, np.array([0.5, 0.5]), max_items=4)]
    [('fp', 0, 0), ('fp', 1, 0), ('fn', 0, 1), ('fn', 2, 0)]
    """
    if max_items < 0:
        raise ValueError(f"error_gallery: max_items must be >= 0, got {max_items}")
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(targets).astype(bool)
    pred = s >= np.asarray(thresholds, dtype=np.float64)[None, :]

    def distinct(mask: np.ndarray, descending: bool) -> list[tuple[int, int]]:
        rows, cols = np.nonzero(mask)
        vals = s[rows, cols]
        order = np.lexsort((cols, rows, -vals if descending else vals))
        seen: set[int] = set()
        out = []
        for k in order:
            r = int(rows[k])
            if r not in seen:
                seen.add(r)
                out.append((r, int(cols[k])))
                if len(out) >= max_items:
                    break
        return out

    fps = distinct(pred & ~y, True)
    fns = distinct(~pred & y, False)
    n_fp = min(len(fps), max(max_items - min(len(fns), max_items // 2), 0))
    n_fn = min(len(fns), max_items - n_fp)
    return ([{"row": r, "cls": c, "score": float(s[r, c]), "kind": "fp"} for r, c in fps[:n_fp]]
            + [{"row": r, "cls": c, "score": float(s[r, c]), "kind": "fn"} for r, c in fns[:n_fn]])


def _thumbnail(x: Any, size: int) -> tuple[bytes, str]:
    """PNG (small images) or JPEG bytes of an image tensor/array, at most ``size`` pixels on a side."""
    from PIL import Image

    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.transpose(a, (1, 2, 0))
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3):
        raise ValueError(f"an image of shape {np.asarray(x).shape}")
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        a = np.clip(a * 255.0 if a.max(initial=0.0) <= 1.0 else a, 0, 255).astype(np.uint8)
    img = Image.fromarray(a)
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    buf = io.BytesIO()
    if max(img.size) <= size:
        img.save(buf, format="PNG", optimize=True)
        return buf.getvalue(), "image/png"
    img.thumbnail((size, size), Image.Resampling.BILINEAR)
    img.save(buf, format="JPEG", quality=82)
    return buf.getvalue(), "image/jpeg"


def _dataset_for_gallery(run_dir: Path, split: str, loader: DatasetLoader | None) -> tuple[Any | None, str]:
    """The evaluated split for the thumbnails: (dataset or None, why not)."""
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        return None, f"{cfg_path} is missing"
    if loader is None:
        return None, (f"no dataset given: pass dataset= or dataset_loader=labelwise.run.load_run_split to "
                      f"re-load the {split} split from {cfg_path} (labelwise report does)")
    return loader(run_dir, split)


def _is_image_dataset(ds: Any) -> bool:
    try:
        return bool(is_image_dataset(ds))
    except Exception:  # noqa: BLE001
        return False


def _gallery_section(preds: StoredPredictions, dataset: Any | None, why: str, *, max_items: int, thumb: int) -> str:
    head = '<section><h2 id="gallery">Error gallery</h2>'
    if dataset is None:
        return head + f'<p class="note">No thumbnails: {_esc(why)}.</p></section>'
    if not _is_image_dataset(dataset):
        return head + ('<p class="note">Does not apply: this dataset holds feature vectors (tabular data), '
                       'not images.</p></section>')
    n = len(dataset)
    if len(preds) and (preds.indices.max() >= n or preds.indices.min() < 0):
        return head + (f'<p class="note">No thumbnails: the stored predictions index {preds.indices.max() + 1} '
                       f'samples but the re-loaded {preds.split} split has {n}.</p></section>')
    ds_targets = getattr(dataset, "targets", None)
    if ds_targets is not None and not np.array_equal(np.asarray(ds_targets)[preds.indices], preds.targets):
        return head + (f'<p class="note">No thumbnails: the re-loaded {preds.split} split does not match the stored '
                       'predictions (its targets differ).</p></section>')
    errors = error_gallery(preds.scores, preds.targets, preds.thresholds, max_items=max_items)
    if not errors:
        return head + '<p class="note">No errors at the decision thresholds: every label is right.</p></section>'
    names = preds.class_names
    paths = getattr(_root(dataset), "paths", None)
    base = np.asarray(dataset.base_indices) if paths is not None and hasattr(dataset, "base_indices") else None
    pred = preds.scores >= preds.thresholds[None, :]
    cards = []
    for e in errors:
        r, c = e["row"], e["cls"]
        idx = int(preds.indices[r])
        try:
            data, mime = _thumbnail(dataset.load_input(idx), thumb)
            pic = _img(data, f"{preds.split} sample {idx}", mime, cls="thumb")
        except Exception as exc:  # noqa: BLE001 - one unreadable image is shown as such
            pic = f'<div class="miss">unreadable: {_esc(type(exc).__name__)}</div>'
        true_l = [(names[j], "ok" if pred[r, j] else "fn") for j in np.flatnonzero(preds.targets[r])]
        pred_l = [(names[j], "ok" if preds.targets[r, j] else "fp") for j in np.flatnonzero(pred[r])]

        def fmt(items: list[tuple[str, str]]) -> str:
            return ", ".join(f'<span class="{k}">{_esc(n)}</span>' for n, k in items) or '<span class="na">none</span>'

        kind = "false positive" if e["kind"] == "fp" else "false negative"
        src = ""
        root_idx = int(base[idx]) if base is not None else idx
        if paths is not None and root_idx < len(paths):
            src = f'<div class="na" title="{_esc(paths[root_idx])}">{_esc(Path(paths[root_idx]).name)}</div>'
        cards.append(
            f'<div class="card">{pic}<div class="tag {e["kind"]}">{kind}: {_esc(names[c])} '
            f'({e["score"]:.3f})</div><div class="labels">true: {fmt(true_l)}</div>'
            f'<div class="labels">predicted: {fmt(pred_l)}</div>'
            f'<div class="na">{_esc(preds.split)} #{idx}</div>{src}</div>'
        )
    n_fp = sum(e["kind"] == "fp" for e in errors)
    note = (f'{n_fp} highest-scored false positives and {len(errors) - n_fp} lowest-scored false negatives '
            f'(one card per image and kind, its most extreme error) on the {_esc(preds.split)} split, at the decision '
            'thresholds of the per-class table. Labels: <span class="ok">right</span>, '
            '<span class="fp">wrongly predicted</span>, <span class="fn">missed</span>.')
    groups = []
    for kind, title in (("fp", "False positives, highest scores first"), ("fn", "False negatives, lowest scores first")):
        group = [card for card, e in zip(cards, errors) if e["kind"] == kind]
        if group:
            groups.append(f'<h3 class="{kind}">{title}</h3><div class="grid">' + "".join(group) + "</div>")
    return head + f'<p class="note">{note}</p>' + "".join(groups) + "</section>"


def _root(ds: Any) -> Any:
    seen = set()
    while hasattr(ds, "parent") and id(ds) not in seen:
        seen.add(id(ds))
        ds = ds.parent
    return ds


# -- tables --------------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _scalars(metrics: dict[str, Any] | None) -> dict[str, float]:
    out = {}
    for k, v in (metrics or {}).items():
        if isinstance(v, bool) or k in ("skipped", "epoch", "split", "checkpoint"):
            continue
        if isinstance(v, int | float):
            out[str(k)] = float(v)
    return out


def _metrics_section(run_dir: Path, preds: StoredPredictions) -> str:
    columns: list[tuple[str, dict[str, float]]] = []
    best = _read_json(run_dir / "checkpoints" / "best.json")
    if best and best.get("metrics"):
        epoch = best.get("best_epoch", best.get("epoch"))
        columns.append((f"validation (best checkpoint, epoch {epoch})", _scalars(best["metrics"])))
    test = _read_json(run_dir / "test_metrics.json")
    if test:
        columns.append(("test (best checkpoint)", _scalars(test)))
    note = ""
    if not columns:
        from ..metrics import multilabel_report

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rep = multilabel_report(preds.scores, preds.targets, threshold=0.5)
        columns.append((f"{preds.split} (recomputed from the stored predictions)", _scalars(rep)))
        note = '<p class="note">No metrics file in the run directory: the multilabel report at threshold 0.5.</p>'
    keys = [k for k in _HEADLINE if any(k in c for _, c in columns)]
    extra = [k for _, c in columns for k in c if k not in keys]
    for k in extra:
        if k not in keys and len(keys) < _MAX_METRIC_ROWS:
            keys.append(k)
    head = "".join(f"<th>{_esc(t)}</th>" for t, _ in columns)
    rows = []
    for k in keys:
        cells = "".join(f"<td>{_fmt(c.get(k))}</td>" for _, c in columns)
        rows.append(f'<tr><td class="l">{_esc(k)}</td>{cells}</tr>')
    return (f'<section><h2 id="metrics">Metrics</h2>{note}<table><thead><tr><th class="l">metric</th>{head}</tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table></section>')


def _fmt(v: float | None, digits: int = 4) -> str:
    if v is None or not math.isfinite(v):
        return '<span class="na">&ndash;</span>'
    return f"{v:.{digits}f}"


def _class_section(preds: StoredPredictions) -> str:
    from .report import _average_precision

    s, y = preds.scores, preds.targets.astype(bool)
    ap = _average_precision(s, y.astype(np.uint8))
    pos = y.sum(axis=0)
    pred = s >= preds.thresholds[None, :]
    tp = (pred & y).sum(axis=0).astype(np.float64)
    npred = pred.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(npred > 0, tp / np.maximum(npred, 1), np.nan)
        recall = np.where(pos > 0, tp / np.maximum(pos, 1), np.nan)
        f1 = np.where(pos + npred > 0, 2 * tp / np.maximum(pos + npred, 1), np.nan)
    order = np.argsort(np.where(np.isnan(ap), np.inf, -ap), kind="stable")
    rows = []
    for rank, c in enumerate(order, 1):
        name = preds.class_names[c]
        bar = f'<span class="bar" style="width:{max(ap[c], 0) * 90:.0f}px"></span>' if not np.isnan(ap[c]) else ""
        ap_cell = f"{bar}{ap[c]:.4f}" if not np.isnan(ap[c]) else '<span class="na">no positives</span>'
        rows.append(
            f'<tr data-name="{_esc(name.lower())}"><td>{rank}</td><td class="l">{_esc(name)}</td><td>{int(pos[c])}</td>'
            f'<td class="l">{ap_cell}</td><td>{preds.thresholds[c]:.3f}</td><td>{_fmt(precision[c], 3)}</td>'
            f'<td>{_fmt(recall[c], 3)}</td><td>{_fmt(f1[c], 3)}</td></tr>'
        )
    valid = ~np.isnan(ap)
    mean_ap = f"{np.mean(ap[valid]):.4f}" if valid.any() else "n/a"
    if preds.tuned:
        how = ("per-class thresholds tuned on the validation split (maximum F1 of each class, "
               "<code>trainer.tune_thresholds: true</code>)")
    else:
        uniq = np.unique(preds.thresholds)
        how = (f"the global threshold {uniq[0]:g} for every class (<code>trainer.threshold</code>; set "
               "<code>trainer.tune_thresholds: true</code> to tune one per class)" if len(uniq) == 1
               else "the thresholds stored with the predictions")
    return (
        '<section><h2 id="classes">Per-class results</h2>'
        f'<p class="note">{len(preds.class_names)} classes sorted by average precision on the {_esc(preds.split)} split '
        f'({len(preds)} samples, mAP {mean_ap}); positives are counted in that split. Decision thresholds: {how}; '
        'precision, recall and F1 are measured at them.</p>'
        '<input id="classfilter" type="search" placeholder="filter classes" aria-label="filter classes">'
        '<div class="scroll"><table id="classtable"><thead><tr><th>#</th><th class="l">class</th><th>positives</th>'
        '<th class="l">AP</th><th>threshold</th><th>precision</th><th>recall</th><th>F1</th></tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table></div></section>'
    )


def _figure_section(anchor: str, title: str, data: bytes | None, note: str, alt: str, caption: str = "") -> str:
    body = _img(data, alt) if data is not None else f'<p class="note">Not available: {_esc(note)}.</p>'
    cap = f'<p class="note">{caption}</p>' if caption and data is not None else ""
    return f'<section><h2 id="{anchor}">{_esc(title)}</h2>{cap}{body}</section>'


def _header(run_dir: Path, preds: StoredPredictions) -> str:
    cfg: dict[str, Any] = {}
    try:
        import yaml

        cfg = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    except Exception:  # noqa: BLE001 - a missing or bad config.yaml only costs the subtitle
        cfg = {}
    data, model, loss, trainer = (cfg.get(k) or {} for k in ("data", "model", "loss", "trainer"))
    name = cfg.get("name") or run_dir.resolve().name
    bits = []
    if data.get("name"):
        bits.append(f"data {data['name']}")
    if model.get("name"):
        bits.append(f"model {model['name']}" + (f" ({model['backbone']})" if model.get("backbone") else ""))
    if loss.get("name"):
        bits.append(f"loss {loss['name']}")
    if trainer.get("max_epochs") is not None:
        bits.append(f"{trainer['max_epochs']} epochs")
    bits.append(f"evaluated split: {preds.split} ({len(preds)} samples, {len(preds.class_names)} classes)")
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<header><h1>labelwise run report: {_esc(name)}</h1><p>{_esc(' · '.join(bits))}</p>"
            f"<p>{_esc(str(run_dir))} · generated {stamp}</p></header>")


# -- page ----------------------------------------------------------------------------------------------
def _pick_predictions(run_dir: Path, split: str | None) -> Path:
    if split is not None:
        if split not in ("val", "test"):
            raise ValueError(f"split must be 'val' or 'test', got {split!r}")
        path = predictions_path(run_dir, split)
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: the run stored no {split} predictions")
        return path
    for s in ("test", "val"):
        if predictions_path(run_dir, s).is_file():
            return predictions_path(run_dir, s)
    raise FileNotFoundError(
        f"{run_dir / 'report'} holds no predictions_test.npz or predictions_val.npz: not a finished labelwise run "
        "with trainer.report enabled (runs written before the HTML report existed have none)"
    )


def write_html_report(
    run_dir: str | os.PathLike,
    *,
    split: str | None = None,
    dataset: Any | None = None,
    dataset_loader: DatasetLoader | None = None,
    output: str | os.PathLike | None = None,
    max_gallery: int = 24,
    thumb_size: int = 128,
    max_heatmap_classes: int = 60,
    max_pr_classes: int = 20,
) -> Path:
    """Write the self-contained report page of a run (default ``<run_dir>/report/index.html``).

    Parameters
    ----------
    run_dir : str or path
        The run directory.
    split : {"test", "val"}, optional
        Which stored predictions to show (default: test when stored, else val).
    dataset : MultiLabelDataset, optional
        The evaluated split, for the gallery's thumbnails.
    dataset_loader : callable, optional
        ``loader(run_dir, split) -> (dataset or None, why not)``, used when ``dataset`` is None:
        :func:`labelwise.run.load_run_split` re-loads the split from ``config.yaml`` (``labelwise report``
        passes it). Injected rather than imported: this module sits below the run layer
        (docs/architecture.md, "Layers").
    output : str or path, optional
        The page to write.
    max_gallery : int
        Most error thumbnails.
    thumb_size : int
        Largest thumbnail side in pixels (smaller images are embedded as they are).
    max_heatmap_classes : int
        Most classes in the co-occurrence heat map (the most frequent).
    max_pr_classes : int
        Most per-class panels when the precision-recall figure has to be drawn.

    Returns
    -------
    Path
        The page written.

    Raises
    ------
    FileNotFoundError
        The run directory holds no stored predictions (``report/predictions_<split>.npz``).
    ValueError
        A bad ``split``, ``max_gallery`` or ``thumb_size``, or an unreadable predictions file.

    Examples
    --------
    >>> write_html_report("runs/qs")                                    # doctest: +SKIP
    PosixPath('runs/qs/report/index.html')
    """
    from .report import plot_learning_curves, plot_pr_curves

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    if max_gallery < 0 or thumb_size < 16:
        raise ValueError(f"max_gallery must be >= 0 and thumb_size >= 16, got {max_gallery} and {thumb_size}")
    preds = load_predictions(_pick_predictions(run_dir, split))
    report_dir = run_dir / "report"
    why = ""
    if dataset is None and max_gallery > 0:
        dataset, why = _dataset_for_gallery(run_dir, preds.split, dataset_loader)
    elif max_gallery == 0:
        dataset, why = None, "max_gallery is 0"
    if dataset is not None and list(getattr(dataset, "class_names", preds.class_names)) != preds.class_names:
        dataset, why = None, f"the {preds.split} split's classes differ from the stored predictions'"

    pr_png, pr_note = _figure(report_dir / f"pr_curves_{preds.split}.png",
                              lambda p: plot_pr_curves(preds.scores, preds.targets, preds.class_names, p,
                                                       max_classes=max_pr_classes, title=preds.split))
    metrics_csv = run_dir / "metrics.csv"
    if metrics_csv.is_file():
        lc_png, lc_note = _figure(report_dir / "learning_curves.png", lambda p: plot_learning_curves(metrics_csv, p))
    else:
        lc_png, lc_note = None, f"{metrics_csv} is missing"
    co_png, co_note = _figure(report_dir / f"cooccurrence_{preds.split}.png",
                              lambda p: plot_cooccurrence(preds.targets, preds.class_names, p,
                                                          max_classes=max_heatmap_classes, title=preds.split))
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("metrics", "Metrics"), ("classes", "Per-class"), ("pr", "Precision-recall"), ("curves", "Learning curves"),
        ("cooccurrence", "Co-occurrence"), ("gallery", "Error gallery")))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>labelwise report: {_esc(run_dir.resolve().name)}</title><style>{_CSS}</style></head><body>",
        _header(run_dir, preds),
        f"<nav>{nav}</nav><main>",
        _metrics_section(run_dir, preds),
        _class_section(preds),
        _figure_section("pr", "Precision-recall curves", pr_png, pr_note, "precision-recall curves",
                        "Micro-average, then per class (dotted: the positive rate, a random ranking's precision)."),
        _figure_section("curves", "Learning curves", lc_png, lc_note, "learning curves", "From metrics.csv."),
        _figure_section("cooccurrence", "Label co-occurrence", co_png, co_note, "label co-occurrence heat map",
                        f"Fraction of the {_esc(preds.split)} samples holding the row label that also hold the "
                        "column label."),
        _gallery_section(preds, dataset, why, max_items=max_gallery, thumb=thumb_size),
        f"</main><script>{_FILTER_JS}</script></body></html>",
    ]
    out = Path(output) if output is not None else report_dir / "index.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("\n".join(parts) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    logger.info("run report page written to %s (%.0f KiB)", out, out.stat().st_size / 1024)
    return out


def write_split_report(
    run_dir: str | os.PathLike,
    predictions: Any,
    class_names: Sequence[str] | None,
    *,
    split: str,
    thresholds: float | Sequence[float] | None,
    global_threshold: float = 0.5,
    dataset: Any | None = None,
) -> Path | None:
    """At the end of training: store the predictions of ``split`` and (re)write ``report/index.html``.

    ``predictions`` is the trainer's :class:`~labelwise.engine.trainer.Predictions` (``scores``, ``targets``,
    ``indices``); ``thresholds`` the tuned per-class thresholds or None (then ``global_threshold``). A
    failure is reported by a ``RuntimeWarning`` and returns None: a finished run never fails on its page.

    Examples
    --------
    >>> import tempfile
    >>> from labelwise.engine import Predictions
    >>> p = Predictions(np.array([[0.9, 0.2]], "float32"), np.array([[1, 0]], "uint8"), np.arange(1))
    >>> write_split_report(tempfile.mkdtemp(), p, ["a", "b"], split="val", thresholds=None).name
    'index.html'
    """
    try:
        scores, targets = predictions[0], predictions[1]
        indices = getattr(predictions, "indices", None)
        if indices is None:
            indices = np.arange(len(scores))
        names = list(class_names) if class_names else [str(i) for i in range(np.asarray(scores).shape[1])]
        tuned = thresholds is not None
        save_predictions(predictions_path(run_dir, split), scores, targets, indices, names, split=split,
                         thresholds=thresholds if tuned else global_threshold, tuned=tuned)
        return write_html_report(run_dir, split=split, dataset=dataset)
    except Exception as exc:  # noqa: BLE001 - the report must never fail a finished run
        warnings.warn(f"run report page: could not be written: {type(exc).__name__}: {exc}", RuntimeWarning,
                      stacklevel=2)
        return None
