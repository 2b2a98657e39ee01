"""Registry, construction, validation errors and repr of the losses."""

import pytest
import torch

from labelwise.losses import (
    LOSSES,
    AsymmetricLoss,
    AsymmetricPolynomialLoss,
    BCELoss,
    FocalLoss,
    WeightedBCELoss,
    binary_cross_entropy,
    create_loss,
    list_losses,
)
from labelwise.registry import OptionError, Registry


def test_registry_names_and_classes():
    assert isinstance(LOSSES, Registry) and LOSSES.kind == "loss"
    assert list_losses() == ["apl", "asl", "bce", "focal", "weighted_bce"]
    assert isinstance(create_loss("bce"), BCELoss)
    assert isinstance(create_loss("FOCAL", gamma=1.0), FocalLoss)
    assert isinstance(create_loss("asl", gamma_pos=0), AsymmetricLoss)
    assert isinstance(create_loss("apl", gamma_neg=2), AsymmetricPolynomialLoss)
    assert isinstance(create_loss("weighted_bce", positive_ratio=[0.1, 0.5]), WeightedBCELoss)


def test_unknown_loss_is_named():
    with pytest.raises(KeyError, match="unknown loss 'alp'.*did you mean.*'apl'"):
        create_loss("alp")
    with pytest.raises(KeyError, match="registered: apl, asl, bce, focal, weighted_bce"):
        create_loss("hinge")


def test_unknown_setting_is_named():
    with pytest.raises(OptionError, match=r"'gama' of loss 'focal' \(did you mean 'gamma'\?\); accepted: alpha, gamma, reduction"):
        create_loss("focal", gama=2)
    with pytest.raises(TypeError, match="positional"):
        AsymmetricLoss(4)  # settings are keyword-only


def test_repr_shows_settings():
    assert repr(BCELoss()) == "BCELoss(reduction='mean')"
    assert "pos_weight=Tensor(shape=(3,))" in repr(BCELoss(pos_weight=torch.ones(3)))
    assert repr(FocalLoss(gamma=1.5)) == "FocalLoss(gamma=1.5, alpha=None, reduction='mean')"
    assert repr(AsymmetricLoss(gamma_neg=2, gamma_pos=0, clip=None, reduction="batchmean")) == (
        "AsymmetricLoss(gamma_neg=2.0, gamma_pos=0.0, clip=0.0, eps=1e-08, "
        "disable_torch_grad_focal_loss=False, reduction='batchmean')"
    )
    r = repr(AsymmetricPolynomialLoss())
    for part in ("gamma_neg=4.0", "gamma_pos=0.0", "clip=0.05", "eps_pos=1.0", "eps_pos_pow=-2.5", "eps_neg=0.0",
                 "disable_torch_grad_focal_loss=True", "reduction='sum'"):
        assert part in r
    assert repr(WeightedBCELoss([0.2, 0.3])) == "WeightedBCELoss(num_classes=2, reduction='batchmean')"


def test_default_reductions():
    assert BCELoss().reduction == "mean"
    assert FocalLoss().reduction == "mean"
    assert AsymmetricLoss().reduction == "sum"
    assert AsymmetricPolynomialLoss().reduction == "sum"
    assert WeightedBCELoss([0.5]).reduction == "batchmean"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: BCELoss(reduction="avg"), "unknown reduction 'avg'"),
        (lambda: FocalLoss(gamma=-1), "gamma must be a finite non-negative"),
        (lambda: FocalLoss(alpha=1.5), "alpha must be in"),
        (lambda: AsymmetricLoss(gamma_neg=-0.1), "gamma_neg"),
        (lambda: AsymmetricLoss(clip=1.0), "clip"),
        (lambda: AsymmetricLoss(eps=0), "eps"),
        (lambda: AsymmetricLoss(smoothing=1.0), "smoothing"),
        (lambda: AsymmetricPolynomialLoss(gamma_pos=float("nan")), "gamma_pos"),
        (lambda: AsymmetricPolynomialLoss(eps_pos=float("inf")), "eps_pos"),
        (lambda: WeightedBCELoss([0.2, 1.2]), r"class\(es\) \[1\]"),
        (lambda: WeightedBCELoss([[0.2]]), "1-D"),
    ],
)
def test_bad_settings_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_inputs_raise():
    x = torch.zeros(2, 3)
    loss = AsymmetricLoss()
    with pytest.raises(ValueError, match=r"targets shape \(2, 4\) does not match logits shape \(2, 3\)"):
        loss(x, torch.zeros(2, 4))
    with pytest.raises(TypeError, match="mask must have dtype torch.bool"):
        loss(x, x, torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"mask shape \(4,\) is not broadcastable"):
        loss(x, x, torch.ones(4, dtype=torch.bool))
    with pytest.raises(TypeError, match="floating point"):
        loss(torch.zeros(2, 3, dtype=torch.long), x)
    with pytest.raises(ValueError, match="at least one dimension"):
        loss(torch.tensor(0.0), torch.tensor(0.0))
    with pytest.raises(ValueError, match="pos_weight of shape"):
        binary_cross_entropy(x, x, pos_weight=torch.ones(5))
    with pytest.raises(ValueError, match="positive_ratio has 2 classes but logits have 3"):
        WeightedBCELoss([0.1, 0.2])(x, x)


def test_integer_and_bool_targets_are_accepted():
    x = torch.randn(3, 4)
    y = torch.randint(0, 2, (3, 4))
    for loss in (BCELoss(), FocalLoss(), AsymmetricLoss(), AsymmetricPolynomialLoss()):
        torch.testing.assert_close(loss(x, y), loss(x, y.float()))
        torch.testing.assert_close(loss(x, y.bool()), loss(x, y.float()))


def test_buffers_follow_the_module():
    loss = BCELoss(pos_weight=torch.ones(3))
    assert loss.to(torch.float64).pos_weight.dtype == torch.float64
    assert "positive_ratio" in WeightedBCELoss([0.1, 0.2]).state_dict()


def test_losses_are_scriptable_free_modules():
    """No parameters: a criterion adds nothing to the optimiser."""
    for name in ("bce", "focal", "asl", "apl"):
        assert list(create_loss(name).parameters()) == []
