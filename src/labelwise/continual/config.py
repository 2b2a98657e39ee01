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

``data``, ``model`` and ``trainer`` are validated by :func:`labelwise.config.load_config` (``loss`` is not
used: each strategy defines its losses). Dotted overrides address every section
(``continual.scenario=B5-C3``, ``strategy.options.alpha=1.0``, ``trainer.max_epochs=2``).

Examples
--------
>>> cfg = load_continual_config({"data": {"name": "multidigits20", "image_size": 32}, "model": {"name": "ofml"},
...                              "continual": {"scenario": "B4-C2"}}, ["strategy.options.alpha=1.0"], check=False)
>>> cfg.continual.scenario, cfg.strategy.name, cfg.strategy.options
('B4-C2', 'rebll', {'alpha': 1.0})
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from labelwise.config import (
    ConfigError,
    DuplicateKeyError,
    RunConfig,
    load_config,
    parse_overrides,
    yaml_load,
)
from labelwise.registry import OptionError

from .scenarios import parse_scenario

__all__ = ["ContinualSection", "StrategySection", "ContinualConfig", "load_continual_config"]


class ContinualSection(BaseModel):
    """The ``continual`` section."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

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


class StrategySection(BaseModel):
    """The ``strategy`` section: a registered name and its options."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = Field("rebll", min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)


@dataclass
class ContinualConfig:
    """A loaded continual configuration: the run sections, ``continual``, the selected strategy."""

    run: RunConfig
    continual: ContinualSection
    strategy: StrategySection
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self.run.to_dict()
        d.pop("loss", None)
        d["continual"] = self.continual.model_dump(mode="json")
        d["strategy"] = self.strategy.model_dump(mode="json")
        return d


def _err(key: str, msg: str, source: str | None) -> ConfigError:
    return ConfigError([(key, msg)], source=source)


def load_continual_config(
    source: str | os.PathLike | Mapping[str, Any],
    overrides: Iterable[str] = (),
    *,
    strategy: str | None = None,
    check: bool = True,
) -> ContinualConfig:
    """Load, override and validate a continual configuration (module documentation).

    Parameters
    ----------
    source : path, shipped config name (e.g. ``continual/voc_b4c2``) or mapping
    overrides : iterable of str
        Dotted ``key=value`` overrides of any section.
    strategy : str, optional
        Select this strategy (its ``strategies.<name>`` options are applied, then ``strategy.options``
        overrides given on the command line).
    check : bool
        Check registered names/options of data and model (the strategy's name and options are always checked).

    Raises
    ------
    FileNotFoundError, ConfigError
    """
    src = None
    if isinstance(source, Mapping):
        raw = {k: v for k, v in dict(source).items()}
    else:
        from labelwise.shipped_configs import resolve_config

        path = resolve_config(source)
        src = str(path)
        try:
            raw = yaml_load(path.read_text()) or {}
        except DuplicateKeyError as exc:
            raise _err(exc.key, f"duplicate key on lines {exc.lines[0]} and {exc.lines[1]} (keep one)", src) from exc
        if not isinstance(raw, dict):
            raise _err("<root>", "the file must hold a mapping", src)
    cont_raw = dict(raw.pop("continual", None) or {})
    strat_raw = dict(raw.pop("strategy", None) or {})
    per_strategy = dict(raw.pop("strategies", None) or {})
    raw.pop("loss", None)
    run_over: list[tuple[str, Any]] = []
    strat_over: dict[str, Any] = {}
    for key, value in parse_overrides(overrides):
        head, _, rest = key.partition(".")
        if head == "continual":
            if not rest or "." in rest:
                raise _err(key, "continual keys are one level deep (continual.scenario=B4-C2)", src)
            cont_raw[rest] = value
        elif head == "strategy":
            if rest == "name":
                strat_raw["name"] = value
            elif rest.startswith("options.") and rest.count(".") == 1:
                strat_over[rest.split(".", 1)[1]] = value
            else:
                raise _err(key, "use strategy.name=NAME or strategy.options.KEY=VALUE", src)
        else:
            run_over.append((key, value))
    try:
        cont = ContinualSection.model_validate(cont_raw)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise _err("continual." + ".".join(str(p) for p in e["loc"]) if e["loc"] else "continual", e["msg"], src) from None
    try:
        strat = StrategySection.model_validate(strat_raw)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise _err("strategy." + ".".join(str(p) for p in e["loc"]), e["msg"], src) from None
    # the config's strategy.options belong to its strategy.name; another --strategy starts from its own
    base_options = strat.options if strategy is None or strategy == strat.name else {}
    if strategy is not None:
        strat.name = strategy
    strat.options = {**dict(per_strategy.get(strat.name) or {}), **base_options, **strat_over}
    try:
        run = load_config(raw, run_over, check=check)
    except ConfigError as exc:
        raise ConfigError(exc.errors, source=src) from None
    if run.sampler.name != "random" or run.sampler.kwargs:  # the runner draws each task's batches itself
        raise _err("sampler", "labelwise continual trains every task with random batches; remove the sampler "
                   "section (batch selection is for labelwise train)", src)
    if run.callbacks:
        raise _err("callbacks", "labelwise continual does not build callbacks from the configuration (the "
                   "strategy is its callback); remove the callbacks section", src)
    _check_strategy(strat, src)
    return ContinualConfig(run=run, continual=cont, strategy=strat, source=src)


def _check_strategy(strat: StrategySection, src: str | None) -> None:
    from .strategies import STRATEGIES, list_strategies

    if strat.name not in list_strategies():
        raise _err("strategy.name", f"unknown strategy {strat.name!r}; choose from {', '.join(list_strategies())}", src)
    try:
        STRATEGIES.check_options(strat.name, strat.options, context="strategy.options")
    except OptionError as exc:
        raise ConfigError(exc.errors, source=src) from None
    try:
        STRATEGIES.create(strat.name, **strat.options)
    except (TypeError, ValueError) as exc:
        raise _err("strategy.options", str(exc), src) from None
