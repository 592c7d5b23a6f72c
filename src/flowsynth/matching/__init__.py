"""Sound matching: any sound in, the synth preset that sounds closest to it out.

:func:`match` prepares the target (:func:`prepare_target`: trim, normalize, pitch, envelope), draws
candidates from a model's posterior, renders them at the target's note, keeps the best by audio
distance (:class:`TargetDistance`) and refines it (gradient descent or CMA-ES) within a budget;
:func:`write_match` writes the preset, both sounds, their spectrograms and the report.

Example:
    ``write_match(match("voice.wav", load_model("model.pt")), "out/")``
"""

from flowsynth.matching.conditions import Condition, conditions, shifted_log_mel, target_features
from flowsynth.matching.distance import MATCH_METRICS, TargetDistance
from flowsynth.matching.match import MatchResult, MatchSettings, match, match_target
from flowsynth.matching.models import default_model_path, load_match_model
from flowsynth.matching.output import write_match
from flowsynth.matching.refine import Budget, Refined, refine_cma, refine_gradient
from flowsynth.matching.search import (
    Scored,
    draw_candidates,
    nearest_neighbour,
    random_candidates,
    render,
    score_candidates,
)
from flowsynth.matching.target import Target, prepare_target

__all__ = [
    "MATCH_METRICS",
    "Budget",
    "Condition",
    "MatchResult",
    "MatchSettings",
    "Refined",
    "Scored",
    "Target",
    "TargetDistance",
    "conditions",
    "default_model_path",
    "draw_candidates",
    "load_match_model",
    "match",
    "match_target",
    "nearest_neighbour",
    "prepare_target",
    "random_candidates",
    "refine_cma",
    "refine_gradient",
    "render",
    "score_candidates",
    "shifted_log_mel",
    "target_features",
    "write_match",
]
