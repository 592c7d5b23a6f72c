"""Warm-ups of the loss weights, early stopping and the learning-rate schedule."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from flowsynth.models.base import LossWeights
from flowsynth.training.config import TrainConfig

__all__ = ["EarlyStopping", "loss_weights", "make_scheduler", "warmup_epochs"]


def loss_weights(config: TrainConfig, progress: float) -> LossWeights:
    """Loss weights after ``progress`` epochs (fractional): KL warm-up and regression warm-up.

    The latent weight rises linearly from 0 to ``beta`` over ``kl_warmup`` epochs; the regression
    weight from ``1 / (reg_warmup + 1)`` to 1 over ``reg_warmup`` epochs.

    Example:
        >>> config = TrainConfig(data="d.h5", model="vae", out="r", kl_warmup=10, reg_warmup=4)
        >>> loss_weights(config, 0.0)
        LossWeights(beta=0.0, gamma=0.2, delta=1.0)
        >>> loss_weights(config, 5.0)
        LossWeights(beta=0.5, gamma=1.0, delta=1.0)
    """
    beta = config.beta * (min(1.0, progress / config.kl_warmup) if config.kl_warmup > 0 else 1.0)
    gamma = min(1.0, (progress + 1.0) / (config.reg_warmup + 1.0))
    return LossWeights(beta=beta, gamma=gamma, delta=1.0)


def warmup_epochs(config: TrainConfig) -> float:
    """Epochs until every weight has reached its final value."""
    return max(config.kl_warmup, config.reg_warmup)


@dataclass
class EarlyStopping:
    """Keeps the best validation score and counts the epochs without progress after the warm-ups.

    Example:
        >>> stop = EarlyStopping(patience=2)
        >>> [stop.update(score, after_warmup=True) for score in (1.0, 0.5, 0.6, 0.7)]
        [True, True, False, False]
        >>> stop.should_stop, stop.best, stop.best_epoch
        (True, 0.5, 1)
    """

    patience: int
    best: float = float("inf")
    best_epoch: int = -1
    bad_epochs: int = 0
    epoch: int = -1

    def update(self, score: float, after_warmup: bool) -> bool:
        """Records one epoch's score; returns whether it is the best so far."""
        self.epoch += 1
        if score < self.best:
            self.best, self.best_epoch, self.bad_epochs = float(score), self.epoch, 0
            return True
        if after_warmup:
            self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        """Whether ``patience`` epochs have passed without progress."""
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, float | int]:
        """Plain numbers, for the resume checkpoint."""
        return asdict(self)

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        """Restores :meth:`state_dict`."""
        self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])
        self.bad_epochs, self.epoch = int(state["bad_epochs"]), int(state["epoch"])


def make_scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau:
    """The learning-rate schedule of ``config.schedule``, stepped once per epoch."""
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs, eta_min=config.lr / 100)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=0.5, patience=config.lr_patience, threshold=1e-3
    )
