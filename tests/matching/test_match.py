"""Matching end to end: real sounds in, preset, sounds, figure and report out; the ``match`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile
import torch

from flowsynth.cli.main import main
from flowsynth.features.metrics import AUDIO_METRICS
from flowsynth.matching import MatchSettings, match, write_match
from flowsynth.matching.conditions import shifted_log_mel, target_features
from flowsynth.synth import Synth
from flowsynth.synth.presets import read_preset_file

QUICK = MatchSettings(candidates=4, refine_steps=2)
STAGES = ("prepare", "infer", "candidates", "refine", "metrics")


def test_an_instrument_note_gives_a_preset_two_sounds_a_figure_and_a_report(
    render_gm_note, model, synth16: Synth, tmp_path: Path
) -> None:
    result = match(render_gm_note(73, 67), model, settings=QUICK)
    paths = write_match(result, tmp_path / "out")
    assert sorted(p.name for p in paths.values()) == sorted(
        ["preset.json", "match.wav", "target.wav", "spectrograms.png", "report.json"]
    )
    report = json.loads(paths["report"].read_text())
    assert set(report["metrics"]) == set(AUDIO_METRICS)
    assert all(report["stages"][stage]["time_s"] >= 0 for stage in STAGES)
    assert report["target"]["note"] == 67 and report["target"]["pitched"]
    assert report["render"]["note"] == 67
    assert report["stages"]["refine"]["best_score"] <= report["stages"]["candidates"]["best_score"]
    assert report["score"] == report["stages"]["refine"]["best_score"]
    # the preset reads back to the matched vector, and the written match is that preset at the target's level
    assert len(json.loads(paths["preset"].read_text())["all_params"]) == len(synth16.params)
    (preset,) = read_preset_file(synth16, paths["preset"])
    torch.testing.assert_close(preset.vector, result.params, atol=1e-5, rtol=1e-5)
    match_audio, rate = soundfile.read(paths["match"])
    target_audio, _ = soundfile.read(paths["target"])
    assert rate == 22050 and len(match_audio) == len(target_audio) == 4 * 22050
    assert paths["spectrograms"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_model_input_of_a_pitched_target_is_moved_to_the_reference_note(render_gm_note, model) -> None:
    from flowsynth.matching import prepare_target
    from flowsynth.synth import RenderConfig

    high = prepare_target(render_gm_note(73, 72), RenderConfig())
    torch.testing.assert_close(target_features(high, 60.0), shifted_log_mel(high.audio, 22050, -12.0))
    assert not torch.allclose(target_features(high, 60.0), target_features(high, 60.0, shift=False))


def test_model_free_search(render_gm_note, synth16: Synth) -> None:
    result = match(render_gm_note(81, 57), None, synth16, MatchSettings(candidates=6, refine_steps=1, optimizer="cma"))
    assert result.report["model"] is None
    assert result.report["stages"]["candidates"]["renders"] >= 7
    assert result.report["stages"]["refine"]["optimizer"] == "cma"


def test_time_budget_stops_refinement(render_gm_note, model) -> None:
    note = render_gm_note(0, 60)
    # a budget the analysis and the candidates spend on their own: no refinement step at all
    spent = match(note, model, settings=MatchSettings(candidates=2, refine_steps=None, budget_s=1e-3)).report
    assert spent["stages"]["refine"]["steps"] == 0
    assert spent["score"] == spent["stages"]["candidates"]["best_score"]
    # a step count within a generous budget: the count stops it
    counted = match(note, model, settings=MatchSettings(candidates=2, refine_steps=3, budget_s=600.0)).report
    assert counted["stages"]["refine"]["steps"] == 3


def test_match_command_prints_the_report(
    render_gm_note, model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "m"
    args = ["match", str(render_gm_note(0, 64)), "--out", str(out), "--model", str(model_path), "--candidates", "3",
            "--refine", "1", "--threads", "1", "--json"]  # fmt: skip
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["target"]["note"] == 64 and (out / "preset.json").is_file()
    assert report["settings"]["candidates"] == 3


def test_match_command_refuses_unusable_input_in_one_line(tmp_path: Path, model_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEfmt not really")
    command = [sys.executable, "-m", "flowsynth.cli.main", "match", str(bad), "--out", str(tmp_path / "o")]
    result = subprocess.run([*command, "--model", str(model_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "cannot read" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_match_command_errors(tmp_path: Path, model_path: Path, capsys: pytest.CaptureFixture) -> None:
    silent, empty = tmp_path / "silent.wav", tmp_path / "empty.wav"
    soundfile.write(silent, [0.0] * 22050, 22050)
    empty.write_bytes(b"")
    out = ["--out", str(tmp_path / "o")]
    cases = [
        ([str(silent), "--model", str(model_path)], "has no sound"),
        ([str(empty), "--model", str(model_path)], "cannot read"),
        ([str(silent), "--model", "none"], "--model none needs --synth"),
        ([str(silent), "--model", str(tmp_path / "nope.pt")], "no model checkpoint"),
        ([str(silent), "--model", str(model_path), "--candidates", "-1"], "candidates must be >= 0"),
    ]
    for args, message in cases:
        assert main(["match", *args, *out]) == 2, args
        error = capsys.readouterr().err
        assert message in error and len(error.strip().splitlines()) == 1, error


def test_a_plugin_match_writes_the_plugin_state(render_gm_note, tmp_path: Path) -> None:
    from flowsynth.synth.amsynth import AMSYNTH_PATH

    if not AMSYNTH_PATH.exists():
        pytest.skip("install the Debian package amsynth (make setup does)")
    from flowsynth.synth import get_synth

    synth = get_synth("amsynth-16")
    settings = MatchSettings(candidates=2, refine_steps=1)  # "auto": CMA-ES, plugins have no gradient
    result = match(render_gm_note(73, 72), None, synth, settings)
    assert result.report["stages"]["refine"]["optimizer"] == "cma"
    paths = write_match(result, tmp_path / "plugin")
    _, vector = synth.load_state(paths["plugin_state"])  # the plugin's raw values (discrete ones snapped)
    raw = torch.from_numpy(synth.to_raw(synth.space.expand(result.params[None])))[0]
    learned = [synth.space.names.index(name) for name in synth.space.learned]
    torch.testing.assert_close(vector.double(), raw[learned], atol=1e-6, rtol=0)


def test_the_shipped_model_is_the_default(render_gm_note, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from flowsynth.matching import default_model_path

    shipped = default_model_path()
    if shipped is None:
        pytest.skip("no model shipped in flowsynth/assets/models yet")
    args = ["match", str(render_gm_note(56, 70)), "--out", str(tmp_path / "s"), "--candidates", "2", "--refine", "0"]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"]["path"] == str(shipped) and report["num_params"] == 32
    assert report["stages"]["candidates"]["renders"] >= 3
