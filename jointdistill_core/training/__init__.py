"""Training: typed config, the training loop (single process or DDP), resume state, logs,
and the evaluation shared with `jointdistill evaluate`. See docs/training.md."""
from jointdistill_core.training.config import TrainConfig, load_train_config
from jointdistill_core.training.trainer import (
                                                Trainer,
                                                TrainingDiverged,
                                                TrainingError,
                                                TrainResult,
                                                train,
)

__all__ = ['TrainConfig', 'TrainResult', 'Trainer', 'TrainingDiverged', 'TrainingError',
           'load_train_config', 'train']
