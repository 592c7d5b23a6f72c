"""Control: a trained latent model as an instrument (macro knobs, semantic knobs, interpolation, preset map).

The pieces, each usable alone:

* :class:`SoundSpace`: model + synth + render conditions (latent <-> parameters <-> audio <-> descriptors);
* :func:`analyze_macros` -> :class:`MacroSet`: latent dimensions as ranked, named knobs;
* :func:`fit_semantic_knobs` -> :class:`SemanticKnobs` (``flow_dis``'s own, or measured directions),
  measured with :func:`evaluate_semantic`;
* :func:`latent_path`, :func:`linear_path`, :func:`compare_paths`: interpolation and its smoothness;
* :class:`PresetBank`, :func:`preset_map` -> :class:`PresetMap`: presets in 2-D;
* :class:`Instrument` (the thread-safe current sound every interface drives), built by
  :func:`build_instrument` with its measurements cached.
"""

from flowsynth.control.build import ControlSetup, build_instrument, default_cache_dir
from flowsynth.control.descriptors import DIRECTION_WORDS, DescriptorScale, spearman
from flowsynth.control.instrument import Instrument
from flowsynth.control.interpolate import (
    InterpolationPath,
    compare_paths,
    latent_path,
    latent_path_between,
    linear_path,
    smoothness,
)
from flowsynth.control.macros import AnalysisConfig, Macro, MacroSet, analyze_macros
from flowsynth.control.map import PresetBank, PresetMap, preset_map
from flowsynth.control.semantic import SemanticKnob, SemanticKnobs, evaluate_semantic, fit_semantic_knobs
from flowsynth.control.space import SoundSpace

__all__ = [
    "DIRECTION_WORDS",
    "AnalysisConfig",
    "ControlSetup",
    "DescriptorScale",
    "Instrument",
    "InterpolationPath",
    "Macro",
    "MacroSet",
    "PresetBank",
    "PresetMap",
    "SemanticKnob",
    "SemanticKnobs",
    "SoundSpace",
    "analyze_macros",
    "build_instrument",
    "compare_paths",
    "default_cache_dir",
    "evaluate_semantic",
    "fit_semantic_knobs",
    "latent_path",
    "latent_path_between",
    "linear_path",
    "preset_map",
    "smoothness",
    "spearman",
]
