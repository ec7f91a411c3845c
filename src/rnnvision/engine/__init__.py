"""The trainer shared by every task, evaluation, checkpoints and the torch.distributed set-up."""

from rnnvision.engine.checkpoint import load_checkpoint, load_model, save_checkpoint
from rnnvision.engine.evaluation import evaluate
from rnnvision.engine.trainer import TrainResult, Trainer, train

__all__ = ["TrainResult", "Trainer", "evaluate", "load_checkpoint", "load_model", "save_checkpoint", "train"]
