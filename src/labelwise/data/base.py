"""The one dataset abstraction every method in labelwise consumes.

A :class:`MultiLabelDataset` knows all of its targets up front (an ``[N, C]`` 0/1 array), so samplers,
statistics, continual scenarios and splits never have to load an input. Items are dictionaries::

    {"input": Tensor, "target": float32 [C], "mask": bool [C], "index": int}

``mask`` marks the *known* labels of the sample (all ``True`` unless the dataset carries a known-label
mask, as partial-label and class-incremental tasks do); losses ignore the unknown entries. ``index`` is the
position of the item in the dataset it came from, so per-sample state (sampler losses, memories) can be
kept by index.

Examples
--------
>>> import numpy as np
>>> from labelwise.data import ArrayDataset
>>> ds = ArrayDataset(np.zeros((4, 3), dtype="float32"), np.array([[1, 0], [0, 1], [1, 1], [0, 0]]),
...                   class_names=["cat", "dog"])
>>> item = ds[2]
>>> item["target"].tolist(), item["mask"].tolist(), item["index"]
([1.0, 1.0], [True, True], 2)
>>> task = ds.view([0, 2], known_mask=np.array([[True, False], [True, False]]))
>>> len(task), task[1]["mask"].tolist(), task.base_indices.tolist()
(2, [True, False], [0, 2])
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "MultiLabelDataset",
    "ArrayDataset",
    "ImageListDataset",
    "DatasetView",
    "ImageLoadError",
    "CollatedBatch",
    "collate_batch",
    "read_image_rgb",
    "check_targets",
    "check_class_names",
]


class ImageLoadError(RuntimeError):
    """Raised when an image file is missing or cannot be decoded; the message names the path."""


def check_class_names(class_names: Sequence[str], *, source: str = "dataset") -> list[str]:
    """Validate class names: non-empty strings, no duplicates. Returns them as a list."""
    names = [str(c) for c in class_names]
    if not names:
        raise ValueError(f"{source}: no class names")
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n == "":
            raise ValueError(f"{source}: class {i} has an empty name")
        if n in seen:
            raise ValueError(f"{source}: class name {n!r} appears twice (positions {seen[n]} and {i})")
        seen[n] = i
    return names


def check_targets(targets: Any, num_classes: int | None = None, *, source: str = "dataset") -> np.ndarray:
    """Validate a multi-hot target matrix (array, tensor or a dataset's targets) and return it as ``uint8 [N, C]``.

    Raises a ``ValueError`` naming the first offending row and column when a value is not 0 or 1
    (NaN included), or when the number of columns differs from ``num_classes``.

    Examples
    --------
    >>> check_targets([[0, 1], [1, 1]]).dtype
    dtype('uint8')
    >>> check_targets([[0, 2]], source="labels.csv")
    Traceback (most recent call last):
    ...
    ValueError: labels.csv: target row 0, column 1 is 2.0; multi-label targets must be 0 or 1
    """
    if hasattr(targets, "targets") and not isinstance(targets, np.ndarray | torch.Tensor):
        targets = targets.targets  # a dataset
    arr = targets.detach().cpu().numpy() if isinstance(targets, torch.Tensor) else np.asarray(targets)
    if arr.ndim != 2:
        raise ValueError(f"{source}: targets must be a 2-D [samples, classes] array, got shape {arr.shape}")
    if num_classes is not None and arr.shape[1] != num_classes:
        raise ValueError(f"{source}: targets have {arr.shape[1]} columns but there are {num_classes} classes")
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    bad = ~((arr == 0) | (arr == 1))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(
            f"{source}: target row {r}, column {c} is {float(arr[r, c])!r}; multi-label targets must be 0 or 1"
        )
    return arr.astype(np.uint8)


class MultiLabelDataset(Dataset):
    """Base class: inputs loaded lazily by :meth:`load_input`, targets held in memory.

    Parameters
    ----------
    targets : array-like of shape (n_samples, n_classes)
        Multi-hot 0/1 targets.
    class_names : sequence of str
        One unique name per column of ``targets``.
    known_mask : array-like of bool, same shape as ``targets``, optional
        ``True`` where a label is known. ``None`` means every label is known.
    transform : callable, optional
        Applied to the input returned by :meth:`load_input`.
    name : str, optional
        Human-readable dataset name used in messages and reports.
    """

    def __init__(
        self,
        targets: Any,
        class_names: Sequence[str],
        *,
        known_mask: Any | None = None,
        transform: Callable | None = None,
        name: str | None = None,
    ) -> None:
        self.name = name or type(self).__name__
        self.class_names = check_class_names(class_names, source=self.name)
        self.targets = check_targets(targets, len(self.class_names), source=self.name)
        if known_mask is not None:
            known_mask = np.asarray(known_mask, dtype=bool)
            if known_mask.shape != self.targets.shape:
                raise ValueError(
                    f"{self.name}: known_mask shape {known_mask.shape} differs from targets {self.targets.shape}"
                )
        self.known_mask = known_mask
        self.transform = transform

    # -- to implement -------------------------------------------------------------------------------
    def load_input(self, index: int) -> Any:
        """Return the raw input of sample ``index`` (before ``transform``)."""
        raise NotImplementedError

    # -- common behaviour ---------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def mask_row(self, index: int) -> np.ndarray:
        if self.known_mask is None:
            return np.ones(self.num_classes, dtype=bool)
        return self.known_mask[index]

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        index = int(index)
        if index < 0:
            index += len(self)
        x = self.load_input(index)
        if x is None:  # an unreadable input skipped on request (see ImageListDataset.on_error)
            return None
        if self.transform is not None:
            x = self.transform(x)
        return {
            "input": x,
            "target": torch.from_numpy(self.targets[index].astype(np.float32)),
            "mask": torch.from_numpy(self.mask_row(index).copy()),
            "index": index,
        }

    def view(
        self,
        indices: Sequence[int] | np.ndarray | None = None,
        *,
        targets: Any | None = None,
        known_mask: Any | None = None,
        transform: Callable | None | str = "inherit",
    ) -> DatasetView:
        """A subset (``indices``) with optionally replaced targets / known-label mask / transform.

        ``targets`` and ``known_mask`` are given for the *selected* rows. The view shares inputs with
        this dataset and never copies them.
        """
        return DatasetView(self, indices, targets=targets, known_mask=known_mask, transform=transform)

    @property
    def base_indices(self) -> np.ndarray:
        """Indices of this dataset's samples in the root dataset (identity for a root dataset)."""
        return np.arange(len(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, samples={len(self)}, classes={self.num_classes})"


class DatasetView(MultiLabelDataset):
    """A subset of another dataset with its own targets, known-label mask and transform."""

    def __init__(
        self,
        parent: MultiLabelDataset,
        indices: Sequence[int] | np.ndarray | None = None,
        *,
        targets: Any | None = None,
        known_mask: Any | None = None,
        transform: Callable | None | str = "inherit",
    ) -> None:
        idx = np.arange(len(parent)) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(parent)):
            raise IndexError(f"{parent.name}: view index out of range [0, {len(parent)})")
        self.parent = parent
        self.indices = idx
        if targets is None:
            targets = parent.targets[idx]
        if known_mask is None and parent.known_mask is not None:
            known_mask = parent.known_mask[idx]
        super().__init__(
            targets,
            parent.class_names,
            known_mask=known_mask,
            transform=parent.transform if isinstance(transform, str) else transform,
            name=parent.name,
        )

    def load_input(self, index: int) -> Any:
        return self.parent.load_input(int(self.indices[index]))

    @property
    def base_indices(self) -> np.ndarray:
        return self.parent.base_indices[self.indices]


class ArrayDataset(MultiLabelDataset):
    """Inputs held in one array: tabular features ``[N, D]``, images ``[N, 3, H, W]`` (uint8), or other
    tensors per sample such as cached feature maps ``[N, D, H, W]`` (pass ``is_image=False``).

    Features are checked to be finite; a NaN or infinite value raises an error naming its row and column.
    Image arrays are returned as ``torchvision.tv_tensors.Image`` so torchvision v2 transforms apply.
    """

    #: the inputs are in memory: the trainer's ``num_workers="auto"`` uses no worker process for them
    inputs_in_memory = True

    def __init__(self, inputs: Any, targets: Any, class_names: Sequence[str], *, is_image: bool | None = None,
                 **kwargs: Any) -> None:
        super().__init__(targets, class_names, **kwargs)
        arr = inputs if isinstance(inputs, torch.Tensor) else torch.as_tensor(np.asarray(inputs))
        if arr.shape[0] != len(self):
            raise ValueError(f"{self.name}: {arr.shape[0]} inputs but {len(self)} target rows")
        if arr.is_floating_point() and arr.numel():
            finite = torch.isfinite(arr.reshape(arr.shape[0], -1))
            if not bool(finite.all()):
                r, c = (~finite).nonzero()[0].tolist()
                raise ValueError(f"{self.name}: feature row {r}, column {c} is not finite ({arr.reshape(len(arr), -1)[r, c].item()})")
        self.inputs = arr
        # ``is_image=None``: a 4-D array holds images; ``False`` for other 4-D inputs (cached feature maps)
        self.is_image = arr.ndim == 4 if is_image is None else bool(is_image)
        if self.is_image and arr.ndim != 4:
            raise ValueError(f"{self.name}: is_image=True needs inputs [N, 3, H, W], got shape {tuple(arr.shape)}")

    def load_input(self, index: int) -> Any:
        x = self.inputs[index]
        if self.is_image:
            from torchvision import tv_tensors

            return tv_tensors.Image(x)
        return x


class ImageListDataset(MultiLabelDataset):
    """Images on disk, one path per sample (VOC, COCO, NUS-WIDE, CSV/JSON image lists).

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        Image paths, absolute or relative to ``root``.
    targets, class_names, known_mask, transform, name
        See :class:`MultiLabelDataset`.
    root : str, optional
        Directory that relative paths are resolved against.
    on_error : {"raise", "skip"}
        ``"raise"`` (default) fails fast with :class:`ImageLoadError` naming the path; ``"skip"`` returns
        ``None`` for the item, which :func:`collate_batch` drops and counts in ``batch["skipped"]``.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        targets: Any,
        class_names: Sequence[str],
        *,
        root: str | os.PathLike | None = None,
        on_error: str = "raise",
        **kwargs: Any,
    ) -> None:
        super().__init__(targets, class_names, **kwargs)
        if len(paths) != len(self):
            raise ValueError(f"{self.name}: {len(paths)} image paths but {len(self)} target rows")
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.root = None if root is None else os.fspath(root)
        self.paths = [os.fspath(p) for p in paths]
        self.on_error = on_error

    #: inputs are files decoded on access: the trainer's ``num_workers="auto"`` uses worker processes
    inputs_in_memory = False

    def path(self, index: int) -> str:
        p = self.paths[index]
        return p if self.root is None or os.path.isabs(p) else os.path.join(self.root, p)

    def load_input(self, index: int) -> Any:
        from torchvision import tv_tensors

        path = self.path(index)
        try:
            img = read_image_rgb(path)
        except (OSError, ValueError, RuntimeError) as exc:
            if self.on_error == "skip":
                return None
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ImageLoadError(f"cannot read image {path}: {reason}") from exc
        return tv_tensors.Image(img)


try:  # torchvision's own decoders (deprecated in 0.29 for torchcodec, still shipped with the pinned 0.29.1)
    from torchvision.io import ImageReadMode as _ReadMode
    from torchvision.io import decode_image as _TV_DECODE

    _TV_RGB = _ReadMode.RGB
except ImportError:  # pragma: no cover - a torchvision without them: PIL decodes everything
    _TV_DECODE = _TV_RGB = None

#: the file signatures torchvision.io decodes natively (libjpeg-turbo, libpng, libwebp, giflib)
_TV_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")


def read_image_rgb(path: str | os.PathLike) -> torch.Tensor:
    """Decode an image file to a uint8 RGB tensor ``[3, H, W]``.

    JPEG, PNG, GIF and WebP are decoded by ``torchvision.io`` (no PIL image and no extra copy: about 1.4x
    faster than PIL + ``pil_to_tensor`` for a 640x480 JPEG); other formats (BMP, TIFF, ...) and files
    torchvision rejects go through PIL. Grey, palette, CMYK and alpha images become RGB; EXIF orientation is
    not applied (as PIL's ``Image.open``).

    Raises
    ------
    OSError, ValueError, RuntimeError
        The file is missing or cannot be decoded.

    Examples
    --------
    >>> import os, tempfile
    >>> from PIL import Image
    >>> path = os.path.join(tempfile.mkdtemp(), "grey.png")
    >>> Image.new("L", (5, 4), 7).save(path)
    >>> img = read_image_rgb(path)
    >>> tuple(img.shape), img.dtype, int(img[2, 3, 4])
    ((3, 4, 5), torch.uint8, 7)
    """
    with open(path, "rb") as fh:
        raw = fh.read()
    head = raw[:16]
    if _TV_DECODE is not None and (head.startswith(_TV_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")):
        try:
            with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders in favour of torchcodec
                warnings.simplefilter("ignore", DeprecationWarning)
                return _TV_DECODE(torch.frombuffer(bytearray(raw), dtype=torch.uint8), mode=_TV_RGB)
        except RuntimeError:
            pass  # e.g. a JPEG variant torchvision's build rejects: PIL below
    import io

    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms.v2.functional import pil_to_tensor

    try:
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            return pil_to_tensor(im.convert("RGB"))
    except UnidentifiedImageError as exc:
        raise ValueError(f"not an image file PIL or torchvision can decode ({exc})") from None


#: tensors of a :class:`CollatedBatch` up to this many bytes are pickled by value (as NumPy arrays), not shared
SMALL_TENSOR_BYTES = 1 << 16

#: dtypes NumPy holds exactly (``Tensor.numpy()`` / ``torch.from_numpy`` round-trip)
_NUMPY_DTYPES = frozenset({torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                           torch.float16, torch.float32, torch.float64})


class CollatedBatch(dict):
    """The dict :func:`collate_batch` returns; sent from a DataLoader worker, its small tensors travel by value.

    A DataLoader worker sends every CPU tensor of a batch to the training process through shared memory: one
    file descriptor per tensor, each passed over its own authenticated socket connection (``torch.multiprocessing``'s
    ``file_descriptor`` strategy), about 1 ms of CPU time in the training process and 0.5 ms in the worker per
    tensor on a 2-core machine. That is right for the images, wasted on ``target``, ``mask`` and ``index``
    (a few KB): pickling the batch sends tensors of up to :data:`SMALL_TENSOR_BYTES` as NumPy arrays in the
    message itself (same values, dtypes and shapes), so a batch costs as many transfers as a plain
    ``(images, targets)`` batch of ``default_collate``. Otherwise a plain ``dict`` (the keys of
    :class:`labelwise.protocols.Batch`).

    Examples
    --------
    >>> import pickle, torch
    >>> b = CollatedBatch(input=torch.zeros(2, 3, 4, 4), target=torch.ones(2, 5), index=torch.tensor([3, 7]),
    ...                   skipped=0)
    >>> c = pickle.loads(pickle.dumps(b))
    >>> type(c).__name__, c["index"].tolist(), c["target"].dtype, c["skipped"]
    ('CollatedBatch', [3, 7], torch.float32, 0)
    """

    def __reduce__(self) -> tuple[Any, ...]:
        small, rest = {}, {}
        for key, value in self.items():
            if (type(value) is torch.Tensor and value.device.type == "cpu" and value.dtype in _NUMPY_DTYPES
                    and not value.requires_grad and value.numel() * value.element_size() <= SMALL_TENSOR_BYTES):
                small[key] = value.numpy()
            else:
                rest[key] = value
        return (_rebuild_batch, (list(self), small, rest))

    def __copy__(self) -> CollatedBatch:
        return CollatedBatch(self)


def _rebuild_batch(keys: list[Any], small: dict[Any, np.ndarray], rest: dict[Any, Any]) -> CollatedBatch:
    return CollatedBatch((k, torch.from_numpy(small[k]) if k in small else rest[k]) for k in keys)


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``torch.stack``; in a DataLoader worker straight into shared memory (as ``default_collate``), so sending
    the batch to the training process does not copy it once more."""
    tensors = [torch.as_tensor(t).as_subclass(torch.Tensor) for t in tensors]
    first = tensors[0]
    if (torch.utils.data.get_worker_info() is None or any(t.shape != first.shape for t in tensors)
            or len(tensors) * first.numel() * first.element_size() <= SMALL_TENSOR_BYTES):  # small: sent by value
        return torch.stack(tensors)
    storage = first._typed_storage()._new_shared(len(tensors) * first.numel(), device=first.device)
    out = first.new(storage).resize_(len(tensors), *first.shape)
    return torch.stack(tensors, out=out)


def collate_batch(items: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Stack dataset items into a batch; ``None`` items (skipped inputs) are dropped and counted.

    Returns a dict with ``input`` (stacked when the inputs are tensors of one shape), ``target`` float
    ``[B, C]``, ``mask`` bool ``[B, C]``, ``index`` long ``[B]`` and ``skipped`` (int): a
    :class:`CollatedBatch`, whose small tensors a DataLoader worker sends by value, not through shared memory.
    """
    kept = [it for it in items if it is not None]
    skipped = len(items) - len(kept)
    if not kept:
        return CollatedBatch({"input": None, "target": None, "mask": None, "index": None, "skipped": skipped})
    batch = CollatedBatch()
    for key in kept[0]:
        vals = [it[key] for it in kept]
        if key == "index":
            batch[key] = torch.as_tensor(vals, dtype=torch.long)
        elif isinstance(vals[0], torch.Tensor):
            batch[key] = _stack(vals)
        else:
            batch[key] = vals
    batch["skipped"] = skipped
    return batch
