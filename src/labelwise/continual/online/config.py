"""The ``online`` configuration kind: what ``labelwise online`` reads (a file with a ``sequence:`` section).

::

    kind: online                                  # optional: the sequence section marks the kind
    name: md-online                               # optional
    output_dir: runs/online                       # optional; --output wins
    sequence: {name: multidigits, options: {n_train: 4000}}    # load_sequence(name, **options)
    online: {memory_size: 150, lr: 0.001, ...}    # OnlineConfig: the run options (defaults: the PRS protocol)
    methods: [finetune, ewc, crs, prs, prs+ssca]  # "<method>" or "<method>+ssca"
    seeds: [0, 1, 2]

It is loaded by :func:`labelwise.config.load_config` like every configuration (the same YAML checks, dotted
``key=value`` overrides such as ``online.memory_size=500`` or ``sequence.options.n_train=2000``, and errors
naming the file and the key). ``labelwise online --methods``/``--seeds`` are shorthands for ``methods=[...]``
and ``seeds=[...]``.

Examples
--------
>>> from labelwise.config import load_config
>>> cfg = load_config("online/multidigits", ["online.memory_size=50", "methods=[prs, prs+ssca]"])
>>> cfg.online.memory_size, cfg.methods, cfg.sequence.name
(50, ['prs', 'prs+ssca'], 'multidigits')
>>> load_config("online/multidigits", ["methods=[mir]"])
Traceback (most recent call last):
...
labelwise.config.ConfigError: .../online/multidigits.yaml: methods.0: unknown online method 'mir'; ...
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from labelwise.config import ConfigError, ConfigSchema, ConfigSection

from .runner import HEADS, METHODS, OnlineConfig

__all__ = ["SequenceSection", "OnlineRunConfig", "DEFAULT_METHODS", "parse_method"]

#: The methods of a configuration without a ``methods`` list.
DEFAULT_METHODS = ("finetune", "ewc", "crs", "prs", "prs+ssca", "multitask")
#: The sequences :func:`labelwise.continual.online.load_sequence` builds.
SEQUENCES = ("multidigits", "cocoseq", "nuswideseq")


def parse_method(text: str) -> tuple[str, str]:
    """``"prs+ssca"`` -> ``("prs", "ssca")``; ``"prs"`` -> ``("prs", "baseline")``.

    Examples
    --------
    >>> parse_method("prs+ssca"), parse_method("crs")
    (('prs', 'ssca'), ('crs', 'baseline'))
    """
    name, _, head = str(text).strip().lower().partition("+")
    head = head.strip() or "baseline"
    name = name.strip()
    if name not in METHODS:
        raise ValueError(f"unknown online method {text!r}; methods: {sorted(METHODS)}, optionally '+ssca'")
    if head not in HEADS:
        raise ValueError(f"unknown head in {text!r}; heads: {HEADS}")
    return name, head


class SequenceSection(ConfigSection):
    """The ``sequence`` section: a sequence name and the options of its builder."""

    name: str = Field(..., min_length=1, description="multidigits | cocoseq | nuswideseq.")
    options: dict[str, Any] = Field(default_factory=dict, description="Options of load_sequence(name, **options).")

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in SEQUENCES:
            raise ValueError(f"unknown sequence {v!r}; sequences: {', '.join(SEQUENCES)}")
        return v


class OnlineRunConfig(ConfigSchema):
    """An online configuration (module documentation)."""

    name: str | None = None
    output_dir: str | None = Field(None, description="Output directory (config.yaml, table.md, results.json).")
    sequence: SequenceSection
    online: OnlineConfig = Field(default_factory=OnlineConfig)
    methods: list[str] = Field(default_factory=lambda: list(DEFAULT_METHODS), min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)

    KIND: ClassVar[str] = "online"

    def check(self, *, registered: bool = True) -> None:
        """Finite numbers; every method is ``<method>`` or ``<method>+ssca`` of a registered method."""
        super().check(registered=registered)
        errors = []
        for i, method in enumerate(self.methods):
            try:
                parse_method(method)
            except ValueError as exc:
                errors.append((f"methods.{i}", str(exc)))
        if errors:
            raise ConfigError(errors)
