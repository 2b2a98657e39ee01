"""YAML configuration of a continual run: the usual run sections plus ``continual`` and ``strategy``.

::

    name: voc-b4c2
    data: {name: voc2007, root: data/VOC2007, train_split: trainval, test_split: test, image_size: 224}
    model: {name: ofml, backbone: tresnet_m}
    trainer: {max_epochs: 20, batch_size: 64, optimizer: adam, lr: 4.0e-5, weight_decay: 1.0e-4}
    continual:
      scenario: B4-C2            # B<x>-C<y>
      class_order: alphabetical  # alphabetical | dataset | random | explicit list of class names
      class_order_seed: 0
      threshold: 0.8             # CF1/OF1/FPR threshold (KRT/CSC/RebLL use 0.8)
      base_lr: null              # lr of the first task (COCO: 3e-5 with trainer.lr 5e-5)
    strategy:
      name: rebll                # default; `labelwise continual --strategy er` picks another
      options: {memory_per_class: 2}
    strategies:                  # options per strategy, merged under `strategy.options` when it is selected
      er: {memory_per_class: 2}

It is the ``continual`` kind of :func:`labelwise.config.load_config` (a file with a ``continual:`` or
``strategy:`` section, or ``kind: continual``): :class:`ContinualConfig` is a :class:`~labelwise.config.RunConfig`
with three more sections, read, overridden and validated like any run (``loss`` is not used: each strategy
defines its losses; ``sampler`` and ``callbacks`` are refused: the runner draws each task's batches and the
strategy is its callback). Dotted overrides address every section (``continual.scenario=B5-C3``,
``strategy.options.alpha=1.0``, ``trainer.max_epochs=2``); ``labelwise continual --strategy NAME`` is a
shorthand for ``strategy.name=NAME``.

The options of the selected strategy are ``strategies.<name>``, then the file's ``strategy.options`` when the
file's ``strategy.name`` is the selected one (another strategy does not inherit them), then the
``strategy.options.*`` overrides.

Examples
--------
>>> cfg = load_continual_config({"data": {"name": "multidigits20", "image_size": 32}, "model": {"name": "ofml"},
...                              "continual": {"scenario": "B4-C2"}}, ["strategy.options.alpha=1.0"], check=False)
>>> cfg.continual.scenario, cfg.strategy.name, cfg.strategy.options
('B4-C2', 'rebll', {'alpha': 1.0})
>>> from labelwise.config import load_config
>>> type(load_config("continual/multidigits20_b4c2", ["strategy.name=er"], check=False).strategy.options)
<class 'dict'>
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import Field, field_validator

from labelwise.config import ConfigError, ConfigSection, RunConfig, apply_overrides, load_config
from labelwise.registry import OptionError

from .scenarios import parse_scenario

__all__ = ["ContinualSection", "StrategySection", "ContinualConfig", "load_continual_config"]


class ContinualSection(ConfigSection):
    """The ``continual`` section."""

    scenario: str = Field(..., description="B<x>-C<y>, e.g. B4-C2.")
    class_order: str | list[str] = Field("alphabetical", description="alphabetical | dataset | random | class list.")
    class_order_seed: int = Field(0, ge=0, description="Seed of the random class order.")
    threshold: float = Field(0.8, gt=0, lt=1, description="Threshold of CP/CR/CF1/OP/OR/OF1 and FPR.")
    base_lr: float | None = Field(None, gt=0, description="Learning rate of the first task (default trainer.lr).")
    ap_method: str = Field("sklearn", description="Average-precision tie handling: sklearn | ranked.")
    plot: bool = Field(True, description="Write map_curve.png.")

    @field_validator("scenario")
    @classmethod
    def _check_scenario(cls, v: str) -> str:
        parse_scenario(v)
        return v.strip().upper()

    @field_validator("ap_method")
    @classmethod
    def _check_ap(cls, v: str) -> str:
        if v not in ("sklearn", "ranked"):
            raise ValueError(f"must be 'sklearn' or 'ranked', got {v!r}")
        return v


class StrategySection(ConfigSection):
    """The ``strategy`` section: a registered name and its options."""

    name: str = Field("rebll", min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)


class ContinualConfig(RunConfig):
    """A continual configuration: the run sections plus ``continual``, ``strategy`` and ``strategies``.

    ``strategy.options`` are the resolved options of the selected strategy (module documentation).
    """

    continual: ContinualSection
    strategy: StrategySection = Field(default_factory=StrategySection)
    strategies: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Options per strategy, used when that strategy is selected.")

    KIND: ClassVar[str] = "continual"

    @classmethod
    def prepare(cls, raw: dict[str, Any], overrides: list[tuple[str, Any]]) -> dict[str, Any]:
        """Apply the overrides, then resolve the selected strategy's options (module documentation)."""
        strategy = raw.get("strategy")
        file_name = (strategy.get("name", "rebll") if isinstance(strategy, dict) else None)
        file_options = dict(strategy.get("options") or {}) if isinstance(strategy, dict) else {}
        raw.pop("loss", None)  # each strategy defines its losses
        apply_overrides(raw, overrides, schema=cls)
        strategy = raw.get("strategy")
        if not isinstance(strategy, dict):
            return raw  # validation names the bad section
        name = strategy.get("name", "rebll")
        set_here = {k.split(".", 2)[2] for k, _ in overrides if k.startswith("strategy.options.") and k.count(".") == 2}
        options = dict(strategy.get("options") or {})
        if name != file_name:  # another strategy starts from its own options, plus the command line's
            options = {k: v for k, v in options.items() if k in set_here or k not in file_options}
        per_strategy = raw.get("strategies") or {}
        own = per_strategy.get(name) if isinstance(per_strategy, dict) else None
        strategy["options"] = {**dict(own or {}), **options}
        return raw

    @property
    def run(self) -> RunConfig:
        """The run sections (``data``, ``model``, ``trainer``, ...) as a plain :class:`RunConfig`."""
        return RunConfig.model_validate(self.model_dump(include=set(RunConfig.model_fields)))

    def check(self, *, registered: bool = True) -> None:
        """The run checks; the sampler and callbacks sections are refused; the strategy is always checked."""
        super().check(registered=registered)
        if self.sampler.name != "random" or self.sampler.kwargs:  # the runner draws each task's batches itself
            raise ConfigError([("sampler", "labelwise continual trains every task with random batches; remove the "
                                           "sampler section (batch selection is for labelwise train)")])
        if self.callbacks:
            raise ConfigError([("callbacks", "labelwise continual does not build callbacks from the configuration "
                                             "(the strategy is its callback); remove the callbacks section")])
        _check_strategy(self.strategy)

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as written to the run directory (without ``loss`` and ``strategies``)."""
        d = self.model_dump(mode="json")
        d.pop("loss", None)
        d.pop("strategies", None)
        return d


def load_continual_config(
    source: str | os.PathLike | Mapping[str, Any],
    overrides: Iterable[str] = (),
    *,
    strategy: str | None = None,
    check: bool = True,
) -> ContinualConfig:
    """Load a continual configuration: :func:`labelwise.config.load_config` with ``kind="continual"``.

    Parameters
    ----------
    source : path, shipped config name (e.g. ``continual/voc_b4c2``) or mapping
    overrides : iterable of str
        Dotted ``key=value`` overrides of any section.
    strategy : str, optional
        Select this strategy: a shorthand for the override ``strategy.name=<strategy>`` (applied last).
    check : bool
        Check registered names/options of data and model (the strategy's name and options are always checked).

    Raises
    ------
    FileNotFoundError, ConfigError
    """
    items: list[Any] = list(overrides)
    if strategy is not None:
        items.append(("strategy.name", strategy))
    return load_config(source, items, kind="continual", check=check)


def _check_strategy(strat: StrategySection) -> None:
    from .strategies import STRATEGIES, list_strategies

    if strat.name not in list_strategies():
        raise ConfigError([("strategy.name", f"unknown strategy {strat.name!r}; choose from "
                                             f"{', '.join(list_strategies())}")])
    try:
        STRATEGIES.check_options(strat.name, strat.options, context="strategy.options")
    except OptionError as exc:
        raise ConfigError(exc.errors) from None
    try:
        STRATEGIES.create(strat.name, **strat.options)
    except (TypeError, ValueError) as exc:
        raise ConfigError([("strategy.options", str(exc))]) from None
