"""Distances, candidates and refinement on in-domain sounds (renders of the built-in synth)."""

from __future__ import annotations

import pytest
import torch

from flowsynth.features.logmel import log_mel
from flowsynth.features.metrics import mfcc_l1, mr_stft
from flowsynth.matching import (
    Budget,
    TargetDistance,
    draw_candidates,
    refine_cma,
    refine_gradient,
    render,
    score_candidates,
)
from flowsynth.synth import RenderConfig, Synth, get_synth

CONFIG = RenderConfig(note_s=0.6, render_s=1.0)


def _sounds(synth: Synth, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    params = torch.rand(count, synth.num_learned, generator=torch.Generator().manual_seed(seed))
    return params, render(synth, params, CONFIG)


def test_distances_are_the_protocol_metrics_after_level_matching(synth16: Synth) -> None:
    _, audio = _sounds(synth16, 3, seed=1)
    target, candidates = audio[0], audio[1:]
    for metric, reference in (("mr_stft", mr_stft), ("mfcc_l1", mfcc_l1)):
        distance = TargetDistance(target, 22050, metric)
        matched = distance.matched(candidates)
        expected = reference(target.expand_as(candidates), matched)
        torch.testing.assert_close(distance(candidates), expected, rtol=1e-4, atol=1e-5)
    # level matching: a louder or softer copy of the target is at distance ~0
    distance = TargetDistance(target, 22050)
    assert float(distance(torch.stack([3.0 * target, 0.2 * target])).max()) < 0.01


def test_failed_renders_score_infinity(synth16: Synth) -> None:
    _, audio = _sounds(synth16, 2, seed=2)
    broken = audio.clone()
    broken[1, 10] = torch.nan
    scores = TargetDistance(audio[0], 22050)(broken)
    assert torch.isfinite(scores[0]) and scores[1] == float("inf")


def test_candidates_are_seeded_and_leave_the_global_generator_alone(model) -> None:
    features = torch.zeros(64, 80)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = draw_candidates(model, features, 5, seed=7)
    after = torch.rand(1)
    assert torch.equal(before, after)
    assert torch.equal(first, draw_candidates(model, features, 5, seed=7))
    assert not torch.equal(first, draw_candidates(model, features, 5, seed=8))
    assert first.shape == (6, 16) and first.min() >= 0 and first.max() <= 1
    torch.testing.assert_close(first[0], model.infer(features[None])[0])


def test_candidates_improve_over_the_mean_on_in_domain_sounds(model, synth16: Synth) -> None:
    _, targets = _sounds(synth16, 4, seed=3)
    mean_scores, best_scores = [], []
    for target in targets:
        distance = TargetDistance(target, 22050)
        candidates = draw_candidates(model, log_mel(target), 8, seed=0)
        scored = score_candidates(synth16, candidates, CONFIG, distance)
        mean_scores.append(float(scored.scores[0]))
        best_scores.append(scored.score)
        assert scored.score == float(scored.scores.min())
        torch.testing.assert_close(scored.params, candidates[scored.index])
    assert sum(best_scores) < 0.95 * sum(mean_scores)


@pytest.mark.parametrize("optimizer", ["gradient", "cma"])
def test_refinement_never_makes_the_kept_match_worse(synth16: Synth, optimizer: str) -> None:
    truths, targets = _sounds(synth16, 2, seed=4)
    generator = torch.Generator().manual_seed(5)
    for truth, target in zip(truths, targets, strict=True):
        distance = TargetDistance(target, 22050)
        start = (truth + 0.2 * torch.randn(truth.shape, generator=generator)).clamp(0, 1)
        start_score = distance(render(synth16, start[None], CONFIG))[0].item()
        refine = refine_gradient if optimizer == "gradient" else refine_cma
        budget = Budget(steps=6) if optimizer == "gradient" else Budget(renders=24)
        refined = refine(synth16, CONFIG, distance, start, start_score, budget)
        assert refined.score <= start_score
        assert refined.history == sorted(refined.history, reverse=True)  # the kept score never rises
        assert refined.renders <= 24
        if refined.improved:  # the kept parameters really sound that close
            again = distance(render(synth16, refined.params[None], CONFIG))[0].item()
            assert again == pytest.approx(refined.score, rel=1e-3)
        else:
            assert torch.equal(refined.params, start)


def test_gradient_refinement_gets_closer_from_a_near_start(synth16: Synth) -> None:
    truths, targets = _sounds(synth16, 2, seed=6)
    gains = []
    for truth, target in zip(truths, targets, strict=True):
        distance = TargetDistance(target, 22050)
        start = (truth + 0.1).clamp(0, 1)
        start_score = distance(render(synth16, start[None], CONFIG))[0].item()
        refined = refine_gradient(synth16, CONFIG, distance, start, start_score, Budget(steps=12), lr=0.1)
        gains.append(start_score - refined.score)
    assert max(gains) > 0.05 * start_score


def test_a_start_that_is_already_the_target_is_kept(synth16: Synth) -> None:
    truths, targets = _sounds(synth16, 1, seed=7)
    distance = TargetDistance(targets[0], 22050)
    refined = refine_cma(synth16, CONFIG, distance, truths[0], 0.0, Budget(steps=1))
    assert not refined.improved and refined.score == 0.0 and torch.equal(refined.params, truths[0])


def test_budget_needs_a_limit_and_gradient_needs_a_differentiable_synth(synth16: Synth) -> None:
    with pytest.raises(ValueError, match="needs steps, seconds or renders"):
        Budget()
    synth = get_synth("builtin-16")
    synth.differentiable = False  # an instance flag, as non-differentiable synths declare it
    with pytest.raises(ValueError, match="not differentiable"):
        refine_gradient(synth, CONFIG, TargetDistance(torch.ones(4096), 22050), torch.zeros(16), 1.0, Budget(steps=1))
