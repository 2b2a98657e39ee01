"""Models: timm backbones, heads and tabular models behind ``create_model(name, num_classes=C, **kwargs)``.

Every model's ``forward`` returns a dict with ``"logits"`` ``[B, C]`` (image models add ``"features"``, the
pooled ``[B, D]``, and ``"feature_map"`` ``[B, D, H, W]``); :class:`LogitsOnly` turns it into a plain tensor
for ONNX / TorchScript export. ``model.param_groups()`` returns ``{"backbone": [...], "head": [...]}``.

Registered models
-----------------
``ofml``
    OFML baseline: timm backbone + global pooling (``pooling="avg" | "max" | "avgmax" | "catavgmax"``) +
    linear classifier (``dropout``, ``bias``, ``logits_bn``).
``ofml_cosine``
    The same with a cosine classifier: normalised weights and pooled features, ``logits = scale * cos``
    (``scale=30.0``, ``learn_scale=False``, ``bias=False``).
``mlp``
    Tabular MLP (``in_features``, ``hidden=(256,)``, ``dropout=0.2``, ``batchnorm=False``, ``activation``).
``c2ae``, ``mpvae``, ``paca``, ``clif``, ``dela``
    The deep tabular models of the batch-selection study, each with its own loss (``docs/tabular_models.md``).
``ssca``
    DLFL's semantic spatial cross-attention head (``num_modules`` S, ``scale`` gamma; ``docs/dlfl.md``).
``two_stage_transformer`` (alias ``two_stage``)
    CNN + transformer head with 2-D relative position encoding and label-query decoder (``docs/two_stage.md``).
``linear_probe_vit``, ``vpt_shallow``, ``vpt_deep``, ``gvpt``, ``mlvpt``
    Frozen ViT with prompts / group prompts and the group-aware MoE head (``docs/mlvpt.md``).
``krt``, ``ci_gcn``, ``agcn``, ``l2p``
    The class-incremental comparison models (``docs/continual.md``): KRT's class-token cross-attention head,
    CSC's class-incremental GCN head, AGCN's GCN classifier head, and L2P's prompt pool on a frozen ViT.

Image models share the backbone options ``backbone="resnet18"`` (any timm name), ``pretrained=False`` (hub
download), ``weights=None`` (local ``.safetensors`` / state-dict file, never unpickled), ``weights_strict=True``
and ``backbone_kwargs={}`` (passed to ``timm.create_model``). A training run started from ``model.weights`` also
loads the head of a whole labelwise model and reports every tensor (:mod:`labelwise.models.initial_weights`).

Adding a head (image model)
---------------------------
Write one module ``labelwise/models/heads/<name>.py``; the head takes ``(in_features, num_classes, *,
options...)`` and maps the feature map ``[B, D, H, W]`` to a dict with ``"logits"`` (plus ``"features"`` and any
method-specific extras such as per-label features or attention maps)::

    from ..registry import register_head, register_image_model
    from .cosine import CosineLinear          # reuse the normalised classifier with a scale (SSCA's gamma)

    @register_head("ssca")
    class SSCAHead(nn.Module):
        def __init__(self, in_features, num_classes, *, num_modules=1, scale=30.0): ...
        def forward(self, feature_map):       # [B, D, H, W]
            ...
            return {"logits": logits, "label_features": label_features}

    register_image_model("ssca", SSCAHead)    # create_model("ssca", num_classes=20, backbone="resnet101")

then import it in ``heads/__init__.py``. A head with several outputs the loss should see returns
``"loss_logits"`` (a list of ``[B, C]`` tensors) next to ``"logits"``. If the parameters of the head must
not count as "backbone" for the learning rates, nothing else is needed: :class:`ImageClassifier` splits
``backbone`` and ``head`` parameters.

Adding a model that is not backbone + head
------------------------------------------
(a prompted frozen ViT, a tabular model): a module ``models/<name>.py`` or ``models/tabular/<name>.py`` with
``@register_model("<name>")`` on a class or factory taking ``(*, num_classes, **options)``, imported from
the package ``__init__``. Tabular models take ``in_features``; a model that needs the targets during
training (C2AE, MPVAE) sets ``needs_targets = True`` and accepts ``forward(x, targets=None)``; a model with
its own objective implements ``loss(outputs, batch, criterion) -> [B]``. Reuse :class:`Backbone` for any
timm feature extractor and :func:`~labelwise.models.weights.load_weights` for local weights.

Examples
--------
>>> import torch
>>> from labelwise.models import create_model, LogitsOnly
>>> model = create_model("ofml_cosine", num_classes=20, backbone="test_resnet", scale=30.0)
>>> out = model(torch.randn(2, 3, 64, 64))
>>> out["logits"].shape, out["features"].shape, out["feature_map"].shape
(torch.Size([2, 20]), torch.Size([2, 96]), torch.Size([2, 96, 2, 2]))
>>> LogitsOnly(model)(torch.randn(1, 3, 64, 64)).shape
torch.Size([1, 20])
"""

from . import gated_prompt_vit, heads, kv_prompt_vit, prompt_pool, prompted_vit, tabular  # noqa: F401  (importing registers the heads and models)
from .backbone import Backbone, PretrainedUnavailableError
from .classifier import ImageClassifier, LogitsOnly
from .complexity import Complexity, count_flops, count_parameters, model_complexity
from .heads import (
    CosineHead,
    CosineLinear,
    GlobalPool,
    GroupMoEHead,
    LinearHead,
    SSCAHead,
    TwoStageTransformerHead,
    global_pool,
)
from .prompt_pool import L2PClassifier, PromptPool
from .prompted_vit import PromptedViT
from .registry import (
    HEADS,
    MODELS,
    create_model,
    list_heads,
    list_models,
    register_head,
    register_image_model,
    register_model,
)
from .tabular import C2AE, CLIF, DELA, MLP, MPVAE, PACA
from .weights import LoadResult, UnsafeWeightsError, load_weights, read_state_dict

__all__ = [
    "MODELS",
    "HEADS",
    "create_model",
    "list_models",
    "list_heads",
    "register_model",
    "register_head",
    "register_image_model",
    "Backbone",
    "PretrainedUnavailableError",
    "ImageClassifier",
    "LogitsOnly",
    "LinearHead",
    "CosineHead",
    "CosineLinear",
    "SSCAHead",
    "TwoStageTransformerHead",
    "GroupMoEHead",
    "PromptedViT",
    "PromptPool",
    "L2PClassifier",
    "GlobalPool",
    "global_pool",
    "MLP",
    "C2AE",
    "MPVAE",
    "PACA",
    "CLIF",
    "DELA",
    "load_weights",
    "read_state_dict",
    "LoadResult",
    "UnsafeWeightsError",
    "Complexity",
    "count_parameters",
    "count_flops",
    "model_complexity",
]
