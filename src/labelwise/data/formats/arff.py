"""ARFF files (Weka's attribute-relation format), dense and sparse: a vectorised parser.

:func:`read_arff` reads the header (``@relation``, ``@attribute`` declarations with their types and nominal
values) and the data section (dense ``v1,v2,...`` rows or sparse ``{index value, ...}`` rows) into an
:class:`ArffFile`. It knows nothing about labels: the MULAN/MEKA multi-label format on top of it is
:mod:`labelwise.data.formats.mulan`. The largest files of the MULAN collection (``rcv1subset1.arff``, 8 MB
sparse, 47 236 features) load in well under the time ``liac-arff`` needs.

Parsing rules

* ``numeric`` / ``real`` / ``integer`` attributes are read as numbers; ``string`` and ``date`` attributes are
  declared but refused in the data.
* A nominal attribute whose declared values all parse as numbers (``{0,1}``) is read as those numbers; other
  nominal values are read as the index of the value in the declaration.
* In sparse rows an omitted attribute takes its zero value: 0 for numeric attributes, the *first declared*
  value for nominal ones (Weka's semantics).
* A missing value ``?`` is read as NaN.
* Names may be quoted with ``'`` or ``"``; backslash escapes (``\\'``, ``\\"``, ``\\\\``) are undone
  (:func:`unescape`, which the MULAN label XML reader shares).
* Malformed input raises a ``ValueError`` naming the file and line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["ArffAttribute", "ArffFile", "read_arff", "unescape"]

_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}
_NUMERIC_TYPES = {"numeric", "real", "integer"}


def unescape(text: str) -> str:
    """Undo ARFF/MULAN backslash escapes (``\\'`` -> ``'``); shared by the ARFF and the XML reader.

    Examples
    --------
    >>> unescape("valentine\\\\'s_day")
    "valentine's_day"
    """
    if "\\" not in text:
        return text
    return _ESCAPE_RE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


@dataclass
class ArffAttribute:
    """One ``@attribute`` declaration.

    ``kind`` is ``"numeric"``, ``"nominal"``, ``"string"`` or ``"date"``; ``values`` lists the declared
    nominal values (``None`` otherwise).
    """

    name: str
    kind: str
    values: list[str] | None = None
    line: int = 0

    @property
    def numeric_values(self) -> np.ndarray | None:
        """The nominal values as floats when they all parse as numbers (``{0,1}``), else ``None``."""
        if self.values is None:
            return None
        try:
            return np.array([float(v) for v in self.values], dtype=np.float64)
        except ValueError:
            return None


@dataclass
class ArffFile:
    """A parsed ARFF file.

    Attributes
    ----------
    path : str
    relation : str
    attributes : list of ArffAttribute
    data : ndarray of float64 (n_rows, n_attributes) or scipy.sparse.csr_matrix
        Numeric attributes as numbers, numeric-valued nominals as their numbers, other nominals as the
        index of the value in the declaration. Missing values (``?``) are NaN.
    sparse : bool
        Whether the data section used the sparse ``{index value, ...}`` syntax.
    line_numbers : ndarray of int64
        1-based line number of every data row (for error messages).
    """

    path: str
    relation: str
    attributes: list[ArffAttribute]
    data: Any
    sparse: bool
    line_numbers: np.ndarray = field(repr=False)

    @property
    def attribute_names(self) -> list[str]:
        return [a.name for a in self.attributes]

    def __len__(self) -> int:
        return int(self.data.shape[0])


# --------------------------------------------------------------------------------------------------------
# header
# --------------------------------------------------------------------------------------------------------
def _read_token(text: str, pos: int, stops: str) -> tuple[str, int]:
    """Read one (possibly quoted) token starting at ``pos``; return it unescaped and the next position."""
    n = len(text)
    while pos < n and text[pos] in " \t":
        pos += 1
    if pos < n and text[pos] in "'\"":
        quote = text[pos]
        end = pos + 1
        while end < n and text[end] != quote:
            end += 2 if text[end] == "\\" else 1
        if end >= n:
            raise ValueError("unterminated quoted name")
        return unescape(text[pos + 1 : end]), end + 1
    end = pos
    while end < n and text[end] not in stops:
        end += 2 if text[end] == "\\" else 1
    return unescape(text[pos:end].strip()), end


def _split_quoted(text: str) -> list[str]:
    """Split a comma-separated list whose items may be quoted (nominal declarations, quoted data rows)."""
    items: list[str] = []
    pos, n = 0, len(text)
    while pos <= n:
        tok, pos = _read_token(text, pos, ",")
        items.append(tok)
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos >= n:
            break
        if text[pos] != ",":
            raise ValueError(f"unexpected {text[pos]!r} after {tok!r}")
        pos += 1
    return items


def _parse_attribute(rest: str, where: str, line: int) -> ArffAttribute:
    try:
        name, pos = _read_token(rest, 0, " \t{")
    except ValueError as exc:
        raise ValueError(f"{where}: {exc} in @attribute declaration") from None
    if not name:
        raise ValueError(f"{where}: @attribute without a name")
    spec = rest[pos:].strip()
    if spec.startswith("{"):
        if not spec.endswith("}"):
            raise ValueError(f"{where}: nominal attribute {name!r} lacks its closing '}}'")
        inner = spec[1:-1].strip()
        values = _split_quoted(inner) if inner else []
        return ArffAttribute(name, "nominal", values, line)
    kind = spec.split(None, 1)[0].lower() if spec else ""
    if kind in _NUMERIC_TYPES:
        return ArffAttribute(name, "numeric", None, line)
    if kind in ("string", "date"):
        return ArffAttribute(name, kind, None, line)
    raise ValueError(f"{where}: attribute {name!r} has unsupported type {spec!r}")


# --------------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------------
def _encode(attrs: list[ArffAttribute], cols: np.ndarray, vals: np.ndarray, path: str,
            lines_of: Any) -> np.ndarray:
    """Convert string values ``vals`` of attributes ``cols`` to float64 (NaN for ``?``), vectorised.

    ``lines_of(k)`` gives the file line number of entry ``k`` for error messages.
    """
    out = np.full(vals.shape[0], np.nan, dtype=np.float64)
    missing = vals == "?"
    # 0 numeric, 1 nominal, 2 string/date (refused), 3 nominal with numeric values ({0,1}: fast path)
    kinds = np.array([0 if a.kind == "numeric" else 2 if a.kind != "nominal"
                      else 3 if a.numeric_values is not None else 1 for a in attrs], dtype=np.int8)
    entry_kind = kinds[cols]
    if (entry_kind == 2).any():
        k = int(np.flatnonzero(entry_kind == 2)[0])
        a = attrs[cols[k]]
        raise ValueError(f"{path}, line {lines_of(k)}: attribute {a.name!r} has type {a.kind}, which "
                         "cannot be used as a multi-label feature or label")
    num = (entry_kind == 0) & ~missing
    if num.any():
        try:
            out[num] = vals[num].astype(np.float64)
        except ValueError:
            idx = np.flatnonzero(num)
            for k in idx:  # error path only: find the offending entry
                try:
                    float(vals[k])
                except ValueError:
                    raise ValueError(f"{path}, line {lines_of(k)}: attribute {attrs[cols[k]].name!r} is "
                                     f"numeric but has value {str(vals[k])!r}") from None
    nom = (entry_kind == 1) & ~missing
    numnom = (entry_kind == 3) & ~missing
    if numnom.any():
        idx = np.flatnonzero(numnom)
        ok = np.zeros(len(idx), dtype=bool)
        try:
            parsed = vals[idx].astype(np.float64)
        except ValueError:  # some value is not a number: the declared-value lookup below names it
            parsed = None
        if parsed is not None:
            groups: dict[tuple, list[int]] = {}
            for j in np.flatnonzero(np.bincount(cols[idx], minlength=len(attrs))).tolist():
                groups.setdefault(tuple(attrs[j].values or ()), []).append(j)
            entry_cols = cols[idx]
            for js in groups.values():
                m = np.isin(entry_cols, js) if len(groups) > 1 else np.ones(len(idx), dtype=bool)
                ok[m] = np.isin(parsed[m], attrs[js[0]].numeric_values)
            out[idx[ok]] = parsed[ok]
        nom[idx[~ok]] = True  # undeclared values: resolved (and reported) by the nominal lookup
    if nom.any():
        idx = np.flatnonzero(nom)
        uvals, inv = np.unique(vals[idx], return_inverse=True)
        key = cols[idx].astype(np.int64) * len(uvals) + inv
        ukeys, kinv = np.unique(key, return_inverse=True)
        lookup: dict[int, dict[str, float]] = {}
        mapped = np.empty(len(ukeys), dtype=np.float64)
        for u, kk in enumerate(ukeys):
            c, v = divmod(int(kk), len(uvals))
            table = lookup.get(c)
            if table is None:
                a = attrs[c]
                nums = a.numeric_values
                codes = nums if nums is not None else np.arange(len(a.values or []), dtype=np.float64)
                table = lookup[c] = dict(zip(a.values or [], codes.tolist()))
            value = str(uvals[v])
            if value not in table:
                k = int(idx[np.flatnonzero(kinv == u)[0]])
                raise ValueError(f"{path}, line {lines_of(k)}: value {value!r} is not declared for nominal "
                                 f"attribute {attrs[c].name!r} {{{','.join(attrs[c].values or [])}}}")
            mapped[u] = table[value]
        out[idx] = mapped[kinv]
    return out


def _zero_values(attrs: list[ArffAttribute]) -> np.ndarray:
    """Encoded value of an omitted sparse entry per attribute (0, or the first declared nominal value)."""
    zeros = np.zeros(len(attrs), dtype=np.float64)
    for j, a in enumerate(attrs):
        if a.kind == "nominal" and a.values:
            nums = a.numeric_values
            zeros[j] = nums[0] if nums is not None else 0.0
    return zeros


def _parse_dense(attrs, rows: list[str], line_no: np.ndarray, path: str) -> np.ndarray:
    n, n_attr = len(rows), len(attrs)
    if any(("'" in r or '"' in r) for r in rows):
        table = []
        for r, ln in zip(rows, line_no):
            try:
                table.append(_split_quoted(r))
            except ValueError as exc:
                raise ValueError(f"{path}, line {ln}: {exc}") from None
        counts = np.array([len(t) for t in table], dtype=np.int64)
        flat = [v for t in table for v in t]
    else:
        counts = np.fromiter((r.count(",") + 1 for r in rows), dtype=np.int64, count=n)
        flat = ",".join(rows).split(",")
    bad = np.flatnonzero(counts != n_attr)
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"{path}, line {line_no[k]}: {counts[k]} values but {n_attr} attributes are declared")
    vals = np.char.strip(np.array(flat, dtype=str)) if flat else np.array([], dtype=str)
    cols = np.tile(np.arange(n_attr), n)
    out = _encode(attrs, cols, vals, path, lambda k: line_no[k // n_attr])
    return out.reshape(n, n_attr)


def _parse_sparse(attrs, rows: list[str], line_no: np.ndarray, path: str) -> sp.csr_matrix:
    n, n_attr = len(rows), len(attrs)
    inner = []
    for r, ln in zip(rows, line_no):
        if not (r.startswith("{") and r.endswith("}")):
            raise ValueError(f"{path}, line {ln}: a sparse row must be enclosed in {{...}}")
        inner.append(r[1:-1].strip())
    counts = np.fromiter(((s.count(",") + 1) if s else 0 for s in inner), dtype=np.int64, count=n)
    rows_of = np.repeat(np.arange(n), counts)
    if any(("'" in s or '"' in s) for s in inner):
        idx_tok, val_tok = [], []
        for s, ln in zip(inner, line_no):
            for item in (_split_quoted(s) if s else []):
                parts = item.split(None, 1)
                if len(parts) != 2:
                    raise ValueError(f"{path}, line {ln}: sparse entry {item!r} is not 'index value'")
                idx_tok.append(parts[0])
                val_tok.append(unescape(parts[1].strip().strip("'\"")))
    else:
        toks = " ".join(inner).replace(",", " ").split()
        if len(toks) != 2 * int(counts.sum()):
            per_row = np.array([len(s.replace(",", " ").split()) for s in inner])
            k = int(np.flatnonzero(per_row != 2 * counts)[0])
            raise ValueError(f"{path}, line {line_no[k]}: sparse entries must be 'index value' pairs")
        idx_tok, val_tok = toks[0::2], toks[1::2]
    try:
        cols = np.array(idx_tok, dtype=np.int64) if idx_tok else np.zeros(0, dtype=np.int64)
    except ValueError:
        k = next(i for i, t in enumerate(idx_tok) if not t.lstrip("-").isdigit())
        raise ValueError(f"{path}, line {line_no[rows_of[k]]}: sparse index {idx_tok[k]!r} is not an integer") from None
    bad = np.flatnonzero((cols < 0) | (cols >= n_attr))
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"{path}, line {line_no[rows_of[k]]}: sparse index {cols[k]} is outside the "
                         f"{n_attr} declared attributes")
    vals = np.array(val_tok, dtype=str) if val_tok else np.array([], dtype=str)
    data = _encode(attrs, cols, vals, path, lambda k: line_no[rows_of[k]])
    # duplicated indices in a row would silently be summed by scipy: refuse them
    key = np.sort(rows_of * n_attr + cols)
    same = np.flatnonzero(np.diff(key) == 0)
    if same.size:
        dup = key[same[0]]
        raise ValueError(f"{path}, line {line_no[dup // n_attr]}: attribute index {dup % n_attr} appears twice")
    zeros = _zero_values(attrs)
    for j in np.flatnonzero(zeros != 0):  # rare: nominal whose first value is not 0 (e.g. {1,0})
        has = np.zeros(n, dtype=bool)
        has[rows_of[cols == j]] = True
        extra = np.flatnonzero(~has)
        rows_of = np.concatenate([rows_of, extra])
        cols = np.concatenate([cols, np.full(extra.size, j)])
        data = np.concatenate([data, np.full(extra.size, zeros[j])])
    mat = sp.csr_matrix((data, (rows_of, cols)), shape=(n, n_attr), dtype=np.float64)
    mat.sort_indices()
    return mat


def read_arff(path: str | os.PathLike) -> ArffFile:
    """Read a dense or sparse ARFF file with a vectorised parser.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    ArffFile
        Header, data (``float64`` dense array or ``csr_matrix``; missing values are NaN) and the line
        number of each row.

    Raises
    ------
    ValueError
        Naming the file and line on malformed input (wrong number of values, undeclared nominal value,
        non-numeric value in a numeric attribute, bad sparse index).

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "toy.arff")
    >>> _ = open(p, "w").write("@relation toy\\n@attribute x numeric\\n@attribute y {0,1}\\n@data\\n0.5,1\\n2,0\\n")
    >>> f = read_arff(p)
    >>> f.attribute_names, f.sparse
    (['x', 'y'], False)
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"ARFF file not found: {path}") from None
    lines = text.split("\n")
    relation = ""
    attrs: list[ArffAttribute] = []
    data_start = None
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        low = line[:10].lower()
        if low.startswith("@relation"):
            relation, _ = _read_token(line[9:], 0, "")
        elif low.startswith("@attribute"):
            attrs.append(_parse_attribute(line[10:], f"{path}, line {i + 1}", i + 1))
        elif low.startswith("@data"):
            data_start = i + 1
            break
        else:
            raise ValueError(f"{path}, line {i + 1}: unexpected header line {line[:60]!r}")
    if data_start is None:
        raise ValueError(f"{path}: no @data section")
    if not attrs:
        raise ValueError(f"{path}: no @attribute declarations")
    body = lines[data_start:]
    keep = [(i, s) for i, s in enumerate(r.strip() for r in body) if s and not s.startswith("%")]
    rows = [s for _, s in keep]
    line_no = np.array([data_start + i + 1 for i, _ in keep], dtype=np.int64)
    sparse = bool(rows) and rows[0].startswith("{")
    if sparse:
        data = _parse_sparse(attrs, rows, line_no, path)
    else:
        if any(r.startswith("{") for r in rows):
            k = next(i for i, r in enumerate(rows) if r.startswith("{"))
            raise ValueError(f"{path}, line {line_no[k]}: sparse row in a dense data section")
        data = _parse_dense(attrs, rows, line_no, path)
    return ArffFile(path, relation, attrs, data, sparse, line_no)
