"""Vocal imitation: real voice sounds (espeak-ng through sox) matched at their pitch, following their envelope."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from flowsynth.matching import MatchSettings, TargetDistance, draw_candidates, match, render
from flowsynth.matching.analysis import _level_db, detect_pitch, envelope
from flowsynth.matching.conditions import target_features

SETTINGS = MatchSettings(candidates=4, refine_steps=3)


def _envelope_error_db(target: torch.Tensor, audio: torch.Tensor) -> float:
    """RMS difference (dB, floored at -50 dB) of the level envelopes of two sounds at the same level."""
    a, b = (_level_db(envelope(x)).clamp_min(-50.0) for x in (target, audio))
    return float((a - b).square().mean().sqrt())


@pytest.mark.parametrize("name", ["wooo", "tsss", "bwaaa"])
def test_voice_sounds_are_matched(voice_paths: dict[str, Path], model, name: str) -> None:
    result = match(voice_paths[name], model, settings=SETTINGS)
    report = result.report
    target = report["target"]
    print(f"{name}: pitch {target['pitch_hz']}, note {target['note']}, distances {report['metrics']}")
    assert all(torch.isfinite(torch.tensor(v)) for v in report["metrics"].values())
    assert target["pitched"] == (name != "tsss")
    assert set(report["hints"]) >= {"amp_attack", "amp_decay", "amp_sustain", "amp_release"}
    # the loudness envelope is followed more closely than by the model's estimate alone
    estimate = draw_candidates(model, target_features(result.target, 60.0), 0)
    distance = TargetDistance(result.target.audio, 22050)
    estimate_audio = distance.matched(render(result.synth, estimate, result.target.config))[0]
    assert _envelope_error_db(result.target.audio, result.audio) < _envelope_error_db(
        result.target.audio, estimate_audio
    )


def test_a_voiced_sound_is_played_at_the_voice_pitch(voice_paths: dict[str, Path], model) -> None:
    settings = MatchSettings(candidates=4, refine_steps=3, reference_note=False)  # the voice's note only
    result = match(voice_paths["wooo"], model, settings=settings)
    voice = result.target.pitch
    assert result.target.config.note == round(voice.midi)
    assert all(
        c["condition"].startswith(f"note {round(voice.midi)},") for c in result.report["stages"]["infer"]["conditions"]
    )
    # a tonal preset (the synth's defaults) played as the match is has the voice's pitch
    synth = result.synth
    defaults = synth.space.full_defaults()[[synth.space.names.index(n) for n in synth.space.learned]]
    played = detect_pitch(render(synth, defaults[None], result.target.config)[0], 22050)
    assert played.pitched and abs(played.midi - voice.midi) < 0.6


def test_vibrato_of_the_voice_goes_to_the_lfo(voice_paths: dict[str, Path], model) -> None:
    result = match(voice_paths["ooo_vibrato"], model, settings=SETTINGS)
    hints = result.report["hints"]
    lfo_target = result.synth.space.expand(result.params[None])[0, result.synth.space.names.index("lfo_target")]
    assert hints.get("lfo_target", 0.0) == 0.0 and float(lfo_target) == 0.0  # the LFO on pitch (builtin-16 fixes it)
    assert 4.0 < hints["lfo_rate"] < 6.0 and 0.15 < hints["lfo_depth"] < 0.5  # 5 Hz, +-0.6 semitone
    assert result.report["target"]["vibrato"]["rate_hz"] == hints["lfo_rate"]
