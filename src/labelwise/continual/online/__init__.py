"""labelwise.continual.online: online multi-label continual learning (PRS protocol, DLFL section 4.3).

* :mod:`~labelwise.continual.online.sequences` - COCOseq / NUS-WIDEseq from the PRS split files, a MultiDigits
  sequence of the same shape, majority / moderate / minority class groups;
* :mod:`~labelwise.continual.online.memory` - CRS (class-agnostic reservoir) and PRS (partitioning reservoir);
* :mod:`~labelwise.continual.online.gss`, :mod:`~labelwise.continual.online.exstream`,
  :mod:`~labelwise.continual.online.ocdm` - the GSS-Greedy, ExStream and OCDM memories;
* :mod:`~labelwise.continual.online.ewc` - online EWC for the single pass;
* :mod:`~labelwise.continual.online.runner` - the online protocol (one pass, stream batch 10, replay batch from
  the memory), Finetune / EWC / CRS / PRS / GSS / ExStream / OCDM / Multitask with the baseline or the SSCA
  head, Table 7-8 evaluation.

Examples
--------
>>> from labelwise.continual.online import METHODS, method_label
>>> sorted(METHODS), method_label("prs", "ssca")
(['crs', 'ewc', 'exstream', 'finetune', 'gss', 'multitask', 'ocdm', 'prs'], 'PRS + SSCA')
"""

from .ewc import OnlineEWC
from .exstream import ExStreamMemory
from .gss import GradientSampleSelection
from .memory import ClassAgnosticReservoir, PartitioningReservoir, StreamMemory
from .memory_kinds import MEMORY_KINDS, create_memory
from .ocdm import OCDMMemory
from .runner import (
    HEADS,
    METHODS,
    OnlineConfig,
    OnlineMethod,
    OnlineResult,
    build_model,
    evaluate_groups,
    format_table,
    method_label,
    run_online,
    summarize,
)
from .sequences import (
    GROUP_NAMES,
    PRS_THRESHOLDS,
    OnlineSequence,
    PRSSplit,
    class_groups,
    cocoseq,
    compare_groups,
    load_sequence,
    multidigits_sequence,
    nuswideseq,
    read_prs_split,
)

__all__ = [
    "OnlineEWC",
    "StreamMemory",
    "ClassAgnosticReservoir",
    "PartitioningReservoir",
    "GradientSampleSelection",
    "ExStreamMemory",
    "OCDMMemory",
    "MEMORY_KINDS",
    "create_memory",
    "HEADS",
    "METHODS",
    "OnlineConfig",
    "OnlineMethod",
    "OnlineResult",
    "build_model",
    "evaluate_groups",
    "format_table",
    "method_label",
    "run_online",
    "summarize",
    "GROUP_NAMES",
    "PRS_THRESHOLDS",
    "OnlineSequence",
    "PRSSplit",
    "class_groups",
    "cocoseq",
    "compare_groups",
    "load_sequence",
    "multidigits_sequence",
    "nuswideseq",
    "read_prs_split",
]
