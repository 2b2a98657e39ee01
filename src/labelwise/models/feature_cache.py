"""A frozen backbone's feature maps computed once, so heads train on them without running the backbone again.

With a frozen backbone (linear probing, head-only fine-tuning, the frozen-start regime of the benchmarks)
every epoch would recompute the same feature maps. :func:`cache_feature_maps` runs the backbone once over a
dataset (in eval mode, without gradients, with the dataset's evaluation transform) and returns an
:class:`~labelwise.data.ArrayDataset` whose inputs are the feature maps ``[N, D, H, W]``, with the same
targets, known-label mask and class names. :func:`split_backbone` takes the backbone out of an
:class:`~labelwise.models.ImageClassifier` (replacing it with ``nn.Identity``) so the same model, now head
only, trains and evaluates on the cached maps with the project's Trainer and Evaluator.
:func:`split_hybrid_stem` does the same for the frozen CNN stem of a hybrid ViT
(:mod:`labelwise.models.hybrid_vit`): the transformer, with whatever prompts a prompt-tuning model adds after
the patch embedding, then runs on cached stem maps (an exact replacement, since a frozen stem is a fixed
function of the image in eval mode).

What a cache cannot give: data augmentation (each image has one feature map) and updates to the backbone's
batch-norm statistics; both are the definition of a frozen backbone evaluated without augmentation.

Examples
--------
>>> import numpy as np, torch
>>> from labelwise.data import ArrayDataset
>>> from labelwise.models import create_model
>>> from labelwise.models.feature_cache import cache_feature_maps, split_backbone
>>> images = np.random.default_rng(0).integers(0, 255, (6, 3, 32, 32), dtype=np.uint8)
>>> data = ArrayDataset(images, np.eye(3, dtype=np.uint8)[[0, 1, 2, 0, 1, 2]], ["a", "b", "c"],
...                     transform=lambda x: x.float() / 255)
>>> model = create_model("ofml", num_classes=3, backbone="test_resnet")
>>> backbone = split_backbone(model)
>>> cached = cache_feature_maps(backbone, data, batch_size=4)
>>> cached.inputs.shape, cached.is_image
(torch.Size([6, 96, 1, 1]), False)
>>> model(cached[0]["input"][None])["logits"].shape
torch.Size([1, 3])
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from torch import nn

from ..data import ArrayDataset, collate_batch

__all__ = ["cache_feature_maps", "split_backbone", "split_hybrid_stem"]

logger = logging.getLogger(__name__)


def split_backbone(model: nn.Module) -> nn.Module:
    """Take the backbone out of ``model`` (an image model with ``.backbone`` and ``.head``); return it.

    ``model.backbone`` becomes ``nn.Identity()``, so ``model`` then maps feature maps (e.g. from
    :func:`cache_feature_maps`) to its outputs dict; ``model.param_groups()["backbone"]`` is empty.

    Parameters
    ----------
    model : nn.Module
        A model with a ``backbone`` attribute (:class:`~labelwise.models.ImageClassifier`).

    Returns
    -------
    nn.Module
        The backbone that was removed.

    Examples
    --------
    >>> from labelwise.models import create_model
    >>> model = create_model("ofml", num_classes=2, backbone="test_resnet")
    >>> type(split_backbone(model)).__name__, type(model.backbone).__name__
    ('Backbone', 'Identity')
    """
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, nn.Module) or isinstance(backbone, nn.Identity):
        raise TypeError(f"{type(model).__name__} has no backbone to split off (needs a .backbone module, as "
                        f"ImageClassifier has)")
    model.backbone = nn.Identity()
    return backbone


def split_hybrid_stem(model: nn.Module) -> nn.Module:
    """Take the frozen CNN stem out of the hybrid ViT inside ``model``; return it.

    The stem (a :class:`~labelwise.models.hybrid_vit.HybridStem` inside timm's ``HybridEmbed``) becomes
    ``nn.Identity()``, so ``model`` then takes the stem's feature maps ``[B, C, H, W]`` (e.g. from
    :func:`cache_feature_maps` of the returned stem) instead of images; its patch projection, position
    embedding, transformer blocks, prompts and heads are unchanged.

    Parameters
    ----------
    model : nn.Module
        A model holding exactly one hybrid ViT whose stem is frozen (``hybrid_stem: {..., frozen: true}``, or a
        prompt-tuning model, whose whole ViT is frozen).

    Returns
    -------
    nn.Module
        The stem that was removed.

    Raises
    ------
    TypeError
        ``model`` holds no hybrid stem, or more than one.
    ValueError
        The stem is trained (parameters with gradients, or in training mode while ``model`` trains): its output
        changes during training, so caching it would change the run.

    Examples
    --------
    >>> import torch
    >>> from labelwise.models import create_model
    >>> m = create_model("vpt_deep", num_classes=2, backbone="test_vit", num_prompts=2,
    ...                  backbone_kwargs={"img_size": 64, "hybrid_stem": {"backbone": "test_resnet", "frozen": True}})
    >>> x = torch.randn(1, 3, 64, 64)
    >>> m = m.eval(); full = m(x)["logits"]
    >>> stem = split_hybrid_stem(m)
    >>> torch.allclose(m(stem(x))["logits"], full, atol=1e-6)
    True
    """
    from .hybrid_vit import HybridStem

    found = [(module, name) for module in model.modules() for name, child in module.named_children()
             if isinstance(child, HybridStem)]
    if len(found) != 1:
        raise TypeError(f"{type(model).__name__} holds {len(found)} hybrid ViT stems; split_hybrid_stem needs exactly "
                        f"one (a ViT built with backbone_kwargs.hybrid_stem)")
    parent, name = found[0]
    stem = getattr(parent, name)
    # frozen by its own option, or inside a frozen ViT (prompt tuning): no gradients, and eval mode kept in training
    was_training = model.training
    model.train()
    frozen = not stem.training and not any(p.requires_grad for p in stem.parameters())
    model.train(was_training)
    if not frozen:
        raise ValueError(f"{type(model).__name__}: the hybrid stem is trained (it has gradients or batch-norm updates "
                         f"in training mode); only a frozen stem's feature maps can be cached")
    setattr(parent, name, nn.Identity())
    return stem


@torch.inference_mode()
def extract_feature_maps(backbone: nn.Module, dataset: Any, *, batch_size: int = 128, device: str | torch.device = "cpu",
                         num_workers: int = 0) -> torch.Tensor:
    """Feature maps of every sample of ``dataset``, in dataset order: ``float32 [N, D, H, W]`` on the CPU.

    The backbone runs in eval mode without gradients; its training mode is restored afterwards.

    Examples
    --------
    >>> import numpy as np
    >>> from labelwise.data import ArrayDataset
    >>> from labelwise.models import Backbone
    >>> data = ArrayDataset(np.zeros((3, 3, 32, 32), np.float32), np.eye(3, dtype=np.uint8), ["a", "b", "c"])
    >>> extract_feature_maps(Backbone("test_resnet"), data).shape
    torch.Size([3, 96, 1, 1])
    """
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                         collate_fn=collate_batch)
    was_training = backbone.training
    backbone.eval().to(device)
    chunks: list[torch.Tensor] = []
    seen = 0
    try:
        for batch in loader:
            if batch.get("skipped"):
                raise ValueError(f"{getattr(dataset, 'name', 'dataset')}: {batch['skipped']} unreadable sample(s) "
                                 f"were skipped; a feature cache needs every sample (use on_error='raise' to see which)")
            idx = batch["index"]
            if not torch.equal(idx, torch.arange(seen, seen + len(idx))):
                raise RuntimeError("the loader did not return the samples in dataset order")
            out = backbone(batch["input"].to(device).float())
            if isinstance(out, dict):
                out = out["feature_map"]
            if out.ndim != 4:
                raise ValueError(f"{type(backbone).__name__} returned shape {tuple(out.shape)}; a feature map "
                                 f"[B, D, H, W] is needed")
            chunks.append(out.float().cpu())
            seen += len(idx)
    finally:
        backbone.train(was_training)
    if not chunks:
        raise ValueError(f"{getattr(dataset, 'name', 'dataset')} is empty: nothing to cache")
    return torch.cat(chunks)


def cache_feature_maps(backbone: nn.Module, dataset: Any, *, batch_size: int = 128, device: str | torch.device = "cpu",
                       num_workers: int = 0) -> ArrayDataset:
    """An :class:`~labelwise.data.ArrayDataset` of ``backbone``'s feature maps of ``dataset``.

    Parameters
    ----------
    backbone : nn.Module
        Maps a batch of (transformed) inputs to ``[B, D, H, W]`` (or a dict with ``"feature_map"``).
    dataset : MultiLabelDataset
        The samples, with the transform to apply (give the training split its *evaluation* transform: a cache
        holds one feature map per image).
    batch_size, device, num_workers
        How the backbone is run.

    Returns
    -------
    ArrayDataset
        Inputs ``float32 [N, D, H, W]`` (``is_image=False``, no transform), the same ``targets``,
        ``known_mask`` and ``class_names``; named ``"<name>[features]"``.

    Examples
    --------
    >>> import numpy as np
    >>> from labelwise.data import ArrayDataset
    >>> from labelwise.models import Backbone
    >>> data = ArrayDataset(np.zeros((2, 3, 32, 32), np.float32), np.eye(2, dtype=np.uint8), ["a", "b"])
    >>> cached = cache_feature_maps(Backbone("test_resnet"), data)
    >>> cached.class_names, cached.targets.tolist()
    (['a', 'b'], [[1, 0], [0, 1]])
    """
    t0 = time.perf_counter()
    maps = extract_feature_maps(backbone, dataset, batch_size=batch_size, device=device, num_workers=num_workers)
    name = f"{getattr(dataset, 'name', 'dataset')}[features]"
    cached = ArrayDataset(maps, dataset.targets, list(dataset.class_names), is_image=False,
                          known_mask=getattr(dataset, "known_mask", None), name=name)
    logger.info("cached %d feature maps %s of %s in %.1f s (%.0f MB)", len(maps), tuple(maps.shape[1:]),
                getattr(dataset, "name", "dataset"), time.perf_counter() - t0, maps.numel() * 4 / 2**20)
    return cached
