"""``labelwise.registry``: one ``Registry.create`` / ``check_options`` for every registry of the package.

The mechanism on small local registries first (signature rules, ``**kwargs``, declared options, supplied
arguments, the error's text and type), then good and bad options through each registry the package has.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from labelwise.errors import classify, one_line
from labelwise.registry import OptionError, Registry, signature_options


def _losses() -> Registry:
    reg = Registry("loss")

    @reg.register("focal")
    class Focal:
        def __init__(self, *, gamma: float = 2.0, alpha: float | None = None, reduction: str = "mean") -> None:
            self.gamma, self.alpha, self.reduction = gamma, alpha, reduction

    return reg


# -- the mechanism ------------------------------------------------------------------------------------
def test_create_builds_with_good_options_and_names_a_bad_one():
    reg = _losses()
    assert reg.create("focal", gamma=1.0).gamma == 1.0
    assert reg.create("FOCAL").reduction == "mean"  # names are case-insensitive, as get()
    with pytest.raises(OptionError) as info:
        reg.create("focal", gama=1.0)
    assert str(info.value) == ("unknown option 'gama' of loss 'focal' (did you mean 'gamma'?); "
                               "accepted: alpha, gamma, reduction")
    err = info.value
    assert (err.kind, err.name, err.unknown, err.accepted) == ("loss", "focal", ["gama"], ["alpha", "gamma", "reduction"])


def test_unknown_name_is_the_same_key_error_as_get():
    reg = _losses()
    with pytest.raises(KeyError) as created:
        reg.create("focla", gamma=1.0)
    with pytest.raises(KeyError) as got:
        reg.get("focla")
    assert str(created.value) == str(got.value)
    assert "did you mean 'focal'" in str(created.value)


def test_every_unknown_option_is_named_and_a_hint_only_when_close():
    reg = _losses()
    with pytest.raises(OptionError) as info:
        reg.create("focal", gama=1.0, zzz=3)
    text = str(info.value)
    assert "'gama' of loss 'focal' (did you mean 'gamma'?)" in text
    assert "unknown option 'zzz' of loss 'focal'; accepted: alpha, gamma, reduction" in text
    assert info.value.unknown == ["gama", "zzz"]


def test_check_options_with_a_context_names_the_dotted_key():
    reg = _losses()
    reg.check_options("focal", {"gamma": 1.0, "alpha": 0.25}, context="loss")  # good: nothing raised
    with pytest.raises(OptionError) as info:
        reg.check_options("focal", ["gamma", "redution"], context="loss")
    assert info.value.errors == [
        ("loss.redution", "unknown option of loss 'focal' (did you mean 'reduction'?); accepted: alpha, gamma, reduction")
    ]
    assert str(info.value).startswith("loss.redution: unknown option of loss 'focal'")


def test_option_error_is_a_user_error_shown_in_one_line():
    err = OptionError("model", "ofml", ["poolin"], ["pooling", "dropout"])
    assert isinstance(err, ValueError) and isinstance(err, TypeError)
    assert classify(err) == "user"  # the CLI prints "labelwise: error: ..." with exit status 2
    assert one_line(err) == str(err)
    again = pickle.loads(pickle.dumps(err))  # crosses DataLoader worker processes
    assert type(again) is OptionError and str(again) == str(err) and again.errors == err.errors


def test_kwargs_function_accepts_anything_unless_it_declares():
    reg = Registry("dataset", supplied=("root", "split"))

    @reg.register("csv")
    def csv(root=None, split="train", **options):
        return options

    assert reg.options("csv") is None
    assert reg.create("csv", root="r", split="s", anything=1) == {"anything": 1}

    @reg.register("declared")
    def declared(root=None, split="train", **options):
        return options

    declared.accepted_options = ("header", "delimiter")
    assert reg.create("declared", root=None, header=True) == {"header": True}
    with pytest.raises(OptionError, match=r"'delimter' of dataset 'declared' \(did you mean 'delimiter'\?\); "
                                          r"accepted: delimiter, header"):
        reg.create("declared", delimter=",")


def test_class_kwargs_are_followed_into_the_base_classes():
    class Base:
        def __init__(self, data, *, batch_size, seed=0):
            self.seed = seed

    class Middle(Base):
        def __init__(self, data, *, k=5, **kwargs):
            super().__init__(data, **kwargs)

    class Leaf(Middle):
        def __init__(self, data, *, num_related=None, **kwargs):
            super().__init__(data, **kwargs)

    class Open:  # **kwargs up to object: anything goes
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    assert signature_options(Leaf) == ["batch_size", "data", "k", "num_related", "seed"]
    assert signature_options(Leaf, skip=["data", "batch_size"]) == ["k", "num_related", "seed"]
    assert signature_options(Open) is None
    reg = Registry("sampler", supplied=("data", "batch_size"))
    reg.register("leaf")(Leaf)
    assert reg.options("leaf") == ["k", "num_related", "seed"]
    assert reg.create("leaf", data=[1], batch_size=2, seed=4, k=3).seed == 4
    with pytest.raises(OptionError, match=r"unknown option 'sed' of sampler 'leaf' \(did you mean 'seed'\?\)"):
        reg.create("leaf", data=[1], batch_size=2, sed=4)


def test_supplied_arguments_are_passed_by_create_but_are_not_user_options():
    reg = Registry("model", supplied=("num_classes",))

    @reg.register("mlp")
    def mlp(*, num_classes, hidden=8, pos_only_is_not_an_option=None):
        return num_classes, hidden

    assert reg.create("mlp", num_classes=3, hidden=4) == (3, 4)
    assert "num_classes" not in reg.options("mlp")
    with pytest.raises(OptionError, match=r"model\.num_classes: unknown option of model 'mlp'"):
        reg.check_options("mlp", {"num_classes": 3}, context="model")  # the config sets it, not the user


def test_positional_only_parameters_are_not_options():
    def f(x, /, *, y=1):
        return x

    assert signature_options(f) == ["y"]


def test_registry_still_behaves_like_a_collection_of_names():
    reg = _losses()
    assert "focal" in reg and "FOCAL" in reg and 3 not in reg
    assert list(reg) == reg.names() == ["focal"] and len(reg) == 1
    with pytest.raises(KeyError, match="already registered"):
        reg.register("focal")(lambda: None)


# -- every registry of the package -------------------------------------------------------------------
def test_models():
    from labelwise.models import MODELS, create_model

    model = create_model("mlp", num_classes=3, in_features=5, hidden=(8,))
    assert model.create_args["hidden"] == (8,)
    with pytest.raises(OptionError, match=r"unknown option 'hiden' of model 'mlp' \(did you mean 'hidden'\?\)"):
        create_model("mlp", num_classes=3, in_features=5, hiden=(8,))
    # an image model: its own options and its head's (the factory takes **head_options and declares them)
    assert {"backbone", "pretrained", "pooling", "dropout"} <= set(MODELS.options("ofml"))
    assert "num_classes" not in MODELS.options("ofml") and "in_features" not in MODELS.options("ofml")
    with pytest.raises(OptionError, match=r"'poolin' of model 'ofml' \(did you mean 'pooling'\?\); accepted: "):
        create_model("ofml", num_classes=3, backbone="test_resnet", poolin="max")
    with pytest.raises(OptionError, match=r"'backbon' of model 'ofml' \(did you mean 'backbone'\?\)"):
        create_model("ofml", num_classes=3, backbon="test_resnet")


def test_losses():
    from labelwise.losses import create_loss

    assert create_loss("asl", gamma_neg=2).gamma_neg == 2.0
    with pytest.raises(OptionError, match=r"'gama_neg' of loss 'asl' \(did you mean 'gamma_neg'\?\)"):
        create_loss("asl", gama_neg=2)


def test_datasets():
    from labelwise.data import DATASETS, load_dataset

    with pytest.raises(OptionError, match=r"'n_trian' of dataset 'multidigits20' \(did you mean 'n_train'\?\)"):
        load_dataset("multidigits20", split="train", n_trian=10)  # checked before anything is generated
    assert "root" not in DATASETS.options("multidigits20") and "n_train" in DATASETS.options("multidigits20")
    assert DATASETS.options("csv") is None  # csv validates its own **options


def test_samplers():
    from labelwise.sampling import SAMPLERS, create_sampler, sampler_options

    y = np.array([[1, 0], [0, 1], [1, 1], [0, 1]])
    assert create_sampler("chain", y, batch_size=2, num_related=1, warmup_epochs=0,
                          imbalance_weights=False).warmup_epochs == 0
    with pytest.raises(OptionError, match=r"'selection_presure' of sampler 'adaptive' "
                                          r"\(did you mean 'selection_pressure'\?\)"):
        create_sampler("adaptive", y, batch_size=2, selection_presure=4.0)
    with pytest.raises(OptionError, match="unknown option 'warmup_epochs' of sampler 'random'; accepted: "
                                          "drop_last, seed, shuffle"):
        create_sampler("random", y, batch_size=2, warmup_epochs=1)  # random takes no selection options
    assert sampler_options("random") == ["shuffle"]
    assert set(sampler_options("chain")) == set(SAMPLERS.options("chain")) - {"seed", "drop_last", "weights"}


def test_continual_strategies():
    from labelwise.continual.strategies import STRATEGIES, create_strategy

    assert create_strategy("kd", alpha=1.0).alpha == 1.0  # kd(**options) forwards to rebll's options
    assert STRATEGIES.options("kd") == STRATEGIES.options("rebll")
    with pytest.raises(OptionError, match=r"'lambda_ew' of continual strategy 'ewc' \(did you mean 'lambda_ewc'\?\)"):
        create_strategy("ewc", lambda_ew=1.0)
    with pytest.raises(OptionError, match="'memory_per_class' of continual strategy 'ewc'"):
        create_strategy("ewc", memory_per_class=2)  # the base class's option, not forwarded by EWC


def test_callbacks():
    from labelwise.engine import CALLBACKS

    assert CALLBACKS.create("epoch_checkpoints", every=2).every == 2
    with pytest.raises(OptionError, match=r"'evry' of callback 'epoch_checkpoints' \(did you mean 'every'\?\); "
                                          r"accepted: every"):
        CALLBACKS.create("epoch_checkpoints", evry=2)


def test_online_methods():
    from labelwise.continual.online import METHODS, OnlineMethod
    from labelwise.continual.online.cli import parse_method

    assert METHODS.create("prs") == OnlineMethod(memory="prs", ewc=False, joint=False)
    assert METHODS.create("multitask").joint and METHODS.create("ewc").ewc
    with pytest.raises(OptionError, match="unknown option 'memory' of online method 'prs'; accepted: none"):
        METHODS.create("prs", memory="crs")
    with pytest.raises(ValueError) as info:
        parse_method("pr")
    assert str(METHODS.names()) in str(info.value)  # the error lists every method


def test_online_memory_kinds():
    from labelwise.continual.online import MEMORY_KINDS, create_memory

    assert MEMORY_KINDS.options("gss") == ["empty_score", "n_samples", "seed"]
    assert MEMORY_KINDS.create("gss", capacity=5, num_classes=2, n_samples=3).n_samples == 3
    assert create_memory("gss", 5, 2, gss_samples=4, q=0.5).n_samples == 4  # q is PRS's: not given to GSS
    with pytest.raises(OptionError, match=r"'rh' of memory 'ocdm' \(did you mean 'rho'\?\)"):
        MEMORY_KINDS.create("ocdm", capacity=5, num_classes=2, rh=0.5)
    with pytest.raises(ValueError, match="unknown memory 'mir'.*registered: crs, exstream, gss, ocdm, prs"):
        create_memory("mir", 5, 2)


def test_evaluator_kinds():
    from labelwise.metrics import REPORTS, Evaluator
    from labelwise.metrics.evaluator import metric_names

    assert REPORTS.names() == ["mulan", "multilabel", "pedestrian"]
    ev = Evaluator(kind="multilabel", ap_method="ranked")
    ev.update([[0.9, 0.2], [0.4, 0.7]], [[1, 0], [0, 1]])
    assert ev.compute()["mAP"] == pytest.approx(1.0)
    with pytest.raises(OptionError, match=r"'ap_methd' of evaluator kind 'multilabel' \(did you mean 'ap_method'\?\)"):
        Evaluator(kind="multilabel", ap_methd="ranked")  # at construction, not after the epoch
    with pytest.raises(KeyError, match="unknown evaluator kind 'mulam'; did you mean 'mulan'"):
        metric_names("mulam")


def test_trainer_config_evaluator_choices_are_the_registered_kinds():
    from typing import get_args

    from labelwise.engine.config import TrainerConfig
    from labelwise.metrics import REPORTS

    assert sorted(get_args(TrainerConfig.model_fields["evaluator"].annotation)) == REPORTS.names()
