"""A correlative (CO) and a discriminative (DC) partition of the labels: :class:`LabelGroups`.

The container and its file formats (labelwise JSON and the published ML-VPT layout); computing groups from
training labels is :func:`labelwise.analysis.grouping.group_labels`. It lives in the data layer because the
models that take groups (``gvpt``, ``mlvpt`` in :mod:`labelwise.models.prompted_vit`) sit below the analysis
package (docs/architecture.md, "Layers"); ``labelwise.analysis.grouping.LabelGroups`` is the same class.

Examples
--------
>>> from labelwise.data.label_groups import LabelGroups
>>> LabelGroups(co=[[0, 1], [2]], dc=[[0, 2], [1]], num_classes=3).co_assignment.tolist()
[0, 0, 1]
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = ["LabelGroups", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "labelwise.label_groups"
FORMAT_VERSION = 1


# ----------------------------------------------------------------------------------------------------------
# groups container
# ----------------------------------------------------------------------------------------------------------
def _check_partition(groups: Sequence[Sequence[int]], num_classes: int, what: str, where: str) -> list[list[int]]:
    out: list[list[int]] = []
    seen: dict[int, int] = {}
    for g, members in enumerate(groups):
        row = []
        for c in members:
            if isinstance(c, bool) or not isinstance(c, int | np.integer):
                raise ValueError(f"{where}: {what} group {g} holds {c!r}; class indices must be ints")
            c = int(c)
            if not 0 <= c < num_classes:
                raise ValueError(f"{where}: {what} group {g} holds class {c}, outside [0, {num_classes})")
            if c in seen:
                raise ValueError(f"{where}: class {c} is in {what} groups {seen[c]} and {g}; groups must be disjoint")
            seen[c] = g
            row.append(c)
        out.append(row)
    missing = sorted(set(range(num_classes)) - set(seen))
    if missing:
        raise ValueError(f"{where}: classes {missing[:10]}{'...' if len(missing) > 10 else ''} are in no {what} group")
    return out


@dataclass
class LabelGroups:
    """A correlative (CO) and a discriminative (DC) partition of the labels ``0 .. C-1``.

    Parameters
    ----------
    co, dc : list of list of int
        Label indices of each group; every label is in exactly one group of each partition. Both partitions
        have the same number of groups (empty groups are allowed, with a warning, and get prompts all the
        same).
    num_classes : int
        ``C``.
    class_names : list of str, optional
        Names for plots and files.
    meta : dict
        How the groups were made (``tau``, ``normalization``, ``seed``, ``source``...).

    Examples
    --------
    >>> g = LabelGroups(co=[[0, 2], [1]], dc=[[0, 1], [2]], num_classes=3)
    >>> g.n_groups, g.co_assignment.tolist(), g.dc_sizes
    (2, [0, 1, 0], [2, 1])
    """

    co: list[list[int]]
    dc: list[list[int]]
    num_classes: int
    class_names: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, where: str = "LabelGroups") -> None:
        """Raise ``ValueError`` (prefixed by ``where``) unless both partitions cover ``0 .. C-1`` exactly once."""
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int | np.integer) or self.num_classes < 1:
            raise ValueError(f"{where}: num_classes must be a positive int, got {self.num_classes!r}")
        self.num_classes = int(self.num_classes)
        self.co = _check_partition(self.co, self.num_classes, "co", where)
        self.dc = _check_partition(self.dc, self.num_classes, "dc", where)
        if len(self.co) != len(self.dc):
            raise ValueError(f"{where}: {len(self.co)} co groups but {len(self.dc)} dc groups; ML-VPT uses N_c of each")
        if not self.co:
            raise ValueError(f"{where}: no groups")
        if self.class_names is not None:
            self.class_names = [str(n) for n in self.class_names]
            if len(self.class_names) != self.num_classes:
                raise ValueError(f"{where}: {len(self.class_names)} class names for {self.num_classes} classes")
        empty = [f"co {i}" for i, g in enumerate(self.co) if not g] + [f"dc {i}" for i, g in enumerate(self.dc) if not g]
        if empty:
            warnings.warn(f"{where}: empty groups {empty}; their prompts are trained for no class", UserWarning, stacklevel=3)

    # -- views --------------------------------------------------------------------------------------------
    @property
    def n_groups(self) -> int:
        """``N_c``, the number of groups of each partition."""
        return len(self.co)

    @staticmethod
    def _assign(groups: list[list[int]], num_classes: int) -> np.ndarray:
        out = np.empty(num_classes, dtype=np.int64)
        for g, members in enumerate(groups):
            out[members] = g
        return out

    @property
    def co_assignment(self) -> np.ndarray:
        """CO group of each class, ``int64 [C]``."""
        return self._assign(self.co, self.num_classes)

    @property
    def dc_assignment(self) -> np.ndarray:
        """DC group of each class, ``int64 [C]``."""
        return self._assign(self.dc, self.num_classes)

    @property
    def co_sizes(self) -> list[int]:
        return [len(g) for g in self.co]

    @property
    def dc_sizes(self) -> list[int]:
        return [len(g) for g in self.dc]

    def names(self, which: Literal["co", "dc"] = "co") -> list[list[str]]:
        """Groups as class names (indices as strings when no names are known)."""
        names = self.class_names or [str(i) for i in range(self.num_classes)]
        return [[names[c] for c in g] for g in getattr(self, which)]

    # -- files --------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "co": self.co,
            "dc": self.dc,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "groups") -> LabelGroups:
        """Build from :meth:`to_dict` output (``num_classes`` inferred from the groups when absent).

        Examples
        --------
        >>> LabelGroups.from_dict({"co": [[0], [1]], "dc": [[1], [0]]}).num_classes
        2
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected an object with 'co' and 'dc', got {type(data).__name__}")
        for key in ("co", "dc"):
            if key not in data:
                raise ValueError(f"{where}: missing key {key!r}")
            if not isinstance(data[key], list) or not all(isinstance(g, list) for g in data[key]):
                raise ValueError(f"{where}: {key!r} must be a list of lists of class indices")
        version = data.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ValueError(f"{where}: unsupported label-groups version {version!r} (expected {FORMAT_VERSION})")
        n = data.get("num_classes")
        if n is None:
            flat = [c for g in data["co"] for c in g]
            n = (max(flat) + 1) if flat else 0
        groups = cls.__new__(cls)
        groups.co, groups.dc, groups.num_classes = list(data["co"]), list(data["dc"]), n
        groups.class_names = data.get("class_names")
        groups.meta = dict(data.get("meta") or {})
        groups.validate(where)
        return groups

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the groups as JSON (see the module documentation); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        os.replace(tmp, path)
        return path

    @staticmethod
    def _read_json(path: Path) -> Any:
        if not path.is_file():
            raise FileNotFoundError(f"label groups file not found: {path}")
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc

    @staticmethod
    def _published_groups(data: Any, path: Path) -> list[list[int]]:
        if not isinstance(data, list) or not all(isinstance(g, dict) for g in data):
            raise ValueError(f"{path}: the published ML-VPT layout is a list of {{class: position}} objects")
        groups = []
        for g, entry in enumerate(data):
            try:
                pairs = sorted(((int(v), int(k)) for k, v in entry.items()))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}: group {g} has a non-integer class or position ({exc})") from exc
            positions = [p for p, _ in pairs]
            if positions != list(range(len(pairs))):
                raise ValueError(f"{path}: group {g} positions {positions} are not 0..{len(pairs) - 1}")
            groups.append([c for _, c in pairs])
        return groups

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        dc: str | os.PathLike[str] | None = None,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
    ) -> LabelGroups:
        """Read groups written by :meth:`save`, or the published ML-VPT pair of files.

        Parameters
        ----------
        path : path
            A labelwise groups file, or the published co-occurrence groups file (``*_coocurrence*.json``).
        dc : path, optional
            With the published layout: the cluster (discriminative) groups file (``*_cluster*.json``).
        num_classes : int, optional
            Check (labelwise file) or set (published files) the number of classes.
        class_names : sequence of str, optional
            Class names to attach (published files have none).

        Examples
        --------
        >>> import json, os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> _ = open(os.path.join(d, "co.json"), "w").write(json.dumps([{"0": 0, "2": 1}, {"1": 0}]))
        >>> _ = open(os.path.join(d, "cl.json"), "w").write(json.dumps([{"1": 0, "0": 1}, {"2": 0}]))
        >>> g = LabelGroups.load(os.path.join(d, "co.json"), dc=os.path.join(d, "cl.json"))
        >>> g.co, g.dc
        ([[0, 2], [1]], [[1, 0], [2]])
        """
        path = Path(path)
        data = cls._read_json(path)
        if isinstance(data, list):
            if dc is None:
                raise ValueError(
                    f"{path}: a published ML-VPT groups file holds one partition; pass the cluster file as dc="
                )
            dc_path = Path(dc)
            co_groups = cls._published_groups(data, path)
            dc_groups = cls._published_groups(cls._read_json(dc_path), dc_path)
            flat = [c for g in co_groups for c in g]
            n = num_classes if num_classes is not None else (max(flat) + 1 if flat else 0)
            groups = cls.__new__(cls)
            groups.co, groups.dc, groups.num_classes = co_groups, dc_groups, n
            groups.class_names = list(class_names) if class_names is not None else None
            groups.meta = {"source": "ml-vpt published files", "co_file": str(path), "dc_file": str(dc_path)}
            groups.validate(f"{path} / {dc_path}")
            return groups
        if dc is not None:
            raise ValueError(f"{path}: a labelwise groups file holds both partitions; do not pass dc=")
        if isinstance(data, dict) and data.get("format", FORMAT_NAME) != FORMAT_NAME:
            raise ValueError(f"{path}: 'format' is {data.get('format')!r}, expected {FORMAT_NAME!r}")
        groups = cls.from_dict(data, where=str(path))
        if num_classes is not None and groups.num_classes != num_classes:
            raise ValueError(f"{path}: groups cover {groups.num_classes} classes, expected {num_classes}")
        if class_names is not None:
            groups.class_names = list(class_names)
            groups.validate(str(path))
        return groups

    def save_published(self, co_path: str | os.PathLike[str], dc_path: str | os.PathLike[str]) -> None:
        """Write the two files of the published ML-VPT layout (a list of ``{class: position}`` per group)."""
        for groups, p in ((self.co, co_path), (self.dc, dc_path)):
            Path(p).parent.mkdir(parents=True, exist_ok=True)
            Path(p).write_text(json.dumps([{str(c): i for i, c in enumerate(g)} for g in groups]) + "\n")
