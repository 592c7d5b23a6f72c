"""Refinement of a match within a budget: gradient descent through a differentiable synth, or CMA-ES.

Both keep the best parameters seen, judged by the same distance the candidates were ranked by, and
start from the best candidate with its score: a refined match is never worse than its start.

* :func:`refine_gradient` (differentiable synths, e.g. the built-in one): Adam on the logits of the
  parameters (``params = sigmoid(logits)``, so they stay in [0, 1]), loss MR-STFT of the level-matched
  render (plus, optionally, the L1 distance of the log-mel model input). One step is one render.
* :func:`refine_cma` (any synth: Faust programs, plugins): CMA-ES from the ``cma`` package within
  the [0, 1] box, one batch render per generation.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from flowsynth.matching.distance import TargetDistance
from flowsynth.matching.optim import Adam
from flowsynth.matching.search import score_candidates
from flowsynth.synth.base import RenderConfig, Synth

__all__ = ["Budget", "Refined", "refine_cma", "refine_gradient"]

#: The start is moved this far inside the [0, 1] box (a sigmoid's logit is infinite on its edges).
_EDGE = 0.01


@dataclass(frozen=True)
class Budget:
    """When a refinement stops: after ``steps`` iterations, ``renders`` renders or ``seconds`` of wall time.

    ``None`` means no limit of that kind; at least one limit must be set. An iteration does not start
    when it would end past ``seconds``, judging by how long the last one took.

    >>> Budget(steps=3).spent(steps=3, renders=0, elapsed_s=0.0)
    True
    """

    steps: int | None = None
    seconds: float | None = None
    renders: int | None = None

    def __post_init__(self) -> None:
        if self.steps is None and self.seconds is None and self.renders is None:
            raise ValueError("a refinement budget needs steps, seconds or renders")
        for name in ("steps", "seconds", "renders"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"budget {name} must be >= 0, got {value}")

    def spent(self, steps: int, renders: int, elapsed_s: float, next_renders: int = 1, next_s: float = 0.0) -> bool:
        """Whether another iteration (``next_renders`` renders, about ``next_s`` seconds) would go past the budget."""
        return (
            (self.steps is not None and steps >= self.steps)
            or (self.renders is not None and renders + next_renders > self.renders)
            or (self.seconds is not None and (elapsed_s >= self.seconds or elapsed_s + next_s > self.seconds))
        )


@dataclass
class Refined:
    """What a refinement found.

    Arguments:
        params: Best parameters ``[d]``.
        score: Their distance (equal to the start's when nothing better was found).
        audio: Their render ``[samples]``, or None when the start stayed best.
        steps: Iterations run (gradient steps or CMA-ES generations).
        renders: Sounds rendered.
        time_s: Wall time.
        history: Best score after each iteration.
    """

    params: Tensor
    score: float
    audio: Tensor | None
    steps: int = 0
    renders: int = 0
    time_s: float = 0.0
    history: list[float] = field(default_factory=list)

    @property
    def improved(self) -> bool:
        """Whether a better match than the start was found."""
        return self.audio is not None


def refine_gradient(
    synth: Synth,
    config: RenderConfig,
    distance: TargetDistance,
    start: Tensor,
    start_score: float,
    budget: Budget,
    *,
    lr: float = 0.2,
    mel_weight: float = 0.0,
    seed: int = 0,
) -> Refined:
    """Gradient descent through ``synth`` from ``start [d]`` (see the module docstring).

    Raises:
        ValueError: The synth is not differentiable.
    """
    if not synth.differentiable:
        raise ValueError(f"{synth.name} is not differentiable: refine it with CMA-ES (optimizer 'cma')")
    begin = time.perf_counter()
    best = Refined(start.detach().clone(), float(start_score), None)
    logits = torch.logit(start.detach().float().clamp(_EDGE, 1.0 - _EDGE)).reshape(1, -1).requires_grad_(True)
    optimizer = Adam(logits, lr=lr)
    exact = distance.metric == "mr_stft" and not mel_weight
    last_s = 0.0
    while not budget.spent(best.steps, best.renders, time.perf_counter() - begin, next_s=last_s):
        mark = time.perf_counter()
        optimizer.zero_grad()
        params = torch.sigmoid(logits)
        audio = synth.render_with(params, config, seed=seed, on_error="nan")
        best.steps, best.renders = best.steps + 1, best.renders + 1
        loss = distance.loss(audio, mel_weight)
        if not torch.isfinite(loss).all():
            break  # a failed render: keep the best so far
        score = float(loss.detach()) if exact else float(distance(audio.detach())[0])
        _keep_if_better(best, params[0], score, audio[0])
        loss.sum().backward()
        optimizer.step()
        last_s = time.perf_counter() - mark
    best.time_s = time.perf_counter() - begin
    return best


def _keep_if_better(best: Refined, params: Tensor, score: float, audio: Tensor) -> None:
    if math.isfinite(score) and score < best.score:
        best.params, best.score, best.audio = params.detach().clone(), score, audio.detach().clone()
    best.history.append(best.score)


def refine_cma(
    synth: Synth,
    config: RenderConfig,
    distance: TargetDistance,
    start: Tensor,
    start_score: float,
    budget: Budget,
    *,
    sigma: float = 0.2,
    popsize: int | None = None,
    seed: int = 0,
) -> Refined:
    """CMA-ES from ``start [d]`` within [0, 1] (see the module docstring); ``popsize`` None is CMA-ES' default.

    The ``cma`` package is seeded with ``seed + 1`` (its seed 0 means "from the clock").
    """
    import cma  # lazy: only this optimizer needs it

    begin = time.perf_counter()
    best = Refined(start.detach().clone(), float(start_score), None)
    options = {"bounds": [0.0, 1.0], "seed": seed + 1, "verbose": -9}
    if popsize is not None:
        options["popsize"] = int(popsize)
    x0 = start.detach().double().clamp(_EDGE, 1.0 - _EDGE).numpy()
    strategy = cma.CMAEvolutionStrategy(x0, sigma, options)
    size, last_s = int(strategy.popsize), 0.0
    while not strategy.stop() and not budget.spent(
        best.steps, best.renders, time.perf_counter() - begin, next_renders=size, next_s=last_s
    ):
        mark = time.perf_counter()
        solutions = strategy.ask()
        scored = score_candidates(synth, torch.tensor(np.array(solutions)), config, distance, seed)
        finite = torch.where(torch.isfinite(scored.scores), scored.scores, torch.tensor(1e6))
        strategy.tell(solutions, finite.tolist())
        best.steps, best.renders = best.steps + 1, best.renders + size
        _keep_if_better(best, scored.params, scored.score, scored.audio)
        last_s = time.perf_counter() - mark
    best.time_s = time.perf_counter() - begin
    return best
