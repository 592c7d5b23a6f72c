"""Generation with the shipped generator: edits, merges, the instrument, offline scores and the ONNX export."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile

from flowsynth.errors import CheckpointError
from flowsynth.impact.descriptors import DESCRIPTOR_NAMES, describe
from flowsynth.impact.generate import (
    default_generator,
    edit_curves,
    generate,
    merge_curves,
    reference_curves,
    reference_names,
)
from flowsynth.impact.instrument import ImpactInstrument
from flowsynth.impact.model import ImpactGenerator
from flowsynth.impact.score import load_score, parse_score, render_score

ROW = {name: i for i, name in enumerate(DESCRIPTOR_NAMES)}


@pytest.fixture(scope="module")
def model() -> ImpactGenerator:
    return default_generator()


def loud_mean(audio: np.ndarray, name: str) -> float:
    curves = describe(audio)
    return float(np.median(curves[ROW[name], curves[0] > curves[0].max() - 30.0]))


def test_shipped_references_and_model() -> None:
    names = reference_names()
    assert len(names) >= 8 and {"kick", "snare", "hihat", "crash"} <= set(names)
    assert reference_curves("tom").shape == (7, 87)
    with pytest.raises(ValueError, match="unknown impact 'gong'"):
        reference_curves("gong")
    assert default_generator().num_parameters > 100_000


@pytest.mark.parametrize("control", ["richness", "noisiness", "brightness", "pitch_semitones"])
def test_each_edit_changes_only_its_descriptor(control: str) -> None:
    curves = reference_curves("snare")
    edited = edit_curves(curves, **{control: 0.7})
    changed = {DESCRIPTOR_NAMES[i] for i in range(7) if not np.allclose(edited[i], curves[i])}
    coupled = {"noisiness": {"tone_likeness"}}.get(control, set())  # moves the opposite way, see edit_curves
    assert changed == {control.removesuffix("_semitones")} | coupled
    assert np.array_equal(edit_curves(curves), curves)


def test_edit_and_merge_refuse_out_of_range_values() -> None:
    curves = reference_curves("snare")
    with pytest.raises(ValueError, match=r"richness must be in \[-1, 1\]"):
        edit_curves(curves, richness=2.0)
    with pytest.raises(ValueError, match=r"degree must be in \[0, 1\]"):
        merge_curves(curves, curves, 1.5)


def test_merge_ends_are_the_two_impacts() -> None:
    a, b = reference_curves("kick"), reference_curves("crash")
    assert np.allclose(merge_curves(a, b, 0.0), a, rtol=1e-5) and np.allclose(merge_curves(a, b, 1.0), b, rtol=1e-5)
    middle = merge_curves(a, b, 0.5)[ROW["brightness"]]
    assert np.all(middle <= np.maximum(a[ROW["brightness"]], b[ROW["brightness"]]) * 1.0001)


def test_generation_is_seeded_finite_and_audible(model: ImpactGenerator) -> None:
    curves = reference_curves("snare")
    a, b, c = generate(model, curves, seed=1), generate(model, curves, seed=1), generate(model, curves, seed=2)
    assert a.shape == (86 * 256,) and np.isfinite(a).all() and np.abs(a).max() > 0.05
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_the_generator_follows_brightness_and_pitch_requests(model: ImpactGenerator) -> None:
    curves = reference_curves("tom")
    dark, bright = (generate(model, edit_curves(curves, brightness=v)) for v in (-1.0, 1.0))
    assert loud_mean(bright, "brightness") > 1.5 * loud_mean(dark, "brightness")
    low, high = (generate(model, edit_curves(curves, pitch_semitones=s)) for s in (-7.0, 7.0))
    assert loud_mean(high, "pitch") > 1.3 * loud_mean(low, "pitch")


def test_instrument_gates_and_output_rate(model: ImpactGenerator) -> None:
    first, second = reference_curves("kick"), reference_curves("hihat")
    instrument = ImpactInstrument(model, first, second)
    gate1 = instrument(1, (0.5, 0.5, 0.3))
    assert np.allclose(instrument(2, (0.5, 0.5, 0.0)), gate1, atol=1e-5)
    assert not np.allclose(instrument(2, (0.5, 0.5, 1.0)), gate1, atol=1e-3)
    assert gate1[-1] == 0.0  # ends in a fade, never a click
    doubled = ImpactInstrument(model, first, second, output_rate=44100)
    assert len(doubled(1, (0.5, 0.5, 0.0))) == 2 * len(gate1)


def write_score(folder: Path) -> Path:
    score = {
        "impact": "kick",
        "second": "crash",
        "duration_s": 2.5,
        "gates": [{"time_s": 0.25, "gate": 1}, {"time_s": 1.0, "gate": 2}, {"time_s": 1.5, "gate": 1}],
        "cv": {"richness": [[0.0, 0.5], [2.0, 0.9]], "degree": [[0.0, 0.2], [2.5, 0.8]]},
        "control_interval_s": 0.25,
    }
    path = folder / "score.json"
    path.write_text(json.dumps(score))
    return path


def test_render_cli_is_deterministic_and_gates_land_on_time(tmp_path: Path, impact_cli: Callable) -> None:
    score = write_score(tmp_path)
    for name in ("a.wav", "b.wav"):
        assert impact_cli(["render", "--gates", str(score), "--out", str(tmp_path / name)]) == 0
    a, rate = soundfile.read(tmp_path / "a.wav", dtype="float32")
    b, _ = soundfile.read(tmp_path / "b.wav", dtype="float32")
    assert rate == 22050 and len(a) == round(2.5 * rate) and np.array_equal(a, b)
    assert np.abs(a[: round(0.25 * rate)]).max() == 0.0
    start = round(0.25 * rate)
    assert np.abs(a[start : start + 64]).max() > 1e-3  # sounding within 3 ms of its gate time


def test_scores_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="each gate is"):
        parse_score({"impact": "kick", "duration_s": 1.0, "gates": [{"time_s": 0.0, "gate": 3}]})
    with pytest.raises(ValueError, match="unknown CV 'pitch'"):
        parse_score({"impact": "kick", "duration_s": 1.0, "gates": [], "cv": {"pitch": [[0, 1]]}})
    with pytest.raises(ValueError, match="'duration_s'"):
        parse_score({"impact": "kick", "gates": []})
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_score(bad)


def test_onnx_export_matches_torch_and_drives_the_engine(model: ImpactGenerator, tmp_path: Path) -> None:
    from flowsynth.impact.export import OnnxGenerator, export_onnx

    exported = OnnxGenerator(export_onnx(model, tmp_path / "generator.onnx"))
    for name in ("tom", "hihat"):
        curves = reference_curves(name)
        assert np.abs(generate(exported, curves, seed=4) - generate(model, curves, seed=4)).max() < 1e-4
    score = load_score(write_score(tmp_path))
    takes = []
    for generator in (model, exported):
        instrument = ImpactInstrument(generator, reference_curves(score.impact), reference_curves(score.second))
        takes.append(render_score(score, instrument, instrument.output_rate, instrument.num_samples)[0])
    assert np.abs(takes[0] - takes[1]).max() < 1e-4 and np.abs(takes[0]).max() > 0.05
    (tmp_path / "junk.onnx").write_bytes(b"nope")
    with pytest.raises(CheckpointError, match="not an exported impact generator"):
        OnnxGenerator(tmp_path / "junk.onnx")


def test_generate_and_export_commands(tmp_path: Path, impact_cli: Callable, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "hit.wav"
    args = ["generate", "--impact", "tom", "--second", "hihat", "--degree", "0.3", "--richness", "0.4"]
    assert impact_cli([*args, "--pitch-semitones", "2", "--out", str(out)]) == 0
    audio, rate = soundfile.read(out, dtype="float32")
    assert rate == 22050 and np.abs(audio).max() > 0.01
    assert "requested" in capsys.readouterr().out
    assert impact_cli(["export", "--out", str(tmp_path / "g.onnx")]) == 0
    assert "largest difference from torch" in capsys.readouterr().out
    with pytest.raises(ValueError, match="give --impact"):
        impact_cli(["generate", "--out", str(out)])
