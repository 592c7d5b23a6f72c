"""Macro knobs: measured, ranked, named, decoded; freeze mode."""

from __future__ import annotations

import pytest
import torch

from flowsynth.control import DIRECTION_WORDS, AnalysisConfig, MacroSet, SoundSpace, analyze_macros


@pytest.fixture(scope="module")
def macros(space: SoundSpace, reference: torch.Tensor, quick: AnalysisConfig) -> MacroSet:
    return analyze_macros(space, reference, quick)


def _rank_scores(macros: MacroSet) -> list[float]:
    sound = max(m.sound_score for m in macros.macros)
    params = max(m.param_score for m in macros.macros)
    return [m.sound_score / sound + 0.5 * m.param_score / params for m in macros.macros]


def test_one_knob_per_dimension_ranked_by_how_much_it_moves(
    macros: MacroSet, space: SoundSpace, quick: AnalysisConfig
) -> None:
    assert sorted(m.dim for m in macros.macros) == list(range(space.latent_size))
    scores = _rank_scores(macros)
    assert scores == sorted(scores, reverse=True)
    assert macros.macros[0].sound_score > macros.macros[-1].sound_score
    assert all(m.sound_score > 0 and m.param_score > 0 and m.span > 0 for m in macros.macros)
    assert macros.visible == quick.visible


def test_knobs_are_named_by_the_descriptor_they_move_most(macros: MacroSet) -> None:
    words = {w for pair in DIRECTION_WORDS.values() for w in pair}
    for macro in macros.macros:
        top = max(macro.effects, key=lambda n: abs(macro.effects[n]))
        up, down = DIRECTION_WORDS[top]
        assert macro.name == (f"{up} / {down}" if macro.effects[top] > 0 else f"{down} / {up}")
        assert set(macro.label.split(", ")) <= words
        assert 0 <= macro.consistency <= 1 + 1e-9


def test_the_top_knob_moves_its_descriptor_the_way_its_name_says(macros: MacroSet, space: SoundSpace) -> None:
    """Rendered again at the ends of the knob, around the measuring anchors' mean effect."""
    top = macros.macros[0]
    name = max(top.effects, key=lambda n: abs(top.effects[n]))
    low, high = (macros.decode({0: v}) for v in (-1.0, 1.0))
    found = space.describe(space.to_params(torch.stack([low, high])))
    moved = macros.scale.normalize(found)[:, macros.scale.names.index(name)]  # type: ignore[union-attr]
    assert float(moved[1] - moved[0]) * top.effects[name] > 0


def test_decode_sets_one_dimension_and_freeze_keeps_the_rest(macros: MacroSet, reference: torch.Tensor) -> None:
    base = reference[0]
    z = macros.decode({1: 0.5}, base)
    knob = macros.macros[1]
    assert z[knob.dim] == pytest.approx(knob.center + 0.5 * knob.span)
    others = [d for d in range(len(base)) if d != knob.dim]
    assert torch.equal(z[others], base[others])
    assert macros.knob_values(z)[1] == pytest.approx(0.5)
    loose = macros.decode({1: 0.5}, base, freeze=False)
    hidden = [m.dim for m in macros.macros[macros.visible :]]
    shown = [m.dim for m in macros.macros[: macros.visible] if m.dim != knob.dim]
    assert torch.allclose(loose[hidden], torch.tensor(macros.center)[hidden])
    assert torch.equal(loose[shown], base[shown])
    assert torch.allclose(macros.decode({}), torch.tensor(macros.center))


def test_bad_knobs_are_refused_with_the_accepted_range(macros: MacroSet) -> None:
    with pytest.raises(ValueError, match=r"macro index must be an integer in \[0, 15\]"):
        macros.decode({16: 0.0})
    with pytest.raises(ValueError, match=r"knob value must be in \[-1, 1\]"):
        macros.decode({0: 1.5})
    with pytest.raises(ValueError, match=r"knob value must be in \[-1, 1\]"):
        macros.decode({0: float("nan")})
    with pytest.raises(ValueError, match="must be a number"):
        macros.decode({0: "loud"})  # type: ignore[dict-item]


def test_macros_round_trip_through_json(macros: MacroSet) -> None:
    import json

    again = MacroSet.from_dict(json.loads(json.dumps(macros.to_dict())))
    assert again.macros == macros.macros and again.scale == macros.scale and again.visible == macros.visible
    assert "[hidden]" in macros.table() and macros.macros[0].name in macros.table()


def test_reference_must_be_latents(space: SoundSpace) -> None:
    with pytest.raises(ValueError, match=r"reference latents must be \[n >= 2, 16\]"):
        analyze_macros(space, torch.zeros(5, 3))
