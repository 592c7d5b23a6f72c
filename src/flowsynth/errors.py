"""The project's own exception types, which the command line turns into one clear line."""

from __future__ import annotations

__all__ = ["FlowsynthError", "AudioError", "RenderError", "DatasetError", "CheckpointError"]


class FlowsynthError(Exception):
    """Base class of every error that is the user's to fix (bad input, missing file, ...)."""


class AudioError(FlowsynthError, ValueError):
    """Audio that cannot be used: unreadable, empty, silent, NaN, wrong shape."""


class RenderError(FlowsynthError, RuntimeError):
    """A synth failed to render a sound (crash, hang, NaN output)."""


class DatasetError(FlowsynthError, ValueError):
    """A dataset file that is missing, incomplete or inconsistent."""


class CheckpointError(FlowsynthError, ValueError):
    """A model checkpoint that is missing, truncated or of another format."""
