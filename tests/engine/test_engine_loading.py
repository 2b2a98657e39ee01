"""The trainer's loaders: num_workers 'auto', per-batch seeds (same batches whatever the worker count),
persistent workers reused across epochs, and the GPU-path options on CPU (channels_last, precision 'auto')."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from labelwise.data import ArrayDataset, ImageListDataset
from labelwise.data.transforms import build_transforms
from labelwise.engine import Trainer, TrainerConfig
from labelwise.engine.loading import holds_inputs_in_memory, resolve_num_workers, usable_cpus
from labelwise.engine.samplers import RandomBatchSampler, ShardedBatchSampler
from labelwise.losses import create_loss
from labelwise.models import create_model

pytestmark = pytest.mark.filterwarnings("ignore:average precision is undefined")


def _images(tmp_path, n=12):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = tmp_path / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(p)
        paths.append(p.name)
    y = (rng.random((n, 3)) < 0.5).astype(np.uint8)
    ds = ImageListDataset(paths, y, ["a", "b", "c"], root=tmp_path)
    ds.transform = build_transforms(train=True, image_size=32, preset="mlvpt")  # crop, flip, RandAugment, Cutout
    return ds


def test_auto_workers_follow_the_cores_and_skip_in_memory_data(tmp_path):
    images = _images(tmp_path, 2)
    arrays = ArrayDataset(np.zeros((4, 2), dtype="float32"), np.eye(4, 2, dtype=int), ["a", "b"])
    assert holds_inputs_in_memory(arrays.view([0, 1])) and not holds_inputs_in_memory(images.view([1]))
    cores = usable_cpus()
    assert resolve_num_workers("auto", images) == (cores if cores >= 2 else 0)
    assert resolve_num_workers("auto", images, processes_per_node=cores) == 0
    assert resolve_num_workers("auto", arrays) == 0 and resolve_num_workers(3, arrays) == 3
    assert TrainerConfig().num_workers == "auto" and TrainerConfig().pin_memory == "auto"
    with pytest.raises(ValueError, match="num_workers"):
        TrainerConfig(num_workers=-1)
    with pytest.raises(ValueError, match="num_workers"):
        TrainerConfig(num_workers="many")


def _epoch_batches(ds, workers, epoch=0, skip=0):
    trainer = Trainer(num_workers=workers, batch_size=4, accelerator="cpu", progress=False)
    trainer._loaders = {}  # as inside fit
    sampler = RandomBatchSampler(len(ds), 4, seed=0)
    sampler.set_epoch(epoch)
    shard = ShardedBatchSampler(sampler, rank=0, world_size=1, skip=skip)
    loader = trainer._loader(ds, shard, seed_parts=[0, epoch, 0], offset=skip, cache="train")
    out = [(b["index"].tolist(), b["input"].clone()) for b in loader]
    trainer._close_loaders()
    return out


def test_augmentations_do_not_depend_on_the_worker_count_and_resume_mid_epoch(tmp_path):
    ds = _images(tmp_path)
    one, two = _epoch_batches(ds, 1), _epoch_batches(ds, 2)
    assert [i for i, _ in one] == [i for i, _ in two]
    for (_, a), (_, b) in zip(one, two):
        assert torch.equal(a, b)
    resumed = _epoch_batches(ds, 2, skip=1)  # a resumed epoch: the remaining batches, augmented the same
    assert [i for i, _ in resumed] == [i for i, _ in one[1:]]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(resumed, one[1:]))
    assert not torch.equal(_epoch_batches(ds, 1, epoch=1)[0][1], one[0][1])  # another epoch, other draws


def test_fit_reuses_persistent_workers_across_epochs(tmp_path):
    ds = _images(tmp_path)
    seen = []

    class Spy(Trainer):
        def _loader(self, data, batch_sampler, **kw):
            loader = super()._loader(data, batch_sampler, **kw)
            seen.append((kw.get("cache"), id(loader), loader.num_workers, loader.persistent_workers))
            return loader

    model = create_model("ofml", num_classes=3, backbone="test_resnet")
    trainer = Spy(max_epochs=2, batch_size=4, num_workers=1, accelerator="cpu", progress=False, tensorboard=False)
    trainer.fit(model, create_loss("bce"), ds, ds.view(np.arange(4), transform=build_transforms(train=False, image_size=32)))
    train = [s for s in seen if s[0] == "train"]
    evals = [s for s in seen if s[0] == "eval"]
    assert len(train) == 2 and train[0][1] == train[1][1] and train[0][2:] == (1, True)
    assert len(evals) == 2 and evals[0][1] == evals[1][1]
    assert trainer._loaders is None  # workers stopped at the end of fit


def test_channels_last_and_precision_options_on_cpu():
    x = np.random.default_rng(0).normal(size=(16, 3, 16, 16)).astype("float32")
    y = np.eye(16, 2, dtype=np.uint8)
    ds = ArrayDataset(x, y, ["a", "b"])
    seen = []
    model = create_model("ofml", num_classes=2, backbone="test_resnet")
    trainer = Trainer(max_epochs=1, batch_size=8, accelerator="cpu", progress=False, tensorboard=False,
                      channels_last=True)
    assert trainer.precision == "32-true"  # 'auto' on CPU
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    trainer.fit(model, create_loss("bce"), ds)
    assert seen and all(seen)
    assert TrainerConfig().resolved_precision("cuda", bf16_supported=True) == "bf16-mixed"
    assert TrainerConfig().resolved_precision("cuda", bf16_supported=False) == "32-true"
