"""The trainer shared by every task, checkpoints and the torch.distributed set-up."""

from rnnvision.engine.checkpoint import load_checkpoint, save_checkpoint
from rnnvision.engine.trainer import TrainResult, Trainer, evaluate, load_model, train

__all__ = ["TrainResult", "Trainer", "evaluate", "load_checkpoint", "load_model", "save_checkpoint", "train"]
