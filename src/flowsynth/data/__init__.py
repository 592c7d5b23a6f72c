"""Rendered datasets: seeded parameter sampling, resumable rendering, the HDF5 store."""

from flowsynth.data.render import RenderJob, render_dataset
from flowsynth.data.sampling import sample_params
from flowsynth.data.store import DatasetFile
from flowsynth.synth.presets import Preset

__all__ = ["DatasetFile", "Preset", "RenderJob", "render_dataset", "sample_params"]
