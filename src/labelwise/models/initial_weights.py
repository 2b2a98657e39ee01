"""Start a run from ``model.weights``: load what fits, say what was matched, missing and re-initialised.

The image-model factories load ``weights`` into the backbone (:meth:`Backbone.load_weights
<labelwise.models.Backbone.load_weights>`: the ``backbone.`` part of a whole labelwise model, or a timm/torch
state dict). When the file is a whole labelwise model (a ``checkpoints/best.safetensors`` of an earlier run),
:func:`load_initial_weights` also loads the rest of it (the head) into the new model, so that a run can start
from another run's model:

- tensors of the same name and shape are loaded (``matched``);
- a tensor with another shape (a head trained for another class count) is an error naming the tensors,
  unless ``reinit_head=True`` (``model.reinit_head: true``), which keeps the new model's freshly initialised
  head (``reinitialised``) and loads the backbone only;
- tensors of the model the file does not hold stay as initialised (``missing``), tensors of the file the
  model does not have are ``ignored``.

The file is read with :func:`~labelwise.models.weights.read_state_dict` (never unpickled).

Examples
--------
>>> import os, tempfile
>>> from safetensors.torch import save_file
>>> from labelwise.models import create_model
>>> from labelwise.models.initial_weights import load_initial_weights
>>> src = create_model("ofml", num_classes=4, backbone="test_resnet")
>>> path = os.path.join(tempfile.mkdtemp(), "best.safetensors")
>>> save_file({k: v.contiguous() for k, v in src.state_dict().items()}, path)
>>> new = create_model("ofml", num_classes=4, backbone="test_resnet", weights=path)
>>> report = load_initial_weights(new, path)
>>> len(report.matched) == len(src.state_dict()), report.missing, report.reinitialised
(True, [], [])
>>> other = create_model("ofml", num_classes=2, backbone="test_resnet", weights=path)
>>> load_initial_weights(other, path)
Traceback (most recent call last):
...
ValueError: ... 2 tensor(s) of the model have other shapes than in the file: head.fc.weight: file (4, 96) vs model (2, 96), head.fc.bias: file (4,) vs model (2,) (a checkpoint with another class count?); set model.reinit_head: true to train a new head
>>> load_initial_weights(other, path, reinit_head=True).reinitialised
['head.fc.weight', 'head.fc.bias']
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import torch
from torch import nn

from .weights import clean_state_dict, extract_state_dict, read_state_dict

__all__ = ["InitialWeightsReport", "load_initial_weights"]

logger = logging.getLogger(__name__)

_BACKBONE = "backbone."


@dataclass
class InitialWeightsReport:
    """What :func:`load_initial_weights` (and the backbone's own loading) did, by tensor name of the model.

    Attributes
    ----------
    source : str
        The weights file.
    matched : list of str
        Tensors loaded from the file.
    missing : list of str
        Tensors of the model the file does not provide (left as initialised).
    reinitialised : list of str
        Tensors the file holds with another shape, kept as initialised on request (``reinit_head``).
    ignored : list of str
        Tensors of the file the model does not use (e.g. a pretrained classifier).
    """

    source: str
    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the run log.

        Examples
        --------
        >>> InitialWeightsReport("w.safetensors", matched=["a", "b"], missing=["head.fc.weight"]).summary()
        'model.weights w.safetensors: 2 tensor(s) matched, 1 missing (kept as initialised: head.fc.weight), 0 re-initialised, 0 ignored'
        """

        def names(keys: list[str]) -> str:
            return ", ".join(keys[:6]) + (f", ... ({len(keys) - 6} more)" if len(keys) > 6 else "")

        missing = f" (kept as initialised: {names(self.missing)})" if self.missing else ""
        reinit = f" ({names(self.reinitialised)})" if self.reinitialised else ""
        return (f"model.weights {self.source}: {len(self.matched)} tensor(s) matched, {len(self.missing)} missing"
                f"{missing}, {len(self.reinitialised)} re-initialised{reinit}, {len(self.ignored)} ignored")


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(s) for s in t.shape)


def load_initial_weights(model: nn.Module, path: str | os.PathLike[str], *, reinit_head: bool = False
                         ) -> InitialWeightsReport:
    """Load the non-backbone part of a whole-model weights file into ``model`` and report every tensor.

    Call it on a model built with ``weights=path`` (whose backbone already holds the file's backbone part).

    Parameters
    ----------
    model : nn.Module
        The freshly built model (an :class:`~labelwise.models.ImageClassifier` or any module).
    path : str or path
        The ``model.weights`` file.
    reinit_head : bool
        Keep the model's own initialisation for every tensor outside the backbone (the head), instead of
        loading it from the file; required when the head's shapes differ (another class count).

    Returns
    -------
    InitialWeightsReport

    Raises
    ------
    ValueError
        Tensors of the file and the model share a name but not a shape, and ``reinit_head`` is False; the
        message names the tensors and both shapes.
    """
    source = os.fspath(path)
    file_sd = clean_state_dict(extract_state_dict(read_state_dict(source), source=source))
    target = model.state_dict()
    report = InitialWeightsReport(source)
    whole_model = any(k.startswith(_BACKBONE) for k in file_sd)

    # The backbone part: loaded by the factory (Backbone.load_weights), which recorded what it did.
    body_keys = [k for k in target if k.startswith(_BACKBONE)]
    loader = next(((name, mod) for name, mod in model.named_modules()
                   if getattr(mod, "load_result", None) is not None and hasattr(mod, "model")), None)
    if loader is not None:
        name, mod = loader
        result = mod.load_result
        prefix = f"{name}.model." if name else "model."
        not_loaded = {prefix + k for k in result.missing} | {prefix + m.split(":")[0] for m in result.mismatched}
        report.matched += [k for k in body_keys if k not in not_loaded]
        report.missing += [k for k in body_keys if k in not_loaded]
        report.ignored += list(result.unexpected) + ([] if whole_model else list(result.dropped))
    else:
        report.missing += body_keys

    # The rest (the head): from a whole-model file only.
    rest = [k for k in target if not k.startswith(_BACKBONE)]
    if not whole_model:
        report.missing += rest
        _log(report)
        return report
    mismatched = [k for k in rest if k in file_sd and _shape(file_sd[k]) != _shape(target[k])]
    if mismatched and not reinit_head:
        detail = ", ".join(f"{k}: file {_shape(file_sd[k])} vs model {_shape(target[k])}" for k in mismatched[:6])
        raise ValueError(
            f"{source}: {len(mismatched)} tensor(s) of the model have other shapes than in the file: {detail}"
            f"{', ...' if len(mismatched) > 6 else ''} (a checkpoint with another class count?); set "
            "model.reinit_head: true to train a new head"
        )
    if reinit_head:
        report.reinitialised += [k for k in rest if k in file_sd]
        report.missing += [k for k in rest if k not in file_sd]
    else:
        loadable = {k: file_sd[k] for k in rest if k in file_sd}
        model.load_state_dict(loadable, strict=False)
        report.matched += list(loadable)
        report.missing += [k for k in rest if k not in file_sd]
    report.ignored += [k for k in file_sd if not k.startswith(_BACKBONE) and k not in target]
    _log(report)
    return report


def _log(report: InitialWeightsReport) -> None:
    logger.info("%s", report.summary())
