"""Training of the impact generator: multi-resolution spectral loss, resumable atomic checkpoints.

A checkpoint is a plain dict of tensors, numbers and strings (``format``, ``kwargs``, ``weights``, ``meta``,
and for resuming ``optimizer`` and ``step``), saved to a temporary file and renamed; loading uses
``torch.load(weights_only=True)``, so it never unpickles arbitrary objects.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from flowsynth.errors import CheckpointError
from flowsynth.impact._io import atomic_path, publish
from flowsynth.impact.dataset import ImpactDataset, load_dataset
from flowsynth.impact.model import ImpactGenerator

__all__ = [
    "CHECKPOINT_FORMAT",
    "TrainConfig",
    "load_checkpoint",
    "load_generator",
    "save_checkpoint",
    "spectral_loss",
    "train",
]

CHECKPOINT_FORMAT = "flowsynth-impact-generator-1"
#: Constructor kwargs that shape the weights (kept from the checkpoint when training starts from one).
_STRUCTURE = ("sample_rate", "hop_length", "hidden_size", "num_harmonics", "noise_fft", "ir_length", "noise_bands")


def spectral_loss(x: Tensor, y: Tensor, fft_sizes: Sequence[int] = (2048, 1024, 512, 256, 128, 64)) -> Tensor:
    """Multi-resolution STFT loss (DDSP): per FFT size, L1 of magnitudes plus L1 of log magnitudes, summed.

    >>> a = torch.randn(2, 4096, generator=torch.Generator().manual_seed(0))
    >>> float(spectral_loss(a, a))
    0.0
    """
    if x.shape != y.shape:
        raise ValueError(f"spectral_loss compares signals of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    total = x.new_zeros(())
    for n_fft in fft_sizes:
        window = torch.hann_window(n_fft, device=x.device)
        mx = torch.stft(x, n_fft, n_fft // 4, window=window, return_complex=True).abs()
        my = torch.stft(y, n_fft, n_fft // 4, window=window, return_complex=True).abs()
        total = total + (mx - my).abs().mean() + (torch.log(mx + 1e-5) - torch.log(my + 1e-5)).abs().mean()
    return total


@dataclass(frozen=True)
class TrainConfig:
    """Settings of :func:`train` (the model's own settings are its constructor kwargs).

    Arguments:
        steps: Optimizer steps of the whole run (the learning-rate schedule spans them).
        minutes: Wall-clock limit of this call (the run can be resumed later), or None.
        batch_size: Clips per step.
        learning_rate: Initial Adam learning rate; decays exponentially to a tenth over ``steps``.
        valid_every: Steps between validations and checkpoints.
        rewind_step: Step whose weights are kept in ``rewind.pt`` (for pruning with rewinding).
        seed: Seed of the initialization, the batches and the noise.
        threads: Torch CPU threads.
    """

    steps: int = 3000
    minutes: float | None = None
    batch_size: int = 8
    learning_rate: float = 1e-3
    valid_every: int = 100
    rewind_step: int = 100
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.valid_every < 1:
            raise ValueError("steps, batch_size and valid_every must be positive integers")
        if self.minutes is not None and self.minutes <= 0:
            raise ValueError(f"minutes must be positive, got {self.minutes}")


def save_checkpoint(path: str | Path, model: ImpactGenerator, meta: dict, **extra: object) -> Path:
    """Saves weights, constructor kwargs and JSON-ready metadata (plus ``extra`` entries) atomically."""
    state: dict[str, object] = {
        "format": CHECKPOINT_FORMAT,
        "kwargs": dict(model.kwargs),
        "weights": model.state_dict(),
        "meta": meta,
    }
    state.update(extra)
    temporary, final = atomic_path(Path(path))
    try:
        torch.save(state, temporary)
        publish(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    return final


def load_checkpoint(path: str | Path) -> dict:
    """Reads a checkpoint with ``weights_only=True``; raises :class:`CheckpointError` when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; train one with 'flowsynth impact train'")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"cannot read {path} as a checkpoint ({type(error).__name__}: {error})") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an impact generator checkpoint (expected format {CHECKPOINT_FORMAT})")
    return state


def load_generator(path: str | Path) -> tuple[ImpactGenerator, dict]:
    """The generator of a checkpoint, in eval mode, and the checkpoint's metadata."""
    state = load_checkpoint(path)
    try:
        model = ImpactGenerator(**state["kwargs"])
        model.load_state_dict(state["weights"])
    except (TypeError, RuntimeError, KeyError) as error:
        raise CheckpointError(f"{path} does not match the generator's structure ({error})") from error
    return model.eval(), dict(state.get("meta", {}))


def _batch(data: ImpactDataset, config: TrainConfig, step: int) -> tuple[Tensor, Tensor]:
    rng = np.random.default_rng([config.seed, step])
    index = rng.choice(len(data), size=min(config.batch_size, len(data)), replace=False)
    return torch.from_numpy(data.curves[index]), torch.from_numpy(data.audio[index])


@torch.no_grad()
def evaluate(model: ImpactGenerator, data: ImpactDataset, batch_size: int = 16) -> float:
    """Mean :func:`spectral_loss` over a split (noise seed fixed, so the number is repeatable)."""
    model.eval()
    losses = []
    for start in range(0, len(data), batch_size):
        curves = torch.from_numpy(data.curves[start : start + batch_size])
        audio = torch.from_numpy(data.audio[start : start + batch_size])
        losses.append(float(spectral_loss(model(curves, audio.shape[-1], seed=0), audio)) * len(audio))
    model.train()
    return sum(losses) / len(data)


def train(
    data_path: str | Path,
    out_dir: str | Path,
    config: TrainConfig | None = None,
    model_kwargs: dict | None = None,
    log: Callable[[str], None] = print,
    init: str | Path | None = None,
) -> dict:
    """Trains (or resumes, from ``out_dir/last.pt``) a generator; keeps ``last.pt``, ``best.pt``, ``rewind.pt``.

    ``init`` starts a new run from a checkpoint's weights (its structure; ``model_kwargs`` may change
    settings that own no weights, e.g. ``noise_floor``).

    Returns:
        Summary: steps done, best validation loss, parameter count, seconds spent in this call.
    """
    config = config or TrainConfig()
    torch.set_num_threads(config.threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(data_path)
    train_set, valid_set = dataset.subset("train"), dataset.subset("valid")
    if len(train_set) == 0 or len(valid_set) == 0:
        raise ValueError(f"{data_path} needs clips in both the train and valid splits")
    model, optimizer, step, best, meta = _start(out, config, model_kwargs or {}, dataset, init)
    return _loop(model, optimizer, step, best, meta, train_set, valid_set, out, config, log)


def _start(out: Path, config: TrainConfig, model_kwargs: dict, dataset: ImpactDataset, init: str | Path | None):
    last = out / "last.pt"
    if last.is_file():
        state = load_checkpoint(last)
        model = ImpactGenerator(**state["kwargs"])
        model.load_state_dict(state["weights"])
        optimizer = torch.optim.Adam(model.parameters(), config.learning_rate)
        optimizer.load_state_dict(state["optimizer"])
        meta = dict(state["meta"])
        return model, optimizer, int(state["step"]), float(meta["best_valid"]), meta
    torch.manual_seed(config.seed)
    kwargs = {"sample_rate": dataset.sample_rate, "hop_length": dataset.descriptor_config.hop_length, **model_kwargs}
    start = load_checkpoint(init) if init else None
    if start is not None:
        kwargs = {**start["kwargs"], **{k: v for k, v in model_kwargs.items() if k not in _STRUCTURE}}
    model = ImpactGenerator(**kwargs)
    if start is not None:
        model.load_state_dict(start["weights"])
    meta = {
        "train_config": json.dumps(asdict(config)),
        "descriptor_config": json.dumps(dataset.descriptor_config.to_dict()),
        "best_valid": math.inf,
        "seconds": 0.0,
    }
    return model, torch.optim.Adam(model.parameters(), config.learning_rate), 0, math.inf, meta


def _loop(model, optimizer, step, best, meta, train_set, valid_set, out: Path, config: TrainConfig, log) -> dict:
    started, seconds_before = time.monotonic(), float(meta["seconds"])
    deadline = started + config.minutes * 60.0 if config.minutes else math.inf
    model.train()
    while step < config.steps and time.monotonic() < deadline:
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * 0.1 ** (step / config.steps)
        curves, audio = _batch(train_set, config, step)
        loss = spectral_loss(model(curves, audio.shape[-1], seed=config.seed * 1_000_003 + step), audio)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        step += 1
        if step == config.rewind_step:
            save_checkpoint(out / "rewind.pt", model, {**meta, "step": step})
        if step % config.valid_every == 0 or step == config.steps or time.monotonic() >= deadline:
            valid = evaluate(model, valid_set)
            meta["seconds"] = seconds_before + time.monotonic() - started
            if valid < best:
                best = meta["best_valid"] = valid
                save_checkpoint(out / "best.pt", model, {**meta, "step": step, "valid_loss": valid})
            save_checkpoint(out / "last.pt", model, meta, optimizer=optimizer.state_dict(), step=step)
            log(
                f"step {step}/{config.steps} loss {loss.item():.3f} valid {valid:.3f} best {best:.3f} "
                f"lr {optimizer.param_groups[0]['lr']:.2e} {meta['seconds'] / 60:.1f} min"
            )
    return {
        "steps": step,
        "best_valid": best,
        "parameters": model.num_parameters,
        "seconds": time.monotonic() - started,
    }
