"""Model checkpoints: weights, constructor arguments and metadata in one file that loads with nothing else.

A checkpoint is a dict saved with :func:`torch.save` and read back with ``torch.load(weights_only=True)``
(no arbitrary object is ever unpickled). Keys (format ``flowsynth-model/1``):

* ``format``, ``model`` (registry name), ``kwargs`` (constructor arguments), ``state_dict``;
* ``feature_norm`` (``{"mean", "std"}`` of the training split), ``synth`` (the synth's description, for
  :func:`flowsynth.synth.from_description`), ``render`` (render conditions), ``training`` (info).

Files are written atomically (a temporary file beside the target, then :func:`os.replace`).
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from flowsynth.errors import CheckpointError
from flowsynth.models.base import ParamModel
from flowsynth.models.registry import MODELS, build_model

__all__ = [
    "FORMAT",
    "SHIPPED_DIR",
    "atomic_save",
    "load_checkpoint",
    "load_model",
    "load_shipped_model",
    "model_checkpoint",
    "save_model",
    "shipped_models",
]

FORMAT = "flowsynth-model/1"
#: Where the package keeps its trained models (``NAME.pt``).
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"
_REQUIRED = ("model", "kwargs", "state_dict", "feature_norm", "synth", "render", "training")


def atomic_save(obj: Any, path: Path | str) -> Path:
    """Saves ``obj`` with :func:`torch.save` to ``path`` atomically: readers see the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def model_checkpoint(model: ParamModel, synth: dict, render: dict, training: dict | None = None) -> dict[str, Any]:
    """The checkpoint dict of a model (weights on the CPU, metadata as plain Python values)."""
    state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    return {
        "format": FORMAT,
        "model": model.name,
        "kwargs": dict(model.config),
        "state_dict": state,
        "feature_norm": model.feature_norm.state_dict(),
        "synth": synth,
        "render": render,
        "training": dict(training or {}),
    }


def save_model(path: Path | str, model: ParamModel, synth: dict, render: dict, training: dict | None = None) -> Path:
    """Writes a model's checkpoint to ``path`` (atomically).

    Arguments:
        path: Output file (``model.pt``).
        model: The model (its feature normalization must be set).
        synth: The synth's description (``Synth.describe()``; a dataset's ``synth_description``).
        render: Render conditions (a dataset's ``render_config``).
        training: Information about the training (epochs, time, validation figures, seed, data).
    """
    return atomic_save(model_checkpoint(model, synth, render, training), path)


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Reads and checks a checkpoint dict (see the module docstring).

    Raises:
        CheckpointError: the file is missing, truncated, not a torch file, of another format, or incomplete.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no model checkpoint at {path}; train one with `flowsynth train`")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, ValueError, AttributeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        message = f"{path} is not a readable model checkpoint (truncated or not a torch file): {reason}"
        raise CheckpointError(message) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path} is not a flowsynth model checkpoint (format {FORMAT}); found {found!r}")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise CheckpointError(f"{path} is an incomplete checkpoint: it lacks {', '.join(missing)}")
    if data["model"] not in MODELS:
        raise CheckpointError(f"{path} holds an unknown model {data['model']!r}; known: {', '.join(MODELS)}")
    return data


def load_model(path: Path | str) -> ParamModel:
    """Loads a model from its checkpoint, in eval mode, with ``model.meta`` holding the metadata.

    ``model.meta`` has the keys ``synth``, ``render``, ``feature_norm``, ``training`` and ``path``.

    Raises:
        CheckpointError: see :func:`load_checkpoint`, or weights that do not fit the architecture.
    """
    data = load_checkpoint(path)
    kwargs = dict(data["kwargs"])
    num_params = kwargs.pop("num_params", None)
    if not isinstance(num_params, int):
        raise CheckpointError(f"{path}: the checkpoint's kwargs lack num_params")
    try:
        model = build_model(data["model"], num_params, **kwargs)
        model.load_state_dict(data["state_dict"], strict=True)
    except (ValueError, RuntimeError, KeyError) as error:
        reason = str(error).splitlines()[0]
        raise CheckpointError(f"{path}: the weights do not fit model {data['model']!r}: {reason}") from None
    model.eval()
    model.meta = {key: data[key] for key in ("synth", "render", "feature_norm", "training")} | {"path": str(path)}
    return model


def shipped_models() -> list[str]:
    """Names of the trained models shipped in the package (``flowsynth/assets/models/NAME.pt``)."""
    return sorted(path.stem for path in SHIPPED_DIR.glob("*.pt"))


def load_shipped_model(name: str) -> ParamModel:
    """Loads a model shipped in the package by name (see :func:`shipped_models`).

    Raises:
        CheckpointError: no shipped model has that name.
    """
    path = SHIPPED_DIR / f"{name}.pt"
    if not path.is_file():
        known = ", ".join(shipped_models()) or "none"
        raise CheckpointError(f"no shipped model {name!r}; shipped: {known}")
    return load_model(path)
