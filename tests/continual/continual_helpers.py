"""Shared fixtures of the continual tests: a tiny image dataset and a tiny conv net with feature maps."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from labelwise.data import ArrayDataset

NAMES = ["dog", "cat", "bus", "ant", "eel", "fox"]  # alphabetical: ant bus cat dog eel fox


def tiny_images(n: int = 48, seed: int = 0, names: list[str] | None = None) -> ArrayDataset:
    names = names or NAMES
    rng = np.random.default_rng(seed)
    y = (rng.random((n, len(names))) < 0.35).astype(np.uint8)
    y[y.sum(1) == 0, rng.integers(0, len(names))] = 1
    x = rng.normal(size=(n, 3, 8, 8)).astype(np.float32)
    x[:, 0, : len(names), 0] += 2.0 * y  # a learnable signal per class
    return ArrayDataset(x, y, class_names=names)


class TinyNet(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        fmap = torch.relu(self.conv(x.float()))
        feats = fmap.mean(dim=(2, 3))
        return {"logits": self.fc(feats), "features": feats, "feature_map": fmap}


class ConstantLogits(nn.Module):
    """A stub model returning the same logits for every sample (to see which model relabelled what)."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.register_buffer("value", torch.tensor(logits, dtype=torch.float32))
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.value.expand(x.shape[0], -1) + 0 * self.dummy}


TRAINER = {"max_epochs": 1, "batch_size": 8, "lr": 1e-2, "progress": False, "accelerator": "cpu",
           "tensorboard": False, "save_checkpoints": False, "report": False}


# strategies that need their own model (the class-incremental comparison methods): tiny versions for 8x8 images
MODEL_OF_STRATEGY = {
    "krt": ("krt", {"backbone": "test_resnet", "embed_dim": 16, "num_heads": 2}),
    "csc": ("ci_gcn", {"backbone": "test_resnet", "embed_dim": 16}),
    "agcn": ("agcn", {"backbone": "test_resnet", "hidden_dim": 16, "embedding_dim": 8}),
    "l2p": ("l2p", {"backbone": "test_vit", "pool_size": 4, "prompt_length": 2, "top_k": 2,
                    "backbone_kwargs": {"img_size": 8, "patch_size": 4}}),
}


def model_for(strategy: str, num_classes: int = 6) -> nn.Module:
    """The tiny model a strategy runs on in the tests: its own model for krt/csc/agcn/l2p, TinyNet otherwise."""
    if strategy not in MODEL_OF_STRATEGY:
        return TinyNet(num_classes)
    from labelwise.models import create_model

    torch.manual_seed(0)
    name, options = MODEL_OF_STRATEGY[strategy]
    return create_model(name, num_classes=num_classes, **options)
