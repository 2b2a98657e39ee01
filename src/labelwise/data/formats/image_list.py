"""Custom image lists: a CSV or JSON file naming image paths and their labels.

CSV (registered as ``"csv"``), either of two forms::

    path,labels                       path,cat,dog,car           (one 0/1 column per class)
    img/001.jpg,cat dog               img/001.jpg,1,1,0
    img/002.jpg,                      img/002.jpg,0,0,0
    img/003.jpg,car                   img/003.jpg,0,0,1

JSON (registered as ``"json"``): a list of ``{"path": ..., "labels": [...]}`` objects, or an object
``{"classes": [...], "images": [{"path": ..., "labels": [...]}, ...]}`` that also fixes the class list.

Common options: ``root`` is the list file, or a directory holding ``<split>.csv`` / ``<split>.json``;
``image_root`` is the folder relative image paths start from (default: the list file's folder);
``class_names`` is a list, or a text file with one name per line; when absent, classes are inferred and
sorted by name. A label that is not in a given class list is an error naming the file and line (CSV) or
item (JSON). An empty label field means an image without positive labels.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..base import ImageListDataset, check_class_names
from ..registry import register_dataset

__all__ = ["PATH_COLUMNS", "find_path_column", "check_label_separator", "load_image_csv", "load_image_json",
           "csv_dataset", "json_dataset"]

#: Header names recognised (case-insensitively, in this order) as the image path column of a CSV list.
PATH_COLUMNS = ("path", "image", "filename", "file", "filepath", "image_path")

#: Characters that separate label names in the wild; a label holding one of them (other than the configured
#: separator) is most likely several labels read as one.
LIKELY_SEPARATORS = (";", "|", ",", " ", "\t")


def find_path_column(header: Sequence[str], path_column: str | None = None, *, source: str = "CSV",
                     option: str = "data.options.path_column") -> str:
    """The image path column of a CSV header: ``path_column`` if given, else the first of :data:`PATH_COLUMNS`.

    Shared by the CSV dataset loader and ``labelwise predict``, so both accept the same files.

    Parameters
    ----------
    header : sequence of str
        The column names.
    path_column : str, optional
        The column to use (must be in ``header``).
    source : str
        The file, named in the error.
    option : str
        The setting named in the error (the dataset option, or ``--path-column`` of ``labelwise predict``).

    Raises
    ------
    ValueError
        No such column; the message names the file, line 1 and the columns.

    Examples
    --------
    >>> find_path_column(["Image", "labels"]), find_path_column(["id", "file"], "file")
    ('Image', 'file')
    >>> find_path_column(["id", "labels"], source="tags.csv")
    Traceback (most recent call last):
    ...
    ValueError: tags.csv, line 1: no image path column; name it one of path, image, filename, file, filepath, image_path or set data.options.path_column (columns: id, labels)
    """
    if path_column is not None:
        if path_column not in header:
            raise ValueError(f"{source}, line 1: no {path_column!r} column (columns: {', '.join(header)})")
        return path_column
    lowered = {h.strip().lower(): h for h in header}
    col = next((lowered[c] for c in PATH_COLUMNS if c in lowered), None)
    if col is None:
        raise ValueError(f"{source}, line 1: no image path column; name it one of {', '.join(PATH_COLUMNS)} or set "
                         f"{option} (columns: {', '.join(header)})")
    return col


def _shown(ch: str) -> str:
    return {" ": "a space", "\t": "a tab"}.get(ch, repr(ch))


def check_label_separator(label_lists: Sequence[Sequence[str]], where: Sequence[str], separator: str, *,
                          source: str, class_names: Sequence[str] | None = None) -> None:
    """Refuse labels that look like several labels joined by a separator other than the configured one.

    A label (not in a given class list) containing ``;``, ``|`` or ``,`` is refused. A label containing
    whitespace is refused when whitespace is not the separator and every part of it is also a label of its
    own somewhere in the file (class names with spaces, such as ``traffic light``, stay allowed).

    Raises
    ------
    ValueError
        Naming the file and line, the label, the likely separator and ``data.options.separator``.

    Examples
    --------
    >>> check_label_separator([["cat"], ["cat;dog"]], ["line 2", "line 3"], " ", source="t.csv")
    Traceback (most recent call last):
    ...
    ValueError: t.csv, line 3: label 'cat;dog' contains ';', a likely label separator, but data.options.separator is a space; set data.options.separator: ';' (or list the class in data.options.class_names)
    >>> check_label_separator([["traffic light"], ["car"]], ["line 2", "line 3"], "|", source="t.csv")
    """
    sep = separator.strip() or " "
    known = set(class_names or ())
    singles = {lb for labels in label_lists for lb in labels}
    for labels, loc in zip(label_lists, where):
        for lb in labels:
            if lb in known:
                continue
            for ch in LIKELY_SEPARATORS:
                if ch == sep or (ch.isspace() and sep.isspace()) or ch not in lb:
                    continue
                if ch.isspace() and not all(part in singles for part in lb.split()):
                    continue
                raise ValueError(
                    f"{source}, {loc}: label {lb!r} contains {_shown(ch)}, a likely label separator, but "
                    f"data.options.separator is {_shown(sep)}; set data.options.separator: {ch!r} "
                    "(or list the class in data.options.class_names)"
                )


def _resolve(root: str | os.PathLike | None, split: str | None, ext: str) -> Path:
    if root is None:
        raise ValueError(f"{ext}: root= must name a .{ext} file or a directory holding <split>.{ext}")
    p = Path(root)
    if p.is_dir():
        f = p / f"{split}.{ext}"
        if not f.is_file():
            have = sorted(q.name for q in p.glob(f"*.{ext}"))
            raise FileNotFoundError(f"{f} not found" + (f" (found {', '.join(have)})" if have else ""))
        return f
    if not p.is_file():
        raise FileNotFoundError(f"image list {p} not found")
    return p


def _class_list(class_names: Sequence[str] | str | os.PathLike | None) -> list[str] | None:
    if class_names is None:
        return None
    if isinstance(class_names, (str, os.PathLike)):
        path = Path(class_names)
        if not path.is_file():
            raise FileNotFoundError(f"class list file {path} not found")
        names = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        return check_class_names(names, source=str(path))
    return check_class_names(class_names, source="class_names")


def _encode(label_lists: list[list[str]], where: list[str], classes: list[str] | None,
            source: str) -> tuple[np.ndarray, list[str]]:
    if classes is None:
        classes = sorted({lb for labels in label_lists for lb in labels})
        if not classes:
            raise ValueError(f"{source}: no labels at all; pass class_names=")
    index = {c: i for i, c in enumerate(classes)}
    rows, cols = [], []
    for r, (labels, loc) in enumerate(zip(label_lists, where)):
        for lb in labels:
            j = index.get(lb)
            if j is None:
                raise ValueError(f"{source}, {loc}: label {lb!r} is not in the class list "
                                 f"({len(classes)} classes: {', '.join(classes[:10])}{', ...' if len(classes) > 10 else ''})")
            rows.append(r)
            cols.append(j)
    targets = np.zeros((len(label_lists), len(classes)), dtype=np.uint8)
    targets[np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)] = 1
    return targets, classes


def load_image_csv(root: str | os.PathLike, split: str | None = "train", *, path_column: str | None = None,
                   labels_column: str | None = "labels", separator: str = " ",
                   class_names: Sequence[str] | str | None = None, split_column: str | None = None,
                   image_root: str | os.PathLike | None = None, delimiter: str = ",",
                   on_error: str = "raise", **kwargs: Any) -> ImageListDataset:
    """Read a CSV image list (label names in one column, or one 0/1 column per class).

    Parameters
    ----------
    root : str or path-like
        The CSV file (read whole; ``split`` then only selects rows when ``split_column`` is given), or a
        directory holding ``<split>.csv``.
    split : str
    path_column : str, optional
        Header of the image path column; default the first of ``path``, ``image``, ``filename``, ``file``,
        ``filepath``, ``image_path`` (any case) in the header (:func:`find_path_column`).
    labels_column : str or None
        Header of the label-names column. When the header has no such column, every column other than the
        path (and split) column is a 0/1 class column named by its header.
    separator : str
        Separator between label names inside the labels column (default a space; ``"|"`` or ``";"`` also
        common). Surrounding whitespace is stripped. A label that holds another likely separator is an error
        naming ``data.options.separator`` and the line (:func:`check_label_separator`).
    class_names : list of str or path to a text file, optional
        The class list; default the sorted set of names found (or the 0/1 column headers).
    split_column : str, optional
        A column whose value selects the rows of ``split``.
    image_root : str, optional
        Folder of relative image paths (default the CSV's folder).
    delimiter : str
        CSV field delimiter.
    on_error : {"raise", "skip"}
    **kwargs
        ``transform``, ``name``.

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> _ = open(os.path.join(d, "train.csv"), "w").write("path,labels\\na.jpg,cat dog\\nb.jpg,dog\\n")
    >>> ds = load_image_csv(d, "train")
    >>> ds.class_names, ds.targets.tolist()
    (['cat', 'dog'], [[1, 1], [0, 1]])
    """
    file = _resolve(root, split, "csv")
    source = str(file)
    with open(file, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise ValueError(f"{source}: empty file") from None
        body = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    path_column = find_path_column(header, path_column, source=source)
    if split_column is not None and split_column not in header:
        raise ValueError(f"{source}, line 1: no split column {split_column!r} in header {header}")
    for line, row in body:
        if len(row) != len(header):
            raise ValueError(f"{source}, line {line}: {len(row)} fields but the header has {len(header)}")
    if split_column is not None:
        sc = header.index(split_column)
        body = [(ln, row) for ln, row in body if row[sc].strip() == split]
        if not body:
            raise ValueError(f"{source}: no row has {split_column}={split!r}")
    pc = header.index(path_column)
    paths = [row[pc].strip() for _, row in body]
    where = [f"line {ln}" for ln, _ in body]
    classes = _class_list(class_names)
    if labels_column is not None and labels_column in header:
        lc = header.index(labels_column)
        sep = separator.strip() or None
        label_lists = [[t.strip() for t in row[lc].split(sep) if t.strip()] for _, row in body]
        check_label_separator(label_lists, where, separator, source=source, class_names=classes)
        targets, classes = _encode(label_lists, where, classes, source)
    else:
        skip = {pc} | ({header.index(split_column)} if split_column is not None else set())
        cols = [j for j in range(len(header)) if j not in skip]
        col_names = [header[j] for j in cols]
        if not cols:
            raise ValueError(f"{source}, line 1: no {labels_column!r} column and no class columns")
        if classes is not None:
            extra = [c for c in col_names if c not in classes]
            if extra:
                raise ValueError(f"{source}, line 1: column {extra[0]!r} is not in the class list")
            missing = [c for c in classes if c not in col_names]
            if missing:
                raise ValueError(f"{source}, line 1: class {missing[0]!r} has no column")
        else:
            classes = check_class_names(col_names, source=source)
        raw = np.array([[row[j].strip() for j in cols] for _, row in body], dtype=str).reshape(len(body), len(cols))
        ok = (raw == "0") | (raw == "1")
        if not ok.all():
            r, c = np.argwhere(~ok)[0]
            raise ValueError(f"{source}, {where[r]}: column {col_names[c]!r} is {str(raw[r, c])!r}; class columns "
                             "must hold 0 or 1")
        y = (raw == "1").astype(np.uint8)
        order = [col_names.index(c) for c in classes]
        targets = y[:, order]
    name = kwargs.pop("name", None) or f"{file.stem}" + (f"-{split}" if split_column else "")
    ds = ImageListDataset(paths, targets, classes, root=Path(image_root) if image_root else file.parent,
                          on_error=on_error, name=name, **kwargs)
    ds.source_lines = [ln for ln, _ in body]
    return ds


def load_image_json(root: str | os.PathLike, split: str | None = "train", *, path_key: str = "path",
                    labels_key: str = "labels", class_names: Sequence[str] | str | None = None,
                    image_root: str | os.PathLike | None = None, on_error: str = "raise",
                    **kwargs: Any) -> ImageListDataset:
    """Read a JSON image list: ``[{"path": ..., "labels": [...]}, ...]`` or
    ``{"classes": [...], "images": [...]}``.

    Parameters are as :func:`load_image_csv`; ``path_key``/``labels_key`` name the fields of each item. A
    ``"classes"`` entry of the file is the class list unless ``class_names`` is given.

    Examples
    --------
    >>> import json, os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "val.json")
    >>> json.dump([{"path": "a.png", "labels": ["x"]}, {"path": "b.png", "labels": []}], open(p, "w"))
    >>> load_image_json(p).targets.tolist()
    [[1], [0]]
    """
    file = _resolve(root, split, "json")
    source = str(file)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: invalid JSON ({exc})") from None
    classes = _class_list(class_names)
    if isinstance(data, dict):
        if classes is None and "classes" in data:
            classes = check_class_names(data["classes"], source=f"{source} 'classes'")
        items = data.get("images")
        if items is None:
            raise ValueError(f"{source}: a JSON object must hold an 'images' list")
    else:
        items = data
    if not isinstance(items, list):
        raise ValueError(f"{source}: expected a list of items")
    paths, label_lists, where = [], [], []
    for k, it in enumerate(items):
        loc = f"item {k}"
        if not isinstance(it, dict) or path_key not in it:
            raise ValueError(f"{source}, {loc}: expected an object with a {path_key!r} key")
        labels = it.get(labels_key, [])
        if isinstance(labels, str):
            labels = [labels]
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ValueError(f"{source}, {loc}: {labels_key!r} must be a list of label names")
        paths.append(str(it[path_key]))
        label_lists.append(labels)
        where.append(loc)
    if not paths:
        raise ValueError(f"{source}: no images")
    targets, classes = _encode(label_lists, where, classes, source)
    name = kwargs.pop("name", None) or file.stem
    return ImageListDataset(paths, targets, classes, root=Path(image_root) if image_root else file.parent,
                            on_error=on_error, name=name, **kwargs)


@register_dataset("csv")
def csv_dataset(root: str | None = None, split: str = "train", **options: Any) -> ImageListDataset:
    """Custom CSV image list; see :func:`load_image_csv`."""
    return load_image_csv(root, split, **options)


@register_dataset("json")
def json_dataset(root: str | None = None, split: str = "train", **options: Any) -> ImageListDataset:
    """Custom JSON image list; see :func:`load_image_json`."""
    return load_image_json(root, split, **options)
