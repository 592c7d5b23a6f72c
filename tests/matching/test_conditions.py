"""Render conditions: a synth's own sound is played back at the note and hold it was made with."""

from __future__ import annotations

import torch

from flowsynth.matching import TargetDistance, conditions, prepare_target, render
from flowsynth.matching.conditions import choose_condition
from flowsynth.synth import RenderConfig, Synth, get_synth

CONFIG = RenderConfig(note_s=1.5, render_s=2.0)


def test_a_synth_sound_is_played_back_under_its_own_conditions() -> None:
    synth = get_synth("builtin-32")
    # a saw tuned a fifth above the played note 60, held 1.5 s with full sustain: it sounds at note 67
    values = {"osc1_shape": 0.67, "osc1_tune": 7.0, "amp_sustain": 1.0, "amp_release": 0.1, "filter_cutoff": 8000.0}
    params = synth.space.from_units(values)[None]
    audio = render(synth, params, CONFIG)[0]
    target = prepare_target(audio, CONFIG, source_rate=22050, hold="auto")
    assert target.pitch.pitched and target.config.note == 67
    options = conditions(target, CONFIG, hold="both")
    assert len(options) == 4 and {c.config.note for c in options} == {60.0, 67.0}
    assert all(c.shift == 60.0 - c.config.note for c in options)
    distance = TargetDistance(target.audio, 22050)
    chosen, tried = choose_condition(synth, distance, options, lambda condition: params)
    assert chosen.config.note == 60.0 and chosen.config.note_s == CONFIG.note_s
    assert min(t["score"] for t in tried) < 0.05


def test_one_condition_when_told(synth16: Synth) -> None:
    audio = render(synth16, torch.full((1, 16), 0.5), CONFIG)[0]
    target = prepare_target(audio, CONFIG, source_rate=22050, hold=0.7)
    options = conditions(target, CONFIG, hold=0.7, reference_note=False)
    assert len(options) == 1 and options[0].config.note_s == 0.7
    chosen, tried = choose_condition(synth16, TargetDistance(target.audio, 22050), options, lambda c: None)
    assert chosen is options[0] and tried[0]["score"] is None
