"""The ``select`` configuration kind: what ``labelwise select run|plot`` reads.

::

    kind: select                   # optional: a protocol or datasets section marks the kind
    datasets: [scene, yeast]       # MULAN names or paths; or table1: true (the 13 datasets of Table 1)
    table1: false
    root: null                     # MULAN collection directory (default: the shared collection)
    jobs: 1                        # worker processes (one torch thread each)
    output_dir: null               # default runs/select-<time> (run), runs/select-plot-<time> (plot)
    protocol:                      # labelwise.tabular.MulanProtocol: every field, with its defaults
      models: [mlp]
      strategies: [random, hard, adaptive, chain]
      selection_pressures: [2, 8, 16, 64]
      n_folds: 5
      epochs: 50
      ...
    plot:                          # labelwise select plot
      dataset: scene
      fold: 0
      pressure: 2.0                # s_e of the loss-based strategies
      snapshots: [10, 30]          # epochs of the loss-density figure
      strategies: [random, hard, adaptive]

It is loaded by :func:`labelwise.config.load_config` like every configuration (dotted ``key=value``
overrides such as ``protocol.epochs=3``, errors naming the file and the key). The ``protocol`` section is
built from the fields of :class:`~labelwise.tabular.MulanProtocol` (their types and defaults), and its
values are checked by constructing the protocol. The flags of ``labelwise select`` are shorthands for these
keys (:data:`labelwise.tabular.cli.SHORTHANDS`; ``--epochs 3`` is ``protocol.epochs=3``), applied after the
``key=value`` overrides.

Examples
--------
>>> from labelwise.config import load_config
>>> cfg = load_config({"datasets": ["scene"]}, ["protocol.epochs=3", "protocol.strategies=[random, adaptive]"])
>>> type(cfg).__name__, cfg.protocol_for("run").epochs, cfg.protocol_for("run").strategies
('SelectConfig', 3, ('random', 'adaptive'))
>>> load_config({"datasets": ["scene"]}, ["protocol.n_folds=1"])
Traceback (most recent call last):
...
labelwise.config.ConfigError: protocol.n_folds: n_folds must be >= 2, got 1
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, ClassVar

from pydantic import Field, create_model

from labelwise.config import ConfigError, ConfigSchema, ConfigSection

from .pipeline import TABLE1_DATASETS, MulanProtocol

__all__ = ["ProtocolSection", "PlotSection", "SelectConfig"]


def _protocol_section() -> type[ConfigSection]:
    """A section with the fields (types, defaults) of :class:`MulanProtocol`: one definition, two uses."""
    hints = typing.get_type_hints(MulanProtocol)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(MulanProtocol):
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], f.default)
        else:
            fields[f.name] = (hints[f.name], Field(default_factory=f.default_factory))  # type: ignore[arg-type]
    return create_model("ProtocolSection", __base__=ConfigSection, __module__=__name__, **fields)


#: The ``protocol`` section: the fields of :class:`~labelwise.tabular.MulanProtocol` (see its documentation).
ProtocolSection = _protocol_section()


class PlotSection(ConfigSection):
    """The ``plot`` section: the dataset, fold and strategies of ``labelwise select plot``."""

    dataset: str | None = Field(None, description="MULAN name or path (required by select plot).")
    fold: int = Field(0, ge=0)
    pressure: float = Field(2.0, gt=0, description="s_e of the loss-based strategies.")
    snapshots: list[int] = Field(default_factory=list, description="Epochs of the loss-density figure.")
    strategies: list[str] = Field(default_factory=lambda: ["random", "hard", "adaptive"], min_length=1)


class SelectConfig(ConfigSchema):
    """A ``labelwise select`` configuration (module documentation)."""

    output_dir: str | None = Field(None, description="Output directory (default runs/select-<time>).")
    datasets: list[str] = Field(default_factory=list, description="MULAN dataset names or paths.")
    table1: bool = Field(False, description="The 13 datasets of Table 1 present in the collection.")
    root: str | None = Field(None, description="MULAN collection directory (default: the shared collection).")
    jobs: int = Field(1, ge=1, description="Worker processes (one torch thread each).")
    protocol: ProtocolSection = Field(default_factory=ProtocolSection)  # type: ignore[valid-type]
    plot: PlotSection = Field(default_factory=PlotSection)

    KIND: ClassVar[str] = "select"

    def protocol_for(self, command: str = "run") -> MulanProtocol:
        """The :class:`MulanProtocol` of ``select run`` (or of ``select plot``, which compares ``plot.strategies``).

        Raises
        ------
        ConfigError
            A value the protocol refuses, named ``protocol.<key>``.
        """
        options = self.protocol.model_dump()
        for opts in options["model_params"].values():
            if isinstance(opts, dict) and isinstance(opts.get("hidden"), list):
                opts["hidden"] = tuple(opts["hidden"])
        if command == "plot":
            options["strategies"] = list(self.plot.strategies)
        try:
            return MulanProtocol(**options)
        except (KeyError, TypeError, ValueError) as exc:
            msg = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
            first = msg.split(" ", 1)[0]
            if first in options:
                key = f"protocol.{first}"
            elif "strateg" in msg.lower() or "sampler" in msg.lower():
                key = "plot.strategies" if command == "plot" else "protocol.strategies"
            else:
                key = "protocol"
            raise ConfigError([(key, msg)]) from None

    def dataset_names(self) -> list[str]:
        """``datasets``, or the 13 Table 1 datasets with ``table1: true``.

        Examples
        --------
        >>> SelectConfig(datasets=["scene"]).dataset_names(), len(SelectConfig(table1=True).dataset_names())
        (['scene'], 13)
        """
        if self.table1:
            return list(TABLE1_DATASETS)
        if not self.datasets:
            raise ConfigError([("datasets", "give datasets: [a, b] (--datasets a,b,...) or table1: true (--table1)")])
        return list(self.datasets)

    def check(self, *, registered: bool = True) -> None:
        """Finite numbers; the protocol (and the plot's strategies) are accepted by :class:`MulanProtocol`."""
        super().check(registered=registered)
        self.protocol_for("run")
        self.protocol_for("plot")
