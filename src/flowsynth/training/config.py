"""The settings of a training run, resolved and saved as ``config.json`` in the run folder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["RESUMABLE_CHANGES", "SCHEDULES", "TrainConfig"]

#: Learning-rate schedules: halve on a validation plateau, or cosine annealing over ``epochs``.
SCHEDULES = ("plateau", "cosine")
#: Settings that may change when an interrupted run is resumed (a longer or shorter budget).
RESUMABLE_CHANGES = frozenset({"epochs", "minutes", "progress", "threads"})


@dataclass
class TrainConfig:
    """Everything that decides a training run.

    Arguments:
        data: Dataset file (``flowsynth render-dataset``'s output).
        model: Model name (:func:`flowsynth.models.available_models`).
        out: Run folder (``config.json``, ``metrics.jsonl``, ``model.pt``, ``last.pt``).
        epochs: Maximum number of epochs.
        minutes: Wall-time budget of the whole run (resumed sessions included); no epoch starts
            that would end past it (estimated from the last epoch). None: no budget.
        batch_size: Global batch size (split across data-parallel processes).
        lr: Adam learning rate.
        seed: Seed of the initialization, the shuffling, the latent samples and dropout.
        model_args: Constructor arguments of the model (architecture sizes, loss weights).
        beta: Final weight multiplier of the latent term (KL or MMD).
        kl_warmup: Epochs over which the latent term's weight rises linearly from 0 to ``beta``.
        reg_warmup: Epochs over which the regression weight rises from ``1 / (reg_warmup + 1)`` to 1.
        patience: Early stopping: epochs without a better validation parameter MSE, counted once the
            warm-ups are over.
        schedule: ``"plateau"`` (halve the learning rate after ``lr_patience`` epochs without progress)
            or ``"cosine"`` (anneal to ``lr / 100`` over ``epochs``).
        lr_patience: Patience of the plateau schedule.
        grad_clip: Maximum gradient norm.
        tag_pairs: Semantic tag pairs of ``flow_dis``, ``[[low, high], ...]``.
        tag_fraction: Share of the training sounds whose tags the model may see (``flow_dis``).
        tag_quantile: For tags derived from descriptors: the lowest and highest quantile that get a tag.
        progress: Show a progress bar.
        threads: Torch CPU threads per process (None: torch's default).
    """

    data: str
    model: str
    out: str
    epochs: int = 100
    minutes: float | None = None
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    model_args: dict[str, Any] = field(default_factory=dict)
    beta: float = 1.0
    kl_warmup: float = 10.0
    reg_warmup: float = 5.0
    patience: int = 15
    schedule: str = "plateau"
    lr_patience: int = 5
    grad_clip: float = 10.0
    tag_pairs: list[list[str]] = field(default_factory=lambda: [["dark", "bright"], ["tonal", "noisy"]])
    tag_fraction: float = 0.1
    tag_quantile: float = 0.3
    progress: bool = True
    threads: int | None = None

    def __post_init__(self) -> None:
        self.data, self.out = str(self.data), str(self.out)
        self.tag_pairs = [[str(t) for t in pair] for pair in self.tag_pairs]
        self.validate()

    def validate(self) -> None:
        """Raises ``ValueError`` naming the first setting out of range."""
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.minutes is None or self.minutes > 0, f"minutes must be > 0, got {self.minutes}"),
            (self.batch_size >= 2, f"batch_size must be >= 2, got {self.batch_size}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.beta >= 0 and self.kl_warmup >= 0 and self.reg_warmup >= 0, "beta and the warm-ups must be >= 0"),
            (self.patience >= 1 and self.lr_patience >= 1, "patience and lr_patience must be >= 1"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"),
            (0 < self.tag_fraction <= 1, f"tag_fraction must be in (0, 1], got {self.tag_fraction}"),
            (0 < self.tag_quantile <= 0.5, f"tag_quantile must be in (0, 0.5], got {self.tag_quantile}"),
            (all(len(p) == 2 for p in self.tag_pairs), f"tag_pairs must be pairs [low, high], got {self.tag_pairs}"),
            (self.grad_clip > 0, f"grad_clip must be > 0, got {self.grad_clip}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuilds a config from :meth:`to_dict` (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**data)

    def differences(self, other: TrainConfig) -> list[str]:
        """Settings that differ from ``other`` and forbid resuming its run (see :data:`RESUMABLE_CHANGES`)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [key for key in mine if key not in RESUMABLE_CHANGES and mine[key] != theirs[key]]

    def save(self, path: Path, resolved: dict[str, Any]) -> None:
        """Writes the settings and the resolved facts (dataset sizes, synth, processes) as JSON."""
        path.write_text(json.dumps({**self.to_dict(), "resolved": resolved}, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        """Reads a ``config.json`` written by :meth:`save`."""
        data = json.loads(Path(path).read_text())
        data.pop("resolved", None)
        return cls.from_dict(data)
