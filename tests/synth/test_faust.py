"""Faust synths: parameters read from the program, notes played through freq/gain/gate, real renders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from flowsynth.errors import RenderError
from flowsynth.synth.faust import FaustSynth, shipped_faust_synths

SHORT = {"render_s": 1.0, "note_s": 0.5}
SHIPPED = sorted(shipped_faust_synths())

CUSTOM = """
import("stdfaust.lib");
freq = hslider("freq", 440, 20, 20000, 0.01);
gain = hslider("gain", 0.5, 0, 1, 0.01);
gate = button("gate");
level = hslider("level[tooltip:output level]", 0.5, 0, 1, 0.01);
wave = nentry("wave[style:menu{'sine':0;'saw':1}]", 1, 0, 1, 1);
octave = nentry("octave", 0, -2, 2, 1);
bright = checkbox("bright");
cutoff = vslider("cutoff[unit:Hz][scale:log]", 1000, 100, 8000, 1);
osc = ba.selectn(2, int(wave), os.osc(freq * 2 ^ octave), os.sawtooth(freq * 2 ^ octave));
process = osc * level * gain * en.adsr(0.01, 0.1, 0.8, 0.05, gate) : fi.lowpass(2, cutoff * (1 + 3 * bright));
"""


@pytest.fixture(scope="module")
def subtractive() -> FaustSynth:
    return FaustSynth("subtractive")


@pytest.fixture(scope="module")
def custom(tmp_path_factory: pytest.TempPathFactory) -> FaustSynth:
    path = tmp_path_factory.mktemp("dsp") / "custom.dsp"
    path.write_text(CUSTOM)
    return FaustSynth(path)


def test_shipped_synths_are_found() -> None:
    assert SHIPPED, "no Faust program is shipped in flowsynth/synth/faust/"
    assert "subtractive" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_synth_plays_a_note(name: str) -> None:
    synth = FaustSynth(name)
    assert 10 <= len(synth.params) <= 20
    audio = synth.render(torch.full((2, synth.num_learned), 0.5), **SHORT)
    assert audio.shape == (2, 22050) and audio.dtype == torch.float32
    assert (audio.abs().amax(dim=1) > 0.01).all() and (audio.abs().amax(dim=1) < 1.0).all()
    assert synth.render(torch.zeros(0, synth.num_learned), **SHORT).shape == (0, 22050)


def test_parameters_read_from_the_program(custom: FaustSynth) -> None:
    params = {p.name: p for p in custom.params}
    assert list(params) == ["bright", "cutoff", "level", "octave", "wave"]  # Faust sorts by label
    assert params["level"].description == "output level" and params["level"].default == 0.5
    assert params["wave"].choices == ("sine", "saw") and params["wave"].default == 1
    assert params["octave"].choices == ("-2", "-1", "0", "1", "2") and params["octave"].default == 2
    assert params["bright"].choices == ("off", "on")
    cutoff = params["cutoff"]
    assert (cutoff.min, cutoff.max, cutoff.default, cutoff.units, cutoff.log) == (100, 8000, 1000, "Hz", True)


def test_subtractive_parameters(subtractive: FaustSynth) -> None:
    params = {p.name: p for p in subtractive.params}
    assert len(params) == 20 and not {"freq", "gain", "gate", "seed"} & set(params)
    assert params["cutoff"].log and params["cutoff"].units == "Hz"
    assert params["osc1_wave"].choices == ("sine", "triangle", "saw", "pulse")
    assert params["amp_attack"].units == "s" and params["amp_attack"].log


def test_note_plays_at_its_pitch(custom: FaustSynth) -> None:
    sine = custom.select(["wave", "octave"], {"cutoff": 1.0})
    audio = sine.render(torch.tensor([[0.0, 0.5]]), note=69, render_s=1.0, note_s=1.0)[0].numpy()
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    assert np.argmax(spectrum) * 22050 / len(audio) == pytest.approx(440.0, abs=2.0)


def test_gate_and_velocity(custom: FaustSynth) -> None:
    loud = custom.render(torch.full((1, 5), 0.5), velocity=127, render_s=1.0, note_s=0.5)[0]
    soft = custom.render(torch.full((1, 5), 0.5), velocity=32, render_s=1.0, note_s=0.5)[0]
    assert loud.abs().max() / soft.abs().max() == pytest.approx(127 / 32, rel=1e-3)
    assert loud[: 22050 // 2].abs().max() > 0.05
    assert loud[int(0.7 * 22050) :].abs().max() < 1e-4  # released at 0.5 s, 50 ms release


def test_silence_when_levels_are_zero(subtractive: FaustSynth) -> None:
    mute = subtractive.select(["osc1_level", "osc2_level", "noise_level"])
    assert mute.render(torch.zeros(2, 3), **SHORT).abs().max() == 0
    assert mute.render(torch.tensor([[0.0, 0.0, 1.0]]), **SHORT).abs().max() > 0.01


def test_same_params_same_audio(subtractive: FaustSynth) -> None:
    params = torch.rand(5, subtractive.num_learned, generator=torch.Generator().manual_seed(0))
    batch = subtractive.render(params, seed=3, **SHORT)
    assert torch.equal(batch, subtractive.render(params, seed=3, **SHORT))
    single = torch.cat([subtractive.render(params[i : i + 1], seed=3, **SHORT) for i in (4, 1)])
    assert torch.equal(single, batch[[4, 1]])


def test_seed_seeds_the_noise(subtractive: FaustSynth) -> None:
    noise = subtractive.select(["noise_level"], {"osc1_level": 0.0, "osc2_level": 0.0})
    one = noise.render(torch.ones(1, 1), seed=1, **SHORT)
    assert torch.equal(one, noise.render(torch.ones(1, 1), seed=1, **SHORT))
    assert not torch.allclose(one, noise.render(torch.ones(1, 1), seed=2, **SHORT))


def test_sample_rate(subtractive: FaustSynth) -> None:
    audio = subtractive.render(torch.full((1, 20), 0.5), sample_rate=16000, render_s=0.5, note_s=0.25)
    assert audio.shape == (1, 8000)


def test_describe_and_rebuild(subtractive: FaustSynth) -> None:
    d = subtractive.describe()
    assert d["kind"] == "faust" and d["shipped"] == "subtractive" and d["name"] == "faust:subtractive"
    rebuilt = FaustSynth.from_description(d)
    params = torch.rand(2, 20, generator=torch.Generator().manual_seed(1))
    assert torch.equal(rebuilt.render(params, **SHORT), subtractive.render(params, **SHORT))


def test_describe_a_file(custom: FaustSynth) -> None:
    d = custom.describe()
    assert d["dsp"] == str(custom.path) and "shipped" not in d
    assert FaustSynth.from_description(d).space.names == custom.space.names


def test_select_unknown_name_lists_known(subtractive: FaustSynth) -> None:
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) 'cut_off'; known: osc1_wave, osc1_level"):
        subtractive.select(["cut_off"])


def test_missing_file() -> None:
    with pytest.raises(ValueError, match=r"no Faust program at '/nope/x.dsp'; give a \.dsp file or a shipped name"):
        FaustSynth("/nope/x.dsp")


def test_program_without_gate(tmp_path: Path) -> None:
    path = tmp_path / "drone.dsp"
    path.write_text('import("stdfaust.lib");\nfreq = hslider("freq", 440, 20, 2000, 1);\nprocess = os.osc(freq);\n')
    with pytest.raises(RenderError, match=r"needs controls named freq, gain, gate; missing: \['gain', 'gate'\]"):
        FaustSynth(path)


def test_syntax_error_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "broken.dsp"
    path.write_text("process = os.osc(440;\n")
    with pytest.raises(RenderError, match=r"faust:broken: RuntimeError: .*syntax error"):
        FaustSynth(path)
