"""Which model a match uses: a checkpoint file, the model shipped with flowsynth, or none at all."""

from __future__ import annotations

from pathlib import Path

from flowsynth.errors import CheckpointError

__all__ = ["DEFAULT_PATTERNS", "SHIPPED_MODELS_DIR", "default_model_path", "load_match_model"]

#: Folder of the model checkpoints shipped in the package.
SHIPPED_MODELS_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"


#: File patterns of the default model, in order of preference: the built-in synth's flow_reg first.
DEFAULT_PATTERNS = ("builtin-32-flow_reg*.pt", "builtin*flow_reg*.pt", "*flow_reg*.pt", "*.pt")


def default_model_path(folder: Path = SHIPPED_MODELS_DIR) -> Path | None:
    """The shipped default model: the first file of ``folder`` matching :data:`DEFAULT_PATTERNS`, or None.

    >>> default_model_path(Path("/nonexistent")) is None
    True
    >>> default_model_path().name if default_model_path() else "builtin-32-flow_reg.pt"
    'builtin-32-flow_reg.pt'
    """
    if not folder.is_dir():
        return None
    for pattern in DEFAULT_PATTERNS:
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    return None


def load_match_model(spec: str | Path | None):
    """The model named by ``spec``: a checkpoint path, ``"none"`` (model-free search: returns None),
    or None for the shipped default model.

    Raises:
        CheckpointError: No checkpoint at the path, an unreadable one, or no shipped model.
    """
    from flowsynth.models import load_model

    if spec is not None and str(spec).lower() == "none":
        return None
    if spec is None:
        path = default_model_path()
        if path is None:
            raise CheckpointError(
                f"no model given and no shipped model in {SHIPPED_MODELS_DIR}; pass --model PATH "
                "(a checkpoint of `flowsynth train`) or --model none --synth NAME for a model-free search"
            )
        return load_model(path)
    return load_model(Path(spec))
