"""Plugin synths, on a real VST2 instrument (amsynth): discovery, rendering, state files, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from flowsynth.errors import RenderError
from flowsynth.synth.amsynth import AMSYNTH_PATH
from flowsynth.synth.plugin import PluginSynth

pytestmark = pytest.mark.skipif(
    not AMSYNTH_PATH.exists(), reason="install the Debian package amsynth (make setup does)"
)
SHORT = {"render_s": 1.0, "note_s": 0.5}
#: A sound with no LFO, noise or oscillator sync: amsynth then keeps no state from one note to the next.
STEADY = ["filter_cutoff", "filter_resonance", "osc2_detune", "amp_release", "reverb_wet"]


@pytest.fixture(scope="module")
def plugin() -> PluginSynth:
    return PluginSynth(AMSYNTH_PATH)


def test_parameters_discovered(plugin: PluginSynth) -> None:
    assert len(plugin.params) == 41 and plugin.num_learned == 41
    names = plugin.space.names
    assert names[:4] == ("amp_attack", "amp_decay", "amp_sustain", "amp_release") and "filter_cutoff" in names
    params = {p.name: p for p in plugin.params}
    assert (params["amp_attack"].min, params["amp_attack"].max, params["amp_attack"].units) == (0.0, 1.0, "s")
    assert params["amp_sustain"].default == 1.0 and params["master_vol"].default == pytest.approx(0.67)
    assert plugin.name == "plugin:amsynth_vst"


def test_raw_value_is_the_normalized_value(plugin: PluginSynth) -> None:
    cutoff = plugin.select(["filter_cutoff"])
    assert cutoff.texts(torch.tensor([0.3]))["filter_cutoff"] == "1.31951"  # 16 ** (-0.5 + 2 * 0.3)
    assert cutoff.texts(torch.tensor([1.0]))["filter_cutoff"] == "64"


def test_note_in_sound_out_and_silence(plugin: PluginSynth) -> None:
    volume = plugin.select(["master_vol"])
    audio = volume.render(torch.tensor([[0.67], [0.0]]), **SHORT)
    assert audio.shape == (2, 22050) and audio.dtype == torch.float32
    assert audio[0].abs().max() > 0.1
    assert audio[1].abs().max() < 1e-9


def test_same_params_same_audio_whatever_came_before(plugin: PluginSynth) -> None:
    steady = plugin.select(STEADY)
    a, b = torch.rand(2, len(STEADY), generator=torch.Generator().manual_seed(0))
    first = steady.render(a[None], **SHORT)
    steady.render(torch.stack([b, a, b]), **SHORT)
    assert torch.allclose(steady.render(a[None], **SHORT), first, atol=1e-6)


def test_reload_makes_lfo_sounds_repeat_exactly() -> None:
    lfo = PluginSynth(AMSYNTH_PATH, reset="reload").select(["lfo_freq", "filter_mod_amount", "filter_cutoff"])
    wobble = torch.tensor([[0.4, 1.0, 0.4]])
    first = lfo.render(wobble, **SHORT)
    lfo.render(torch.tensor([[0.9, 0.8, 0.2]]), **SHORT)
    assert torch.equal(lfo.render(wobble, **SHORT), first)


def test_select_unknown_name_lists_known(plugin: PluginSynth) -> None:
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) 'cutoff'; known: amp_attack, amp_decay"):
        plugin.select(["cutoff"])


def test_state_file_round_trip(plugin: PluginSynth, tmp_path: Path) -> None:
    synth = plugin.select(["filter_cutoff", "osc1_waveform"])
    a, b = torch.tensor([0.2, 0.0]), torch.tensor([0.9, 0.5])
    synth.save_state(tmp_path / "a.json", a)
    synth.save_state(tmp_path / "b.json", b)
    sound_a = synth.render(a[None], **SHORT)
    _, loaded_b = synth.load_state(tmp_path / "b.json")
    assert not torch.allclose(synth.render(loaded_b[None], **SHORT), sound_a, atol=1e-3)
    again, loaded_a = synth.load_state(tmp_path / "a.json")
    assert torch.equal(loaded_a, a)
    assert torch.allclose(again.render(loaded_a[None], **SHORT), sound_a, atol=1e-6)


def test_state_fixes_what_is_not_learned(plugin: PluginSynth, tmp_path: Path) -> None:
    full = plugin.space.full_defaults().clone()
    full[plugin.space.names.index("master_vol")] = 0.0
    plugin.save_state(tmp_path / "mute.json", full)
    muted, vector = plugin.select(["filter_cutoff"]).load_state(tmp_path / "mute.json")
    assert muted.space.fixed["master_vol"] == 0.0
    assert muted.render(vector[None], **SHORT).abs().max() < 1e-9  # -180 dB: what smoothing leaves


def test_state_file_of_another_kind(plugin: PluginSynth, tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"raw": {}}')
    with pytest.raises(ValueError, match="is not a flowsynth plugin state file"):
        plugin.load_state(tmp_path / "x.json")


def test_describe_and_rebuild(plugin: PluginSynth) -> None:
    d = plugin.select(STEADY).describe()
    assert d["kind"] == "plugin" and d["path"] == str(AMSYNTH_PATH) and d["learned"] == STEADY
    rebuilt = PluginSynth.from_description(d).select(d["learned"], d["fixed"])
    params = torch.full((1, len(STEADY)), 0.4)
    assert torch.allclose(rebuilt.render(params, **SHORT), plugin.select(STEADY).render(params, **SHORT), atol=1e-6)


def test_fractional_note(plugin: PluginSynth) -> None:
    with pytest.raises(ValueError, match=r"plugins play whole MIDI notes; got note 60\.5"):
        plugin.render(torch.full((1, 41), 0.5), note=60.5, **SHORT)


def test_missing_plugin() -> None:
    with pytest.raises(ValueError, match=r"no plugin at '/nope/synth.so': give the path of a VST2 \(.so\) or VST3"):
        PluginSynth("/nope/synth.so")


def test_file_that_is_not_a_plugin(tmp_path: Path) -> None:
    fake = tmp_path / "fake.so"
    fake.write_bytes(b"not a shared object")
    with pytest.raises(RenderError, match=r"fake.so could not be loaded as a VST2/VST3 instrument"):
        PluginSynth(fake)
    with pytest.raises(ValueError, match=r"is not a VST2 \(.so\) or VST3 \(.vst3\) plugin"):
        PluginSynth(tmp_path)


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="reset must be 'preroll' or 'reload', got 'never'"):
        PluginSynth(AMSYNTH_PATH, reset="never")  # type: ignore[arg-type]


def test_discrete_parameters_from_the_plugin_description() -> None:
    """amsynth's VST2 declares no steps; a plugin that does gets choices (pure mapping of its description)."""
    from flowsynth.synth.plugin import _param

    mode = {"index": 3, "label": "", "isDiscrete": True, "numSteps": 3, "valueStrings": ["a", "b", "c"], "value": 0.5}
    param = _param("mode", mode)
    assert param.choices == ("a", "b", "c") and param.default == 1
    unnamed = _param("steps", dict(mode, valueStrings=[], numSteps=4))
    assert unnamed.choices == ("0", "1", "2", "3")
    assert _param("cutoff", dict(mode, isDiscrete=False, label="Hz")).units == "Hz"
