"""Candidate parameter vectors and how they are scored: model posterior draws, random draws, nearest neighbour.

Every search renders its candidates in one batch at the target's render conditions and keeps the
one with the smallest :class:`~flowsynth.matching.distance.TargetDistance`; a candidate whose render
fails (NaN, crash) scores +inf and is never kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from flowsynth.matching.distance import TargetDistance
from flowsynth.synth.base import RenderConfig, Synth

__all__ = [
    "RANDOM_SEED_OFFSET",
    "Scored",
    "draw_candidates",
    "nearest_neighbour",
    "random_candidates",
    "render",
    "score_candidates",
]


@dataclass
class Scored:
    """The best of a set of scored candidates.

    Arguments:
        params: Its normalized parameters ``[num_learned]``.
        score: Its distance to the target.
        audio: Its render ``[samples]`` (synth output, before level matching).
        index: Its row among the candidates.
        scores: The score of every candidate ``[B]``.
    """

    params: Tensor
    score: float
    audio: Tensor
    index: int
    scores: Tensor

    @property
    def renders(self) -> int:
        """How many candidates were rendered."""
        return len(self.scores)


def render(synth: Synth, params: Tensor, config: RenderConfig, seed: int = 0) -> Tensor:
    """Renders ``params [B, d]`` (clamped to [0, 1]) without gradients; failed sounds are NaN rows."""
    with torch.no_grad():
        return synth.render_with(params.detach().float().clamp(0.0, 1.0), config, seed=seed, on_error="nan")


def score_candidates(
    synth: Synth, params: Tensor, config: RenderConfig, distance: TargetDistance, seed: int = 0
) -> Scored:
    """Renders every candidate ``[B, d]`` in one batch and returns the best by ``distance``.

    Raises:
        ValueError: No candidate.
    """
    if params.dim() != 2 or params.shape[0] == 0:
        raise ValueError(f"need candidates [B >= 1, {synth.num_learned}], got {list(params.shape)}")
    params = params.detach().float().clamp(0.0, 1.0)
    audio = render(synth, params, config, seed)
    scores = distance(audio)
    best = int(torch.argmin(scores))
    return Scored(params[best].clone(), float(scores[best]), audio[best].clone(), best, scores)


def draw_candidates(model, features: Tensor, count: int, seed: int = 0) -> Tensor:
    """The model's estimate (its posterior mean) then ``count`` draws from its posterior: ``[count + 1, d]``.

    Arguments:
        model: A :class:`flowsynth.models.ParamModel`.
        features: Raw log-mel features of one sound ``[64, 80]`` (or ``[1, 64, 80]``).
        count: Number of posterior draws (0 for the estimate alone).
        seed: Seed of the draws (the global torch generator is forked, not disturbed).

    Draws with NaN (a flow's numerical failure) are dropped; values are clamped to [0, 1].
    """
    if count < 0:
        raise ValueError(f"the number of candidates must be >= 0, got {count}")
    features = features.reshape(1, *features.shape[-2:])
    mean = model.infer(features).reshape(1, -1)
    if count == 0:
        return mean.clamp(0.0, 1.0)
    with torch.no_grad(), model.evaluating(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        draws = model.posterior(features).sample((count,)).reshape(count, -1)
    draws = draws[torch.isfinite(draws).all(dim=1)]
    return torch.cat([mean, draws]).float().clamp(0.0, 1.0)


#: Offset of the random-search seeds: datasets draw their parameters with ``torch.rand`` from small
#: seeds, and a search from the same seed would draw exactly the dataset's sounds.
RANDOM_SEED_OFFSET = 0x5EA2C4_0000


def random_candidates(num_params: int, count: int, seed: int = 0) -> Tensor:
    """``count`` uniform random parameter vectors ``[count, num_params]`` (random search).

    Drawn from seed ``RANDOM_SEED_OFFSET + seed``, a stream no dataset of ``flowsynth render-dataset``
    uses, so that a search never starts from the very sounds of a test split.

    >>> random_candidates(3, 2, seed=0).shape
    torch.Size([2, 3])
    >>> from flowsynth.data import sample_params
    >>> bool((random_candidates(3, 2, seed=0) == sample_params(2, 3, seed=0).params).any())
    False
    """
    generator = torch.Generator().manual_seed(RANDOM_SEED_OFFSET + seed)
    return torch.rand(count, num_params, generator=generator)


def nearest_neighbour(
    features: Tensor, bank_features: Tensor, bank_params: Tensor, chunk: int = 2048
) -> tuple[Tensor, int, float]:
    """The parameters of the bank sound whose log-mel is closest (mean absolute difference) to ``features``.

    Arguments:
        features: Raw log-mel of the target ``[64, 80]``.
        bank_features: Raw log-mel of the bank's sounds ``[n, 64, 80]`` (a training split).
        bank_params: Their parameters ``[n, d]``.
        chunk: Bank sounds compared at once.

    Returns:
        The parameters ``[d]``, the row and the log-mel distance of the nearest sound.

    >>> bank = torch.stack([torch.zeros(64, 80), torch.ones(64, 80)])
    >>> params, row, distance = nearest_neighbour(torch.full((64, 80), 0.9), bank, torch.tensor([[0.0], [1.0]]))
    >>> params, row, round(distance, 4)
    (tensor([1.]), 1, 0.1)
    """
    if len(bank_features) == 0 or len(bank_features) != len(bank_params):
        raise ValueError("the bank needs as many parameter rows as feature rows, and at least one")
    target = features.reshape(1, -1).float()
    distances = torch.cat(
        [(bank_features[i : i + chunk].reshape(-1, target.shape[1]).float() - target).abs().mean(dim=1)
         for i in range(0, len(bank_features), chunk)]
    )  # fmt: skip
    best = int(torch.argmin(distances))
    return bank_params[best].float().clone(), best, float(distances[best])
