"""labelwise.engine: the Lightning Fabric trainer, optimisers and schedules, EMA, atomic safetensors + JSON
checkpoints, batch samplers and callback hooks."""

from .callbacks import Callback
from .checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointWriteError,
    load_checkpoint,
    load_safetensors,
    resolve_checkpoint_path,
    save_checkpoint,
)
from .config import TrainerConfig
from .ema import ModelEMA
from .optim import build_optimizer, build_scheduler, param_groups
from .run_lock import RunLock, RunLockedError
from .samplers import EvalShardSampler, RandomBatchSampler, ShardedBatchSampler
from .trainer import LossDivergedError, NonFiniteLossError, Predictions, Trainer, seed_everything

__all__ = [
    "Callback",
    "Checkpoint",
    "CheckpointError",
    "CheckpointWriteError",
    "EvalShardSampler",
    "LossDivergedError",
    "ModelEMA",
    "NonFiniteLossError",
    "Predictions",
    "RandomBatchSampler",
    "RunLock",
    "RunLockedError",
    "ShardedBatchSampler",
    "Trainer",
    "TrainerConfig",
    "build_optimizer",
    "build_scheduler",
    "load_checkpoint",
    "load_safetensors",
    "param_groups",
    "resolve_checkpoint_path",
    "save_checkpoint",
    "seed_everything",
]
