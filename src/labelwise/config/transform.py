"""The image transform a run's data section describes (torchvision is imported only for image data)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import ConfigError

__all__ = ["build_transform"]


def build_transform(data: Any, *, train: bool) -> Callable[..., Any] | None:
    """The training or evaluation transform of the data section (None when ``image_size`` is null).

    Parameters
    ----------
    data : DataConfig
        ``image_size``, ``train_transform`` / ``eval_transform`` (preset names) and ``normalize``.
    train : bool
        Training (augmenting) or evaluation transform.

    Examples
    --------
    >>> from labelwise.config import DataConfig
    >>> build_transform(DataConfig(name="mulan"), train=True) is None      # tabular: no image transform
    True
    """
    if data.image_size is None:
        return None
    from ..data.transforms import build_transforms  # torchvision: imported only for image data

    size = data.image_size if isinstance(data.image_size, int) else tuple(data.image_size)
    preset = data.train_transform if train else data.eval_transform
    try:
        return build_transforms(train=train, image_size=size, preset=preset, normalize=data.normalize)
    except (KeyError, ValueError, TypeError) as exc:
        msg = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        low = msg.lower()
        if "normali" in low:
            key = "data.normalize"
        elif "size" in low:
            key = "data.image_size"
        else:
            key = "data.train_transform" if train else "data.eval_transform"
        raise ConfigError([(key, msg)]) from exc
