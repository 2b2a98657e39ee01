"""The Protocols of labelwise.protocols match the classes that implement the hand-offs."""

from __future__ import annotations

import doctest

import numpy as np
import torch

from labelwise import protocols
from labelwise.data import ArrayDataset, collate_batch
from labelwise.engine import Callback, RandomBatchSampler, Trainer
from labelwise.models import create_model
from labelwise.protocols import (
    Batch,
    BatchSampler,
    Dataset,
    ModelOutputs,
    MultiLabelModel,
    Sample,
    StrategyTrainerView,
    TrainerView,
)
from labelwise.sampling import create_sampler


def _data():
    rng = np.random.default_rng(0)
    return ArrayDataset(rng.normal(size=(8, 5)).astype(np.float32), (rng.random((8, 3)) > 0.5).astype(np.uint8),
                        ["a", "b", "c"])


def test_datasets_and_their_views_are_datasets():
    ds = _data()
    assert isinstance(ds, Dataset) and isinstance(ds.view([1, 2]), Dataset)
    assert not isinstance(np.zeros(3), Dataset)
    sample = ds[0]
    assert set(sample) == set(Sample.__annotations__)
    batch = collate_batch([ds[i] for i in range(4)])
    assert set(Batch.__required_keys__) <= set(batch)


def test_models_return_model_outputs():
    model = create_model("mlp", num_classes=3, in_features=5)
    assert isinstance(model, MultiLabelModel)
    outputs = model(torch.zeros(2, 5))
    assert set(ModelOutputs.__required_keys__) <= set(outputs) and outputs["logits"].shape == (2, 3)


def test_batch_samplers_and_the_trainer():
    assert isinstance(RandomBatchSampler(8, 2), BatchSampler)
    assert isinstance(create_sampler("adaptive", _data(), batch_size=2), BatchSampler)
    assert not isinstance([[0, 1]], BatchSampler)
    assert isinstance(Trainer(), TrainerView)
    assert not isinstance(Callback(), TrainerView)


def test_the_trainer_is_what_continual_strategies_read():
    trainer = Trainer()
    assert isinstance(trainer, StrategyTrainerView)
    assert trainer.fabric is None and callable(trainer.predict)

    class CallbackView:  # a TrainerView without prediction: enough for callbacks, not for strategies
        config = model = output_dir = None
        callbacks: list = []
        epoch = global_step = world_size = global_rank = 0
        is_global_zero = True
        device = torch.device("cpu")

        def all_gather(self, tensor):
            return tensor

    assert isinstance(CallbackView(), TrainerView) and not isinstance(CallbackView(), StrategyTrainerView)


def test_doctests():
    assert doctest.testmod(protocols).failed == 0
