"""Sound matching: a target sound in, the synth parameters that make the closest sound out.

Stages (each timed in the report):

1. **prepare**: load, trim, normalize and analyse the target (:func:`~flowsynth.matching.target.prepare_target`).
2. **infer**: the render conditions (:mod:`~flowsynth.matching.conditions`): the synth plays the
   target's note (the model's input then moved to the model's reference note) or the reference note,
   held as long as the target's envelope says or as the model's sounds were; the model's estimate is
   rendered under each and the closest condition kept. Then the candidates: the posterior mean,
   ``candidates`` posterior draws and the mean with the target's envelope and vibrato hints
   (:mod:`~flowsynth.matching.hints`). Without a model: the synth's defaults and ``candidates``
   uniform random draws (random search).
3. **candidates**: every candidate rendered in one batch at the target's note, the best kept by the
   ranking distance (MR-STFT or MFCC-L1 after level matching); then the hints applied to that best.
4. **refine** (optional): gradient descent (differentiable synths) or CMA-ES (any synth) from the
   best, within a budget of steps and/or seconds; never worse than its start.
5. **metrics**: every protocol metric between the target and the level-matched match.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from flowsynth.errors import RenderError
from flowsynth.features.metrics import audio_metrics
from flowsynth.matching.conditions import HOLDS, Condition, choose_condition, conditions, shifted_log_mel
from flowsynth.matching.distance import MATCH_METRICS, TargetDistance
from flowsynth.matching.hints import apply_hints, hint_values, hinted_names
from flowsynth.matching.refine import Budget, Refined, refine_cma, refine_gradient
from flowsynth.matching.search import Scored, draw_candidates, random_candidates, score_candidates
from flowsynth.matching.target import Target, prepare_target
from flowsynth.synth.base import RenderConfig, Synth

__all__ = [
    "OPTIMIZERS",
    "MatchResult",
    "MatchSettings",
    "match",
    "match_target",
]

#: Refinement optimizers: ``auto`` is gradient descent for differentiable synths, CMA-ES otherwise.
OPTIMIZERS = ("auto", "gradient", "cma")


@dataclass(frozen=True)
class MatchSettings:
    """How hard to look for a match.

    Arguments:
        candidates: Posterior draws (random draws without a model) rendered besides the model's estimate.
        refine_steps: Refinement iterations (gradient steps or CMA-ES generations); 0 for none, None for
            as many as ``budget_s`` allows.
        budget_s: Wall-time budget of the whole match in seconds; refinement stops when it is spent.
        metric: Ranking distance, ``"mr_stft"`` or ``"mfcc_l1"``.
        optimizer: ``"auto"``, ``"gradient"`` or ``"cma"``.
        hints: Also try the target's envelope and vibrato as parameter values.
        hold: Hold time of the synth note: ``"auto"`` (the note-off time of the target's envelope),
            ``"model"`` (the model's render conditions), ``"both"`` (whichever suits the model's
            estimate better) or seconds.
        note: MIDI note to play the synth at (None: the target's pitch).
        reference_note: For a pitched target, also try playing the model's reference note (the
            synth's tuning then carries the pitch) and keep it if the model's estimate fits better.
        shift_features: Move a pitched target to the model's reference note before inferring.
        lr: Learning rate of gradient refinement (on parameter logits).
        mel_weight: Weight of the log-mel L1 term of the gradient loss.
        cma_sigma: Initial step size of CMA-ES, in normalized parameter units.
        seed: Seed of the posterior draws, the random candidates, CMA-ES and the synth's noise.
    """

    candidates: int = 32
    refine_steps: int | None = 0
    budget_s: float | None = None
    metric: str = "mr_stft"
    optimizer: str = "auto"
    hints: bool = True
    hold: str | float = "both"
    note: float | None = None
    reference_note: bool = True
    shift_features: bool = True
    lr: float = 0.2
    mel_weight: float = 0.5
    cma_sigma: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.candidates < 0:
            raise ValueError(f"candidates must be >= 0, got {self.candidates}")
        if self.refine_steps is not None and self.refine_steps < 0:
            raise ValueError(f"refine steps must be >= 0, got {self.refine_steps}")
        if self.budget_s is not None and not self.budget_s > 0:
            raise ValueError(f"the time budget must be > 0 seconds, got {self.budget_s}")
        if self.refine_steps is None and self.budget_s is None:
            raise ValueError("refinement without a step count needs a time budget (budget_s)")
        if self.metric not in MATCH_METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; known: {', '.join(MATCH_METRICS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; known: {', '.join(OPTIMIZERS)}")
        if isinstance(self.hold, str) and self.hold not in HOLDS:
            raise ValueError(f"hold must be one of {', '.join(HOLDS)} or seconds, got {self.hold!r}")

    @property
    def refines(self) -> bool:
        """Whether refinement runs at all."""
        return self.refine_steps != 0


@dataclass
class MatchResult:
    """A finished match.

    Arguments:
        target: The target as analysed.
        synth: The synth the preset is for.
        params: The matched normalized parameters ``[num_learned]``.
        audio: The match at the target's level ``[samples]`` (the synth's output times ``gain``).
        gain_db: Gain from the synth's output to :attr:`audio`.
        metrics: Every protocol metric between target and match.
        report: JSON-ready report (target analysis, stages with their times, scores, settings).
    """

    target: Target
    synth: Synth
    params: Tensor
    audio: Tensor
    gain_db: float
    metrics: dict[str, float]
    report: dict[str, Any] = field(default_factory=dict)


def _resolve(model, synth: Synth | None, config: RenderConfig | None) -> tuple[Synth, RenderConfig]:
    """The synth and render conditions: given, or the model's checkpoint's."""
    meta = getattr(model, "meta", None) or {}
    if synth is None:
        if "synth" not in meta:
            raise ValueError("give a synth, or a model loaded from a checkpoint (which names its synth)")
        from flowsynth.synth import from_description

        synth = from_description(meta["synth"])
    if config is None:
        config = RenderConfig(**meta["render"]) if "render" in meta else RenderConfig()
    if model is not None and model.num_params != synth.num_learned:
        raise ValueError(
            f"the model infers {model.num_params} parameters but synth {synth.name} learns {synth.num_learned}"
        )
    return synth, config


def _default_vector(synth: Synth) -> Tensor:
    full = synth.space.full_defaults()
    return full[[synth.space.names.index(n) for n in synth.space.learned]].reshape(1, -1)


def _estimate(model, synth: Synth, target: Target) -> Callable[[Condition], Tensor]:
    """The model's estimate ``[1, d]`` under a condition (the synth's defaults without a model)."""
    cache: dict[float, Tensor] = {}

    def estimate(condition: Condition) -> Tensor:
        if model is None:
            return _default_vector(synth)
        if condition.shift not in cache:
            features = shifted_log_mel(target.audio, target.sample_rate, condition.shift)
            cache[condition.shift] = draw_candidates(model, features, 0)
        return cache[condition.shift]

    return estimate


def _candidates(
    model, synth: Synth, target: Target, settings: MatchSettings, condition: Condition
) -> tuple[Tensor, list[str]]:
    """The candidates ``[B, d]`` under ``condition`` and where each comes from."""
    if model is None:
        draws = random_candidates(synth.num_learned, settings.candidates, settings.seed)
        start = torch.cat([_default_vector(synth), draws])
        origins = ["synth defaults"] + ["random draw"] * len(draws)
    else:
        features = shifted_log_mel(target.audio, target.sample_rate, condition.shift)
        start = draw_candidates(model, features, settings.candidates, settings.seed)
        origins = ["model estimate"] + ["posterior draw"] * (len(start) - 1)
    if settings.hints and hinted_names(synth, hint_values(target)):
        start = torch.cat([start, apply_hints(synth, start[:1], hint_values(target))])
        origins.append(f"{origins[0]} with the target's envelope and vibrato")
    return start, origins


def _try_hints(synth: Synth, target: Target, distance: TargetDistance, best: Scored, seed: int) -> tuple[Scored, int]:
    """The best candidate with the target's hints applied, if that scores better; and the renders spent."""
    values = hint_values(target)
    hinted = apply_hints(synth, best.params[None], values)
    if not hinted_names(synth, values) or torch.equal(hinted[0], best.params):
        return best, 0
    scored = score_candidates(synth, hinted, target.config, distance, seed)
    return (scored if scored.score < best.score else best), 1


def _refine(
    synth: Synth, target: Target, distance: TargetDistance, best: Scored, settings: MatchSettings, left_s: float | None
) -> tuple[Refined, str]:
    optimizer = settings.optimizer
    if optimizer == "auto":
        optimizer = "gradient" if synth.differentiable else "cma"
    budget = Budget(steps=settings.refine_steps, seconds=left_s)
    args = (synth, target.config, distance, best.params, best.score, budget)
    if optimizer == "gradient":
        refined = refine_gradient(*args, lr=settings.lr, mel_weight=settings.mel_weight, seed=settings.seed)
    else:
        refined = refine_cma(*args, sigma=settings.cma_sigma, seed=settings.seed)
    return refined, optimizer


def match(
    source: str | os.PathLike[str] | Tensor,
    model=None,
    synth: Synth | None = None,
    settings: MatchSettings | None = None,
    *,
    config: RenderConfig | None = None,
    source_rate: int | None = None,
) -> MatchResult:
    """Finds the synth parameters whose sound is closest to ``source`` (see the module docstring).

    Arguments:
        source: A sound file, or samples ``[N]`` at ``source_rate``.
        model: A :class:`flowsynth.models.ParamModel` (from :func:`flowsynth.models.load_model`), or None
            for a model-free search (random candidates, then refinement).
        synth: The synth to match with (default: the model's).
        settings: How hard to look (default :class:`MatchSettings`).
        config: Render conditions (default: the model's; the note and hold time follow the target).
        source_rate: Sample rate of ``source`` when it is samples.

    Raises:
        AudioError: The target cannot be matched (not audio, no sound, too short, too long).
        ValueError: The model and synth disagree, or a setting is out of range.
    """
    settings = settings or MatchSettings()
    begin = time.perf_counter()
    synth, config = _resolve(model, synth, config)
    hold = "auto" if settings.hold == "both" else settings.hold
    target = prepare_target(source, config, source_rate=source_rate, note=settings.note, hold=hold)
    return match_target(target, model, synth, settings, reference=config, begin=begin)


def match_target(
    target: Target,
    model=None,
    synth: Synth | None = None,
    settings: MatchSettings | None = None,
    *,
    reference: RenderConfig | None = None,
    begin: float | None = None,
) -> MatchResult:
    """Matches a prepared target (:func:`~flowsynth.matching.target.prepare_target`): stages 2 to 5 of the module docstring.

    Arguments:
        target: The prepared target; it is rendered at ``target.config``.
        model: The model, or None for a model-free search.
        synth: The synth (default: the model's).
        settings: How hard to look; its ``note`` was the target's business (``prepare_target``).
        reference: The render conditions of the model's training sounds (default: the model's).
        begin: ``time.perf_counter()`` when the match began (default: now), for the time budget and report.
    """
    settings = settings or MatchSettings()
    begin = time.perf_counter() if begin is None else begin
    synth, config = _resolve(model, synth, reference)
    stages: dict[str, dict[str, Any]] = {"prepare": {"time_s": time.perf_counter() - begin}}
    mark = time.perf_counter()
    distance = TargetDistance(target.audio, target.sample_rate, settings.metric)
    options = conditions(target, config, settings.hold, settings.reference_note, settings.shift_features)
    chosen, tried = choose_condition(synth, distance, options, _estimate(model, synth, target), settings.seed)
    target = replace(target, config=chosen.config)
    candidates, origins = _candidates(model, synth, target, settings, chosen)
    renders = len(tried) if len(tried) > 1 else 0
    stages["infer"] = {"time_s": time.perf_counter() - mark, "renders": renders, "candidates": len(candidates)}
    stages["infer"]["conditions"] = tried
    best, stages["candidates"] = _search(synth, target, distance, candidates, origins, settings)
    if settings.refines:
        left = None if settings.budget_s is None else max(0.0, settings.budget_s - (time.perf_counter() - begin))
        refined, optimizer = _refine(synth, target, distance, best, settings, left)
        stages["refine"] = _refine_stage(refined, optimizer, best.score)
        if refined.audio is not None:
            best = Scored(refined.params, refined.score, refined.audio, best.index, best.scores)
    mark = time.perf_counter()
    gain = float(distance.gain(best.audio[None])[0])
    matched = best.audio * gain
    metrics = {k: float(v) for k, v in audio_metrics(target.audio, matched, target.sample_rate).items()}
    stages["metrics"] = {"time_s": time.perf_counter() - mark}
    result = MatchResult(target, synth, best.params, matched, 20.0 * math.log10(gain), metrics)
    result.report = _report(result, model, settings, stages, best.score, time.perf_counter() - begin)
    return result


def _search(
    synth: Synth,
    target: Target,
    distance: TargetDistance,
    candidates: Tensor,
    origins: list[str],
    settings: MatchSettings,
) -> tuple[Scored, dict[str, Any]]:
    """Stage 3: the best candidate (then with the hints applied, if better) and the stage's report."""
    mark = time.perf_counter()
    scored = score_candidates(synth, candidates, target.config, distance, settings.seed)
    if not math.isfinite(scored.score):
        raise RenderError(f"{synth.name} failed to render every candidate")
    best, extra = _try_hints(synth, target, distance, scored, settings.seed) if settings.hints else (scored, 0)
    stage = {
        "time_s": time.perf_counter() - mark,
        "renders": scored.renders + extra,
        "start_score": float(scored.scores[0]),
        "best_score": best.score,
        "best": origins[scored.index],
        "hints_improved": best is not scored,
    }
    return best, stage


def _refine_stage(refined: Refined, optimizer: str, start_score: float) -> dict[str, Any]:
    return {
        "optimizer": optimizer,
        "time_s": refined.time_s,
        "steps": refined.steps,
        "renders": refined.renders,
        "start_score": start_score,
        "best_score": refined.score,
        "improved": refined.improved,
    }


def _report(
    result: MatchResult, model, settings: MatchSettings, stages: dict, score: float, total_s: float
) -> dict[str, Any]:
    meta = getattr(model, "meta", None) or {}
    values = hint_values(result.target) if settings.hints else {}
    return {
        "target": result.target.describe(),
        "synth": result.synth.name,
        "num_params": result.synth.num_learned,
        "model": None if model is None else {"name": model.name, "path": meta.get("path")},
        "render": result.target.config.describe(),
        "settings": asdict(settings),
        "metric": settings.metric,
        "score": score,
        "metrics": result.metrics,
        "match_gain_db": result.gain_db,
        "hints": {name: values[name] for name in hinted_names(result.synth, values)},
        "stages": stages,
        "time_s": total_s,
    }
