"""MULAN / MEKA multi-label ARFF files (dense and sparse) with their label XML.

A MULAN dataset is an ARFF file (the features *and* the labels are attributes) plus an XML file naming the
label attributes::

    <labels xmlns="http://mulan.sourceforge.net/labels">
      <label name="Class1"></label>
      ...
    </labels>

MEKA instead puts the number of labels in the relation name (``@relation 'name: -C 6'``; a positive
``-C n`` means the first ``n`` attributes are labels, a negative one the last ``n``).

Registered as ``"mulan"``: ``load_dataset("mulan", root=<directory or .arff file>, split=...)``.
:func:`load_mulan` also knows the directory layout of the shared benchmark collection (``<name>/`` holding
``<name>-train.arff``, ``<name>-test.arff`` and/or ``<name>.arff`` plus ``<name>.xml``).

The ARFF files are read by the general vectorised parser of :mod:`labelwise.data.formats.arff`
(:func:`read_arff`, :class:`ArffFile` and :class:`ArffAttribute` are re-exported here); this module splits
the parsed attributes into features and labels and builds the datasets.

Encoding rules (documented in ``docs/datasets.md``)

* ``numeric`` / ``real`` / ``integer`` attributes are read as numbers.
* A nominal attribute whose declared values all parse as numbers (``{0,1}``) is read as those numbers.
* Other nominal feature attributes (``{YES,NO}``, genbase's protein id) are encoded by ``nominal=``:
  ``"ordinal"`` (default, as :func:`sklearn.datasets.fetch_openml` does: the index of the value in the
  declaration), ``"onehot"`` (one 0/1 column per declared value, named ``"attr=value"``) or ``"drop"``.
* In sparse rows an omitted attribute takes its zero value: 0 for numeric attributes, the *first declared*
  value for nominal ones (Weka's semantics).
* A missing value ``?`` in a feature raises an error naming the file, line and attribute
  (``missing="zero"`` replaces missing features by 0 instead). A missing label is always an error.
* Label values must be 0 or 1 (numeric or nominal ``{0,1}``).
* Names may be quoted with ``'`` or ``"``; backslash escapes (``\\'``, ``\\"``, ``\\\\``) are undone in the
  ARFF and in the XML alike, so ``valentine\\'s_day`` matches in both files.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from ..base import ArrayDataset, MultiLabelDataset
from ..registry import register_dataset
from .arff import ArffAttribute, ArffFile, read_arff, unescape

__all__ = [
    "ArffAttribute",
    "ArffFile",
    "MulanDataset",
    "SparseMulanDataset",
    "read_arff",
    "read_mulan_xml",
    "load_mulan",
    "mulan_dataset",
    "default_mulan_root",
]

#: Densify sparse features when the dense float32 matrix is at most this many bytes (``sparse="auto"``).
DENSE_LIMIT_BYTES = 256 * 1024**2


def read_mulan_xml(path: str | os.PathLike) -> list[str]:
    """Label names of a MULAN label XML file, in document order (nested hierarchical labels included).

    Backslash escapes (``\\'``) are undone as in :func:`read_arff`.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "l.xml")
    >>> _ = open(p, "w").write('<labels xmlns="http://mulan.sourceforge.net/labels">'
    ...                         '<label name="a"></label><label name="it\\\\\\'s"></label></labels>')
    >>> read_mulan_xml(p)
    ['a', "it's"]
    """
    path = os.fspath(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise FileNotFoundError(f"MULAN label XML not found: {path}") from None
    except ET.ParseError as exc:
        raise ValueError(f"{path}: invalid XML ({exc})") from None
    names = []
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == "label":
            name = el.get("name")
            if name is None:
                raise ValueError(f"{path}: a <label> element has no name attribute")
            names.append(unescape(name))
    if not names:
        raise ValueError(f"{path}: no <label> elements")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"{path}: label {dup!r} is listed twice")
    return names


_MEKA_C = re.compile(r"-C\s+(-?\d+)")


# --------------------------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------------------------
class MulanDataset(ArrayDataset):
    """A MULAN dataset with dense float32 features (an :class:`~labelwise.data.ArrayDataset`).

    Extra attributes: ``features`` (the float32 numpy matrix, shared with ``inputs``), ``feature_names``,
    ``label_lines``/``paths`` (source files) and ``relation``.
    """

    def __init__(self, features: np.ndarray, targets: Any, class_names: Sequence[str], *,
                 feature_names: Sequence[str], paths: Sequence[str], relation: str = "", **kwargs: Any):
        super().__init__(features, targets, class_names, **kwargs)
        self.features = self.inputs.numpy()
        self.feature_names = list(feature_names)
        self.paths = list(paths)
        self.relation = relation

    @property
    def num_features(self) -> int:
        return int(self.features.shape[1])


class SparseMulanDataset(MultiLabelDataset):
    """A MULAN dataset whose features stay a ``scipy.sparse.csr_matrix`` (float32); rows are densified on
    access, so ``ds[i]["input"]`` is a float32 ``[D]`` tensor as for :class:`MulanDataset`."""

    def __init__(self, features: sp.csr_matrix, targets: Any, class_names: Sequence[str], *,
                 feature_names: Sequence[str], paths: Sequence[str], relation: str = "", **kwargs: Any):
        super().__init__(targets, class_names, **kwargs)
        features = sp.csr_matrix(features, dtype=np.float32)
        if features.shape[0] != len(self):
            raise ValueError(f"{self.name}: {features.shape[0]} inputs but {len(self)} target rows")
        if not np.isfinite(features.data).all():
            raise ValueError(f"{self.name}: features contain a non-finite value")
        self.features = features
        self.feature_names = list(feature_names)
        self.paths = list(paths)
        self.relation = relation
        self.is_image = False

    @property
    def num_features(self) -> int:
        return int(self.features.shape[1])

    def load_input(self, index: int) -> torch.Tensor:
        row = self.features[index]
        out = np.zeros(self.features.shape[1], dtype=np.float32)
        out[row.indices] = row.data
        return torch.from_numpy(out)


def _label_columns(arff: ArffFile, labels: list[str] | None, xml_path: str | None, label_location: str,
                   n_labels: int | None) -> list[int]:
    names = arff.attribute_names
    n_attr = len(names)
    if labels is not None:
        pos = {nm: j for j, nm in enumerate(names)}
        missing = [lb for lb in labels if lb not in pos]
        if missing:
            raise ValueError(f"label {missing[0]!r} listed in {xml_path} is not an attribute of {arff.path}"
                             + (f" ({len(missing)} labels missing)" if len(missing) > 1 else ""))
        cols = [pos[lb] for lb in labels]
        k = len(cols)
        if label_location == "end" and sorted(cols) != list(range(n_attr - k, n_attr)):
            raise ValueError(f"{arff.path}: label_location='end' but the labels of {xml_path} are not the last "
                             f"{k} attributes")
        if label_location == "start" and sorted(cols) != list(range(k)):
            raise ValueError(f"{arff.path}: label_location='start' but the labels of {xml_path} are not the "
                             f"first {k} attributes")
        return cols
    if n_labels is None:
        m = _MEKA_C.search(arff.relation)
        if m is None:
            raise ValueError(f"{arff.path}: cannot tell which attributes are labels: give xml=, or n_labels= "
                             "(with label_location='end' or 'start'), or a MEKA '-C n' in @relation")
        c = int(m.group(1))
        if label_location == "auto":
            label_location = "start" if c > 0 else "end"
        n_labels = abs(c)
    if not 0 < n_labels < n_attr:
        raise ValueError(f"{arff.path}: n_labels={n_labels} but the file has {n_attr} attributes")
    if label_location == "auto":
        label_location = "end"
    return list(range(n_labels)) if label_location == "start" else list(range(n_attr - n_labels, n_attr))


def _features_and_targets(arff: ArffFile, label_cols: list[int], *, nominal: str, missing: str):
    """Split an ArffFile into (features float32 dense or csr, feature names, targets uint8)."""
    data = arff.data
    attrs = arff.attributes
    label_set = set(label_cols)
    feat_cols = [j for j in range(len(attrs)) if j not in label_set]
    if arff.sparse:
        csc = data.tocsc()
        y = csc[:, label_cols].toarray()
        x = csc[:, feat_cols].tocsr()
    else:
        y = data[:, label_cols]
        x = data[:, feat_cols]
    # labels: 0/1 only, never missing
    for a in (attrs[c] for c in label_cols):
        if a.kind == "nominal" and a.numeric_values is None:
            raise ValueError(f"{arff.path}, line {a.line}: label attribute {a.name!r} has nominal values "
                             f"{a.values}; labels must be 0/1")
    bad = ~((y == 0) | (y == 1))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        what = "missing ('?')" if np.isnan(y[r, c]) else f"{y[r, c]:g}"
        raise ValueError(f"{arff.path}, line {arff.line_numbers[r]}: label {attrs[label_cols[c]].name!r} is "
                         f"{what}; multi-label targets must be 0 or 1")
    targets = y.astype(np.uint8)
    # missing features
    xd = x.data if sp.issparse(x) else x
    nan = np.isnan(xd)
    if nan.any():
        if missing == "raise":
            if sp.issparse(x):
                coo = x.tocoo()
                k = int(np.flatnonzero(np.isnan(coo.data))[0])
                r, c = int(coo.row[k]), int(coo.col[k])
            else:
                r, c = (int(v) for v in np.argwhere(nan)[0])
            raise ValueError(f"{arff.path}, line {arff.line_numbers[r]}: feature {attrs[feat_cols[c]].name!r} "
                             "is missing ('?') or NaN; pass missing='zero' to read missing features as 0")
        xd[nan] = 0.0
        if sp.issparse(x):
            x.eliminate_zeros()
    # nominal (non-numeric) features
    names = [attrs[j].name for j in feat_cols]
    nominal_pos = [i for i, j in enumerate(feat_cols)
                   if attrs[j].kind == "nominal" and attrs[j].numeric_values is None]
    if nominal_pos and nominal != "ordinal":
        blocks, new_names = [], []
        keep_from = 0
        x = x.tocsc() if sp.issparse(x) else x
        for i in nominal_pos:
            if i > keep_from:
                blocks.append(x[:, keep_from:i])
                new_names += names[keep_from:i]
            keep_from = i + 1
            if nominal == "onehot":
                vals = attrs[feat_cols[i]].values or []
                col = x[:, i].toarray().ravel() if sp.issparse(x) else x[:, i]
                codes = col.astype(np.int64)
                oh = sp.csr_matrix((np.ones(len(codes)), (np.arange(len(codes)), codes)),
                                   shape=(len(codes), len(vals)))
                blocks.append(oh if sp.issparse(x) else oh.toarray())
                new_names += [f"{names[i]}={v}" for v in vals]
        if keep_from < len(names):
            blocks.append(x[:, keep_from:])
            new_names += names[keep_from:]
        if sp.issparse(x):
            x = sp.hstack(blocks, format="csr") if blocks else sp.csr_matrix((x.shape[0], 0))
        else:
            x = np.hstack(blocks) if blocks else np.zeros((x.shape[0], 0))
        names = new_names
    return x, names, targets


def _build(arffs: list[ArffFile], labels: list[str] | None, xml_path: str | None, *, label_location: str,
           n_labels: int | None, nominal: str, missing: str, sparse: str | bool, name: str, **kwargs: Any):
    if label_location not in ("auto", "end", "start"):
        raise ValueError(f"label_location must be 'auto', 'end' or 'start', got {label_location!r}")
    if nominal not in ("ordinal", "onehot", "drop"):
        raise ValueError(f"nominal must be 'ordinal', 'onehot' or 'drop', got {nominal!r}")
    if missing not in ("raise", "zero"):
        raise ValueError(f"missing must be 'raise' or 'zero', got {missing!r}")
    if sparse not in ("auto", True, False):
        raise ValueError(f"sparse must be 'auto', True or False, got {sparse!r}")
    first = arffs[0]
    for other in arffs[1:]:
        a = [(x.name, x.kind, x.values) for x in first.attributes]
        b = [(x.name, x.kind, x.values) for x in other.attributes]
        if a != b:
            raise ValueError(f"{first.path} and {other.path} declare different attributes; cannot join them")
    parts = []
    for arff in arffs:
        cols = _label_columns(arff, labels, xml_path, label_location, n_labels)
        parts.append(_features_and_targets(arff, cols, nominal=nominal, missing=missing))
    first_cols = _label_columns(first, labels, xml_path, label_location, n_labels)
    class_names = [first.attributes[j].name for j in first_cols]
    xs = [p[0] for p in parts]
    feature_names = parts[0][1]
    targets = np.concatenate([p[2] for p in parts])
    if any(sp.issparse(x) for x in xs):
        x = sp.vstack([sp.csr_matrix(v) for v in xs], format="csr")
    else:
        x = np.concatenate(xs) if len(xs) > 1 else xs[0]
    n, d = x.shape
    keep_sparse = sp.issparse(x) and (sparse is True or (sparse == "auto" and n * d * 4 > DENSE_LIMIT_BYTES))
    paths = [a.path for a in arffs] + ([xml_path] if xml_path else [])
    common = dict(feature_names=feature_names, paths=paths, relation=first.relation, name=name, **kwargs)
    if keep_sparse:
        return SparseMulanDataset(x, targets, class_names, **common)
    dense = x.toarray() if sp.issparse(x) else x
    return MulanDataset(np.ascontiguousarray(dense, dtype=np.float32), targets, class_names, **common)


def _order_labels(labels: list[str] | None, arff: ArffFile, label_order: str) -> list[str] | None:
    if labels is None or label_order == "xml":
        return labels
    pos = {nm: j for j, nm in enumerate(arff.attribute_names)}
    if any(lb not in pos for lb in labels):
        return labels  # the error naming both files is raised later
    return sorted(labels, key=pos.__getitem__)


# --------------------------------------------------------------------------------------------------------
# file discovery
# --------------------------------------------------------------------------------------------------------
def default_mulan_root() -> Path:
    """Directory holding the MULAN collection: ``$LABELWISE_MULAN_ROOT``, else
    ``$LABELWISE_SHARED_DATASETS/mulan``, else ``<repository>/../shared/datasets/mulan``."""
    if os.environ.get("LABELWISE_MULAN_ROOT"):
        return Path(os.environ["LABELWISE_MULAN_ROOT"])
    if os.environ.get("LABELWISE_SHARED_DATASETS"):
        return Path(os.environ["LABELWISE_SHARED_DATASETS"]) / "mulan"
    return Path(__file__).resolve().parents[4].parent / "shared" / "datasets" / "mulan"


_SPLIT_SUFFIXES = {"train": ("-train", "-train-sparse", "_train"), "test": ("-test", "-test-sparse", "_test")}


def _split_files(directory: Path, split: str) -> list[Path]:
    arffs = sorted(p for p in directory.iterdir() if p.suffix.lower() == ".arff")
    if not arffs:
        raise FileNotFoundError(f"{directory}: no .arff file")

    def kind(p: Path) -> str:
        stem = p.stem.lower()
        for s, sufs in _SPLIT_SUFFIXES.items():
            if any(stem.endswith(x) for x in sufs):
                return s
        return "all"

    by = {s: [p for p in arffs if kind(p) == s] for s in ("train", "test", "all")}

    def pick(cands: list[Path]) -> Path:
        # the same data may exist dense and sparse (Corel5k-test.arff / Corel5k-test-sparse.arff): prefer sparse
        return sorted(cands, key=lambda p: ("sparse" not in p.stem.lower(), p.name))[0]

    if split in ("train", "test"):
        if not by[split]:
            raise FileNotFoundError(f"{directory}: no predefined {split!r} file (found "
                                    f"{', '.join(p.name for p in arffs)}); use split='all' and "
                                    "labelwise.data.splits to make folds")
        return [pick(by[split])]
    if split == "all":
        if by["all"]:
            return [pick(by["all"])]
        if by["train"] and by["test"]:
            return [pick(by["train"]), pick(by["test"])]
        raise FileNotFoundError(f"{directory}: cannot assemble split 'all' from {[p.name for p in arffs]}")
    raise ValueError(f"unknown MULAN split {split!r}; use 'train', 'test' or 'all'")


def _find_xml(directory: Path, arff: Path) -> Path | None:
    xmls = [p for p in directory.iterdir() if p.suffix.lower() == ".xml"]
    if not xmls:
        return None
    if len(xmls) == 1:
        return xmls[0]
    stem = arff.stem.lower()
    matching = [p for p in xmls if stem.startswith(p.stem.lower())]
    if not matching:
        raise ValueError(f"{directory}: several XML files ({', '.join(p.name for p in xmls)}) and none matches "
                         f"{arff.name}; pass xml=")
    return max(matching, key=lambda p: len(p.stem))


@register_dataset("mulan")
def mulan_dataset(root: str | os.PathLike | None = None, split: str = "train", *, xml: str | None = None,
                  label_location: str = "auto", n_labels: int | None = None, label_order: str = "arff",
                  nominal: str = "ordinal", missing: str = "raise", sparse: str | bool = "auto",
                  **kwargs: Any) -> MultiLabelDataset:
    """Load a MULAN/MEKA ARFF dataset (registered as ``"mulan"``).

    Parameters
    ----------
    root : str or path-like
        An ``.arff`` file (read as is; ``split`` is then ignored) or a directory holding
        ``<name>-train.arff`` / ``<name>-test.arff`` / ``<name>.arff`` and the label XML.
    split : {"train", "test", "all"}
        ``"all"`` reads the union file, or train + test concatenated when there is no union file.
    xml : str, optional
        The MULAN label XML. Default: the ``.xml`` of the directory (when there are several, the one whose
        name prefixes the ARFF's). Without an XML, ``n_labels`` or a MEKA ``-C n`` relation is needed.
    label_location : {"auto", "end", "start"}
        Where the labels are. ``"auto"``: by name from the XML, else from MEKA's ``-C n``, else ``"end"``.
        With an XML, ``"end"``/``"start"`` are checked against it.
    n_labels : int, optional
        Number of label attributes when there is no XML.
    label_order : {"arff", "xml"}
        Class order: the attribute order in the ARFF (default; what MEKA and scikit-multilearn use) or
        the order of the XML.
    nominal : {"ordinal", "onehot", "drop"}
        Encoding of non-numeric nominal features (see module docstring).
    missing : {"raise", "zero"}
        What to do with a missing (``?``) feature.
    sparse : {"auto", True, False}
        Keep the features of a sparse ARFF as a ``scipy.sparse`` matrix (:class:`SparseMulanDataset`).
        ``"auto"`` keeps them sparse when the dense float32 matrix would exceed 256 MB (the rcv1 and
        yahoo sets), else densifies (:class:`MulanDataset`).
    **kwargs
        ``transform``, ``name``, ``known_mask`` for :class:`~labelwise.data.MultiLabelDataset`.

    Examples
    --------
    >>> from labelwise.data import load_dataset
    >>> ds = load_dataset("mulan", root="/work/shared/datasets/mulan/yeast", split="train")  # doctest: +SKIP
    >>> ds.targets.shape  # doctest: +SKIP
    (1500, 14)
    """
    if root is None:
        raise ValueError("mulan: root= must name an .arff file or a directory")
    root_p = Path(root)
    if root_p.is_file():
        files = [root_p]
        directory = root_p.parent
    elif root_p.is_dir():
        directory = root_p
        files = _split_files(directory, split)
    else:
        raise FileNotFoundError(f"mulan: {root_p} does not exist")
    if xml is None:
        xml_p = _find_xml(directory, files[0])
    else:
        xml_p = Path(xml)
    arffs = [read_arff(f) for f in files]
    labels = read_mulan_xml(xml_p) if xml_p is not None else None
    if label_order not in ("arff", "xml"):
        raise ValueError(f"label_order must be 'arff' or 'xml', got {label_order!r}")
    labels = _order_labels(labels, arffs[0], label_order)
    name = kwargs.pop("name", None) or f"mulan:{files[0].stem if len(files) == 1 else directory.name}"
    if "known_mask" in kwargs and kwargs["known_mask"] is None:
        kwargs.pop("known_mask")
    return _build(arffs, labels, os.fspath(xml_p) if xml_p else None, label_location=label_location,
                  n_labels=n_labels, nominal=nominal, missing=missing, sparse=sparse, name=name, **kwargs)


def load_mulan(name_or_path: str | os.PathLike, split: str = "train", *, root: str | os.PathLike | None = None,
               **options: Any) -> MultiLabelDataset:
    """Load a MULAN benchmark by name (``"yeast"``, ``"rcv1subset1"``, ...) or by path.

    Parameters
    ----------
    name_or_path : str or path-like
        A directory name of the collection (case-insensitive), or a directory / ``.arff`` path.
    split : {"train", "test", "all"}
        ``"train"``/``"test"`` need the predefined split files; ``"all"`` reads the union (or train + test
        joined). Datasets without a predefined split (cal500, rcv1subset*, yahoo-*, langlog) accept only
        ``"all"``: make folds with :func:`labelwise.data.splits.iterative_stratified_kfold`.
    root : str or path-like, optional
        The collection directory (default :func:`default_mulan_root`).
    **options
        As for :func:`mulan_dataset`.

    Examples
    --------
    >>> from labelwise.data.formats.mulan import load_mulan
    >>> ds = load_mulan("emotions", split="test")  # doctest: +SKIP
    >>> len(ds), ds.num_classes  # doctest: +SKIP
    (202, 6)
    """
    p = Path(name_or_path)
    if p.exists():
        return mulan_dataset(root=p, split=split, **options)
    base = Path(root) if root is not None else default_mulan_root()
    if not base.is_dir():
        raise FileNotFoundError(f"MULAN collection directory {base} not found (set LABELWISE_MULAN_ROOT or "
                                "pass root=)")
    key = str(name_or_path).lower()
    dirs = {d.name.lower(): d for d in base.iterdir() if d.is_dir()}
    target = dirs.get(key)
    if target is None:  # e.g. "Arts1" for yahoo-Arts1
        target = next((d for k, d in dirs.items() if k.split("-")[-1] == key), None)
    if target is None:
        import difflib

        close = difflib.get_close_matches(key, dirs, n=3)
        raise KeyError(f"unknown MULAN dataset {name_or_path!r} in {base}"
                       + (f"; did you mean {', '.join(close)}?" if close else f" (have: {', '.join(sorted(dirs))})"))
    options.setdefault("name", target.name if split == "all" else f"{target.name}-{split}")
    return mulan_dataset(root=target, split=split, **options)
