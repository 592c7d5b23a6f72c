"""amsynth: the bank parser on the real factory banks, the value mapping checked against the plugin itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from flowsynth.synth.amsynth import (
    AMSYNTH_16,
    AMSYNTH_32,
    AMSYNTH_BANKS,
    AMSYNTH_PATH,
    AMSYNTH_SPEC,
    AmsynthSynth,
    amsynth,
    count_bank_presets,
    load_bank_presets,
    parse_bank,
    preset_vector,
)
from flowsynth.synth.plugin import PluginSynth
from flowsynth.synth.worker import WorkerPool

pytestmark = pytest.mark.skipif(
    not (AMSYNTH_PATH.exists() and AMSYNTH_BANKS.exists()),
    reason="install the Debian package amsynth (make setup does)",
)
SHORT = {"render_s": 1.0, "note_s": 0.5}


@pytest.fixture(scope="module")
def synth() -> AmsynthSynth:
    return AmsynthSynth()


@pytest.fixture(scope="module")
def presets() -> list:
    return load_bank_presets()


def quiet_presets(presets: list, count: int) -> list:
    """Presets whose oscillators and LFO draw nothing from amsynth's noise generator."""
    waves = {4: 4, 13: 4, 16: 6}  # index: steps of osc1_waveform, osc2_waveform, lfo_waveform
    keep = [p for p in presets if all(round(float(p.vector[i]) * n) not in (3, 4) for i, n in waves.items())]
    return keep[:: len(keep) // count][:count]


def test_factory_bank_parses() -> None:
    presets = parse_bank(AMSYNTH_BANKS / "amsynth_factory.bank")
    assert len(presets) >= 20 and presets[0][0] == "Derren 1"
    values = presets[0][1]
    assert values["amp_attack"] == pytest.approx(0.15) and len(values) >= 36


def test_all_factory_banks_load_with_counts(presets: list) -> None:
    counts = count_bank_presets()
    assert counts["slots"] == counts["kept"] + counts["blank"] + counts["duplicate"]
    assert counts["kept"] == len(presets) > 3000
    assert len({p.bank for p in presets}) == len(list(AMSYNTH_BANKS.glob("*.bank")))
    assert all(p.vector.shape == (41,) and 0 <= p.vector.min() and p.vector.max() <= 1 for p in presets)
    assert len({tuple(p.vector.tolist()) for p in presets}) == len(presets)
    assert [p.name for p in presets].count("YouPickWhich") == 1 and counts["duplicate"] >= 57


def test_blank_slots_are_skipped(tmp_path: Path) -> None:
    bank = tmp_path / "mine.bank"
    bank.write_text("amSynth\n<preset> <name> New Preset\n<preset> <name> Lead\n<parameter> osc_mix 0.5\nEOF\n")
    (kept,) = load_bank_presets([bank])
    assert (kept.name, kept.bank, kept.program) == ("Lead", "mine", 1)
    assert count_bank_presets([bank]) == {"slots": 2, "blank": 1, "duplicate": 0, "kept": 1}


def test_malformed_bank(tmp_path: Path) -> None:
    bank = tmp_path / "bad.bank"
    bank.write_text("amSynth\n<preset> <name> X\n<parameter> osc_mix\n")
    with pytest.raises(ValueError, match=r"bad.bank:3: expected '<parameter> NAME VALUE'"):
        parse_bank(bank)
    bank.write_text("<preset> <name> X\n")
    with pytest.raises(ValueError, match="is not an amsynth bank"):
        parse_bank(bank)


def test_missing_values_take_defaults() -> None:
    vector = preset_vector({"osc_mix": 1.0})
    assert vector[18] == 1.0 and vector[14] == pytest.approx(0.67) and vector[11] == 1.0


def test_units_match_what_the_plugin_displays(synth: AmsynthSynth) -> None:
    """Every Param's units value equals amsynth's own display of the same raw value."""
    raw = torch.rand(3, 41, generator=torch.Generator().manual_seed(0))
    raw = torch.cat([raw, torch.zeros(1, 41), torch.ones(1, 41)])
    for vector in raw:
        texts = synth.texts(vector)
        for i, param in enumerate(synth.params):
            units = float(param.to_units(vector[i].double()))
            if param.discrete:  # amsynth displays the value of the step, Param the index of its choice
                _, _, lo, hi, *_ = AMSYNTH_SPEC[i]
                units = lo + units * (hi - lo) / (len(param.choices or ()) - 1)
                units = 2**units if param.name == "osc2_range" else units
            assert float(texts[param.name]) == pytest.approx(units, rel=1e-4, abs=1e-5), param.name


def test_native_preset_matches_the_parsed_one(synth: AmsynthSynth, presets: list) -> None:
    """amsynth loading its own bank (MIDI bank select + program change) agrees with the parser."""
    files = sorted(p.name.split(".")[0] for p in AMSYNTH_BANKS.glob("*.bank"))
    for preset in presets[::700]:
        native = synth.pool.call(synth.spec, 22050, "program_texts", files.index(preset.bank), preset.program)
        mapped = synth.texts(preset.vector)
        assert [float(t) for t in native] == pytest.approx([float(mapped[n]) for n in synth.space.names], rel=1e-5)


def test_native_render_matches_the_vector(presets: list) -> None:
    fresh = AmsynthSynth(reset="reload")
    for preset in quiet_presets(presets, 2):
        native = fresh.render_native(preset)
        mine = fresh.render(preset.vector[None])[0]
        assert native.abs().max() > 0.01
        assert (native - mine).abs().max() < 1e-3, preset.name


def test_bank_presets_render(synth: AmsynthSynth, presets: list) -> None:
    audio = synth.render(torch.stack([p.vector for p in presets[::500]]), **SHORT)
    assert audio.shape == (len(presets[::500]), 22050)
    assert (audio.abs().amax(dim=1) > 1e-3).all()


def test_variants() -> None:
    assert len(AMSYNTH_16) == 16 and len(AMSYNTH_32) == 32 and set(AMSYNTH_16) < set(AMSYNTH_32)
    assert [amsynth(n).num_learned for n in (None, 16, 32)] == [41, 16, 32]
    with pytest.raises(ValueError, match="amsynth learns all, 16 or 32 parameters; got count=8"):
        amsynth(8)


def test_params_in_amsynth_units(synth: AmsynthSynth) -> None:
    params = {p.name: p for p in synth.params}
    assert params["osc1_waveform"].choices == ("sine", "pulse", "saw", "noise", "random")
    assert params["filter_cutoff"].log and params["amp_attack"].units == "s"
    assert params["amp_attack"].max == pytest.approx(0.0005 + 2.5**3)
    assert [p.default_normalized for p in synth.params] == pytest.approx(preset_vector({}).tolist(), abs=1e-6)


def test_factory_presets_for_a_subset(presets: list) -> None:
    sixteen = amsynth(16)
    factory = sixteen.factory_presets()  # type: ignore[attr-defined]
    assert len(factory) == len(presets) and factory[0].vector.shape == (16,)
    assert factory[0].tags == (presets[0].bank,)


def test_describe_rebuilds_amsynth(synth: AmsynthSynth) -> None:
    d = synth.select(AMSYNTH_16).describe()
    assert d["kind"] == "plugin" and d["variant"] == "amsynth"
    rebuilt = PluginSynth.from_description(d)
    assert isinstance(rebuilt, AmsynthSynth) and rebuilt.params == synth.params


#: A random patch of a dataset whose filter blows up to NaN (raw values; the rest at defaults).
UNSTABLE = {
    "amp_attack": 0.2755, "amp_decay": 0.1569, "amp_sustain": 0.0307, "amp_release": 0.4351,
    "osc1_waveform": 0.2379, "filter_attack": 0.0918, "filter_decay": 0.0186, "filter_sustain": 0.009,
    "filter_release": 0.4755, "filter_resonance": 0.9997, "filter_env_amount": 0.4432, "lfo_freq": 0.9312,
    "lfo_waveform": 0.1628, "filter_mod_amount": 0.9583,
}  # fmt: skip


def test_a_sound_that_blows_up_does_not_spoil_the_next() -> None:
    with WorkerPool(1) as pool:
        synth = AmsynthSynth(pool=pool)
        names = [p.name for p in synth.params]
        default = synth.space.from_units({})
        unstable = default.clone()
        for name, raw in UNSTABLE.items():
            unstable[names.index(name)] = raw
        audio = synth.render(torch.stack([default, unstable, default]), on_error="nan", **SHORT)
    assert not torch.isfinite(audio[1]).all()
    assert torch.isfinite(audio[2]).all() and audio[2].abs().max() > 1e-2
    assert torch.allclose(audio[0], audio[2], atol=1e-4)
