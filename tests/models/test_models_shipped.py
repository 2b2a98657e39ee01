"""Shipped weights loaded by name: registry lookup, checksum verification, architecture defaults."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from labelwise.models import Backbone
from labelwise.models import shipped as shipped_mod
from labelwise.models.shipped import ChecksumMismatchError, list_shipped, resolve_shipped, sha256_file


def _ship(tmp_path, name="tiny-weights", backbone="test_resnet", kwargs=None):
    body = Backbone(backbone, **(kwargs or {}))
    path = tmp_path / f"{name}.safetensors"
    save_file(body.model.state_dict(), str(path))
    card = {"name": name, "file": path.name, "sha256": sha256_file(path),
            "architecture": {"backbone": backbone, "backbone_kwargs": kwargs or {}}}
    (tmp_path / f"{name}.json").write_text(json.dumps(card))
    return body, path


def test_name_resolves_verifies_and_loads(tmp_path, monkeypatch):
    src, _ = _ship(tmp_path)
    monkeypatch.setattr(shipped_mod, "SHIPPED_DIR", tmp_path)
    assert list_shipped() == ["tiny-weights"]
    dst = Backbone("test_resnet", weights="tiny-weights")
    assert dst.shipped is not None and dst.shipped.name == "tiny-weights"
    for a, b in zip(src.model.state_dict().values(), dst.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_architecture_options_come_from_the_card(tmp_path, monkeypatch):
    kwargs = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 2}
    _ship(tmp_path, "vit-w", "vit_tiny_patch16_224", kwargs)
    monkeypatch.setattr(shipped_mod, "SHIPPED_DIR", tmp_path)
    body = Backbone("vit_tiny_patch16_224", weights="vit-w")  # no kwargs given: the card's are used
    assert body.num_features == 32
    assert body(torch.randn(1, 3, 32, 32)).shape == (1, 32, 4, 4)


def test_checksum_mismatch_raises(tmp_path, monkeypatch):
    _, path = _ship(tmp_path)
    monkeypatch.setattr(shipped_mod, "SHIPPED_DIR", tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match="does not match its card"):
        Backbone("test_resnet", weights="tiny-weights")


def test_unknown_name_and_wrong_backbone(tmp_path, monkeypatch):
    _ship(tmp_path)
    monkeypatch.setattr(shipped_mod, "SHIPPED_DIR", tmp_path)
    with pytest.raises(KeyError, match="no shipped weights named 'nope'.*tiny-weights"):
        Backbone("test_resnet", weights="nope")
    with pytest.raises(ValueError, match="are for backbone 'test_resnet'"):
        Backbone("resnet10t", weights="tiny-weights")


def test_model_config_loads_weights_by_name(tmp_path, monkeypatch):
    from labelwise.models import create_model

    src, _ = _ship(tmp_path)
    monkeypatch.setattr(shipped_mod, "SHIPPED_DIR", tmp_path)
    model = create_model("ofml", num_classes=3, backbone="test_resnet", weights="tiny-weights")
    key = next(iter(src.model.state_dict()))
    assert torch.equal(model.backbone.model.state_dict()[key], src.model.state_dict()[key])


@pytest.mark.parametrize("name", ["md-resnet10t", "md-vit-tiny"])
def test_shipped_file_matches_its_card(name):
    if name not in list_shipped():
        pytest.skip(f"{name} is not shipped yet (run its recipe with --ship, docs/pretrained.md)")
    resolved = resolve_shipped(name)  # verifies the checksum
    assert resolved.path.stat().st_size <= 11 * 2**20
    body = Backbone(resolved.backbone, weights=name)
    assert body.load_result is not None and not body.load_result.missing
