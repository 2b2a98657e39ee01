"""Weights shipped with labelwise, loaded by name: ``model: {backbone: resnet18, weights: md-resnet18}``.

The package directory ``labelwise/weights/`` holds, per name, a ``<name>.safetensors`` file and its model card
``<name>.json`` (written by ``labelwise pretrain``, see :mod:`labelwise.pretrain` and docs/pretrained.md). A
``weights`` value is looked up here *before* it is treated as a path: a name with a card resolves to the
shipped file, whose SHA-256 is checked against the card on every load (a mismatch raises), and whose
architecture options (e.g. the ResNet channel widths, the ViT patch size and depth) become the backbone's
defaults. The file is safetensors, so nothing is unpickled.

Examples
--------
>>> from labelwise.models.shipped import is_weights_name, list_shipped
>>> is_weights_name("md-resnet18"), is_weights_name("runs/x/best.safetensors")
(True, False)
>>> isinstance(list_shipped(), list)
True
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "SHIPPED_DIR",
    "ShippedWeights",
    "ChecksumMismatchError",
    "is_weights_name",
    "list_shipped",
    "resolve_shipped",
    "sha256_file",
]

#: Where shipped weights and their cards live (inside the installed package).
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "weights"

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class ChecksumMismatchError(ValueError):
    """A shipped weights file does not match the SHA-256 of its model card."""


@dataclass(frozen=True)
class ShippedWeights:
    """A resolved shipped weights name.

    Attributes
    ----------
    name : str
        The registry name.
    path : Path
        The verified ``.safetensors`` file.
    card : dict
        The model card (``architecture`` holds ``backbone`` and ``backbone_kwargs``).
    """

    name: str
    path: Path
    card: dict[str, Any]

    @property
    def backbone(self) -> str:
        """The timm architecture name the weights belong to."""
        return str(self.card["architecture"]["backbone"])

    @property
    def backbone_kwargs(self) -> dict[str, Any]:
        """Architecture options (shape-defining timm keyword arguments) of the weights."""
        kw = dict(self.card["architecture"].get("backbone_kwargs") or {})
        return {k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x")
    >>> _ = open(p, "wb").write(b"abc")
    >>> sha256_file(p)[:16]
    'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_weights_name(value: Any) -> bool:
    """Whether ``value`` looks like a registry name (lower case, no path separator, no file suffix).

    Examples
    --------
    >>> is_weights_name("md-vit-tiny"), is_weights_name("w.pth"), is_weights_name("a/b")
    (True, False, False)
    """
    if not isinstance(value, str) or not _NAME.match(value):
        return False
    return Path(value).suffix.lower() not in (".safetensors", ".pth", ".pt", ".bin", ".ckpt", ".tar")


def list_shipped(directory: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the shipped weights (those with a card and a weights file).

    Examples
    --------
    >>> list_shipped("/nonexistent")
    []
    """
    root = Path(directory) if directory is not None else SHIPPED_DIR
    if not root.is_dir():
        return []
    return sorted(p.stem for p in root.glob("*.json") if (root / f"{p.stem}.safetensors").is_file())


def resolve_shipped(name: str, directory: str | os.PathLike[str] | None = None, *,
                    verify: bool = True) -> ShippedWeights:
    """Resolve a shipped weights name to its verified file and card.

    Parameters
    ----------
    name : str
        A name from :func:`list_shipped`.
    directory : path, optional
        The registry directory (default :data:`SHIPPED_DIR`).
    verify : bool
        Check the file's SHA-256 against the card (default True).

    Raises
    ------
    KeyError
        ``name`` is not shipped (the known names are listed).
    ChecksumMismatchError
        The file differs from the card's checksum.
    ValueError
        The card is unreadable or lacks ``sha256`` / ``architecture.backbone``.

    Examples
    --------
    >>> resolve_shipped("no-such-weights", "/nonexistent")
    Traceback (most recent call last):
    ...
    KeyError: "no shipped weights named 'no-such-weights' (shipped: none; see docs/pretrained.md)"
    """
    root = Path(directory) if directory is not None else SHIPPED_DIR
    card_path, path = root / f"{name}.json", root / f"{name}.safetensors"
    if not (card_path.is_file() and path.is_file()):
        known = ", ".join(list_shipped(root)) or "none"
        raise KeyError(f"no shipped weights named {name!r} (shipped: {known}; see docs/pretrained.md)")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{card_path}: unreadable model card ({err})") from err
    if not isinstance(card, dict) or "sha256" not in card or "backbone" not in (card.get("architecture") or {}):
        raise ValueError(f"{card_path}: a model card needs 'sha256' and 'architecture.backbone'")
    if verify:
        actual = sha256_file(path)
        if actual != card["sha256"]:
            raise ChecksumMismatchError(
                f"{path}: SHA-256 {actual} does not match its card {card_path} ({card['sha256']}); the file was "
                f"changed or truncated - re-run the recipe (docs/pretrained.md) or restore the file")
    return ShippedWeights(name=name, path=path, card=card)
