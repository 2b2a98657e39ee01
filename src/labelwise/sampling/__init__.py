"""Batch selection for multi-label training: random, hard (Eq. 3), adaptive (Eq. 4-7) and chain (sec. 3.5).

Examples
--------
>>> from labelwise.sampling import SAMPLERS
>>> SAMPLERS.names()
['adaptive', 'chain', 'hard', 'random']
"""

from .base import BatchSelectionSampler, gather_rows, selection_bce
from .batch_selection import (
    SAMPLERS,
    TRAINER_SAMPLER_OPTIONS,
    AdaptiveBatchSampler,
    ChainBatchSampler,
    HardBatchSampler,
    RandomSampler,
    create_sampler,
    sampler_options,
)
from .chain import LabelChain, label_relation_matrix
from .imbalance import (
    imbalance_scores,
    imbalance_weights,
    local_imbalance,
    minority_labels,
    nearest_neighbors,
)
from .rank import (
    QuantizedLossTable,
    RankedLossTable,
    quantization_index,
    quantized_probabilities,
    rank_probabilities,
)

__all__ = [
    "SAMPLERS",
    "TRAINER_SAMPLER_OPTIONS",
    "create_sampler",
    "sampler_options",
    "BatchSelectionSampler",
    "RandomSampler",
    "HardBatchSampler",
    "AdaptiveBatchSampler",
    "ChainBatchSampler",
    "LabelChain",
    "label_relation_matrix",
    "QuantizedLossTable",
    "RankedLossTable",
    "rank_probabilities",
    "quantization_index",
    "quantized_probabilities",
    "minority_labels",
    "nearest_neighbors",
    "local_imbalance",
    "imbalance_scores",
    "imbalance_weights",
    "selection_bce",
    "gather_rows",
]
