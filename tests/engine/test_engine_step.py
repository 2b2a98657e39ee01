"""The training step's model contract (labelwise.engine.step): loss_logits, masks, needs_targets, model losses,
reductions - checked against the criterion's own reduction."""

from __future__ import annotations

import pytest
import torch

from labelwise.engine.step import StepLoss, forward_and_loss, loss_terms, model_outputs
from labelwise.losses import create_loss


class TwoHeads(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(3, 4)
        self.b = torch.nn.Linear(3, 4)

    def forward(self, x):
        la, lb = self.a(x), self.b(x)
        return {"logits": (la + lb) / 2, "loss_logits": [la, lb]}


class NeedsTargets(torch.nn.Module):
    needs_targets = True

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 4)
        self.seen: list = []

    def forward(self, x, targets=None):
        self.seen.append(targets)
        return {"logits": self.fc(x)}


class OwnLoss(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 4)

    def forward(self, x):
        return {"logits": self.fc(x)}

    def loss(self, outputs, batch, criterion):
        return (outputs["logits"] - batch["target"]).pow(2).sum(dim=1)


def _batch(mask=True, b=5):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, 3, generator=g)
    y = (torch.rand(b, 4, generator=g) > 0.5).float()
    m = torch.rand(b, 4, generator=g) > 0.3 if mask else None
    return {"input": x, "target": y, "mask": m}


@pytest.mark.parametrize("reduction", ["mean", "sum", "batchmean"])
@pytest.mark.parametrize("mask", [True, False])
def test_reduced_loss_equals_the_criterion_summed_over_loss_logits(reduction, mask):
    torch.manual_seed(0)
    model, batch = TwoHeads(), _batch(mask)
    crit = create_loss("bce", reduction=reduction)
    outputs, terms = forward_and_loss(model, batch, crit)
    expected = sum(crit(lg, batch["target"], batch["mask"]) for lg in outputs["loss_logits"])
    assert torch.allclose(terms.reduce(), expected, atol=1e-6)
    # the DDP form on one process is the same loss
    known = batch["mask"].sum() if mask else batch["target"].numel()
    assert torch.allclose(terms.reduce(known=known, batch_size=5, world_size=1), expected, atol=1e-6)
    assert crit.reduction == reduction  # restored after the element-wise call


def test_per_sample_losses_sum_the_known_element_losses_over_classes_and_terms():
    torch.manual_seed(0)
    model, batch = TwoHeads(), _batch(True)
    crit = create_loss("bce", reduction="sum")
    outputs, terms = forward_and_loss(model, batch, crit)
    elem = sum(torch.nn.functional.binary_cross_entropy_with_logits(lg, batch["target"], reduction="none")
               for lg in outputs["loss_logits"])
    expected = (elem * batch["mask"]).sum(dim=1)
    assert terms.per_sample.shape == (5,) and terms.batch_size == 5 and int(terms.known) == int(batch["mask"].sum())
    assert torch.allclose(terms.per_sample, expected, atol=1e-6)
    assert torch.allclose(terms.total, expected.sum(), atol=1e-5)
    assert terms.denominator == "one"


def test_needs_targets_gets_the_targets_only_while_training():
    model, batch = NeedsTargets(), _batch(False)
    forward_and_loss(model, batch, create_loss("bce"))
    assert model.seen[-1] is batch["target"]
    model_outputs(model, batch["input"])  # prediction: no targets
    assert model.seen[-1] is None


def test_model_loss_replaces_the_criterion():
    torch.manual_seed(0)
    model, batch = OwnLoss(), _batch(False)
    outputs, terms = forward_and_loss(model, batch, create_loss("bce"))
    expected = (outputs["logits"] - batch["target"]).pow(2).sum(dim=1)
    assert torch.allclose(terms.per_sample, expected)
    assert terms.denominator == "batch"
    assert torch.allclose(terms.reduce(), expected.mean())
    _, terms_sum = forward_and_loss(model, batch, create_loss("bce", reduction="sum"))
    assert terms_sum.denominator == "one" and torch.allclose(terms_sum.reduce(), expected.sum())


def test_model_loss_of_the_wrong_shape_is_named():
    class Bad(OwnLoss):
        def loss(self, outputs, batch, criterion):
            return outputs["logits"].sum()

    with pytest.raises(ValueError, match=r"Bad.loss must return per-sample losses \[B=5\]"):
        forward_and_loss(Bad(), _batch(False), create_loss("bce"))


def test_scalar_criterion_is_used_as_is():
    torch.manual_seed(0)
    model, batch = TwoHeads(), _batch(False)

    def crit(logits, targets, mask=None):  # no reduction attribute: its own (scalar) reduction
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)

    outputs, terms = forward_and_loss(model, batch, crit)
    assert terms.denominator == "scalar" and terms.per_sample is None
    assert torch.equal(terms.reduce(), crit(outputs["loss_logits"][0], batch["target"]) + crit(outputs["loss_logits"][1], batch["target"]))


def test_elementwise_criterion_without_reduction_counts_as_mean():
    model, batch = TwoHeads(), _batch(True)

    def crit(logits, targets, mask=None):
        out = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        return out * mask

    _, terms = forward_and_loss(model, batch, crit)
    assert terms.denominator == "known"
    assert torch.allclose(terms.reduce(), terms.total / batch["mask"].sum())


def test_bad_contracts_are_named():
    with pytest.raises(TypeError, match="Linear.forward must return a dict with 'logits', got Tensor"):
        forward_and_loss(torch.nn.Linear(3, 4), _batch(False), create_loss("bce"))
    with pytest.raises(ValueError, match="reduction='none'; a training step needs one of mean, sum, batchmean"):
        loss_terms(TwoHeads(), {"logits": torch.zeros(5, 4)}, _batch(False), create_loss("bce", reduction="none"))


def test_ddp_form_scales_by_the_world_size():
    t = StepLoss(torch.tensor(12.0), torch.tensor([5.0, 7.0]), "known", known=6, batch_size=2)
    # 2 processes, 8 known entries in the global batch: each process's loss is its sum * 2 / 8
    assert float(t.reduce(known=8, batch_size=4, world_size=2)) == 3.0
    assert float(t.reduce(known=torch.tensor(8), world_size=2)) == 3.0
    assert float(t.reduce()) == 2.0  # this batch's own count
    assert float(t.reduce(known=0)) == 12.0  # the denominator is at least 1
