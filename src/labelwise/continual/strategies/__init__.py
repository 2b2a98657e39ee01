"""Continual-learning strategies: one small module per method, all :class:`Strategy` callbacks.

==========  ===============================================================================
name        method
==========  ===============================================================================
finetune    masked BCE on the current task (lower bound)
joint       all seen classes labelled on all data so far (upper bound)
lwf         LwF: BCE + temperature-scaled binary distillation
kd          BCE + binary KD (RebLL Eq. 1-2)
er          reservoir experience replay (partial labels, BCE)
derpp       DER++: replay of labels and stored logits
podnet      PODNet: POD-spatial / POD-flat distillation + replay
ewc         online EWC
akd         RebLL's AKD (L_cls + L_akd), no memory
rebll       RebLL: AKD + online relabeling + L_er
krt         KRT: old-class pseudo-labels + frozen class tokens + token distillation (model krt)
csc         CSC: class-incremental GCN graph + KD + max-entropy (model ci_gcn)
agcn        AGCN: augmented correlation matrix + GCN classifiers + KD + relation loss (model agcn)
l2p         L2P: prompt pool on a frozen ViT + key-query surrogate loss (model l2p)
==========  ===============================================================================

Examples
--------
>>> from labelwise.continual.strategies import list_strategies
>>> list_strategies()
['agcn', 'akd', 'csc', 'derpp', 'er', 'ewc', 'finetune', 'joint', 'kd', 'krt', 'l2p', 'lwf', 'podnet', 'rebll']
"""

# Importing a strategy module registers it (``@register_strategy``); this package imports every one of them,
# and importing ``labelwise.continual.strategies.base`` runs this file first, so the registry is always full.
from .agcn import AGCN
from .base import STRATEGIES, Strategy, TaskCriterion, create_strategy, list_strategies, register_strategy
from .csc import CSC
from .derpp import DERpp
from .er import ER
from .ewc import EWC
from .finetune import FineTune
from .joint import Joint
from .krt import KRT
from .l2p import L2P
from .lwf import LwF
from .podnet import PODNet
from .rebll import AKD, KD, RebLL

__all__ = [
    "STRATEGIES",
    "Strategy",
    "TaskCriterion",
    "create_strategy",
    "list_strategies",
    "register_strategy",
    "FineTune",
    "Joint",
    "LwF",
    "KD",
    "ER",
    "DERpp",
    "PODNet",
    "EWC",
    "AKD",
    "RebLL",
    "KRT",
    "CSC",
    "AGCN",
    "L2P",
]
