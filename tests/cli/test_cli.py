"""The command line: help everywhere, one clear line and a non-zero exit for user mistakes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

from flowsynth.cli.main import build_parser, main


def commands() -> list[list[str]]:
    parser = build_parser()
    top = next(a for a in parser._actions if a.dest == "command")
    out = []
    for name, sub in top.choices.items():  # type: ignore[union-attr]
        nested = [a for a in sub._actions if getattr(a, "choices", None) and a.dest != "help"]
        groups = [a for a in nested if isinstance(a.choices, dict)]
        out += [[name, child] for a in groups for child in a.choices] or [[name]]
    return out


def test_registry_is_not_empty() -> None:
    assert len(commands()) >= 5


@pytest.mark.parametrize("command", commands(), ids=" ".join)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: flowsynth" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--help"], ["synths", "--help"], ["demo", "--help"]], ids=" ".join)
def test_help_imports_neither_torch_nor_the_library(argv: list[str]) -> None:
    code = (
        "import sys\nfrom flowsynth.cli.main import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'numpy', 'flowsynth.demo'))))"
    )
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_demo_help_shows_the_demo_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    from flowsynth.demo import DEFAULT_MODEL, DEMO_SEED

    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {DEFAULT_MODEL})" in help_text and f"(default: {DEMO_SEED})" in help_text


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flowsynth.cli.main", *args], capture_output=True, text=True)


def test_synths_json() -> None:
    result = run("synths", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["builtin-32"]["learned"] == 32 and rows["builtin-16"]["learned"] == 16


def test_render_random_and_from_a_preset_file(tmp_path: Path) -> None:
    out = tmp_path / "x.wav"
    result = run(
        "render", "--synth", "builtin-16", "--random", "3", "--out", str(out), "--render-s", "1", "--note-s", "0.5"
    )
    assert result.returncode == 0, result.stderr
    audio, rate = soundfile.read(out)
    assert rate == 22050 and len(audio) == 22050 and abs(audio).max() > 0.01
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({"params": {"filter_cutoff": 500.0, "osc1_shape": 0.9}}))
    assert (
        run("render", "--params", str(preset), "--out", str(out), "--render-s", "1", "--note-s", "0.5").returncode == 0
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["render", "--synth", "nope", "--random", "1", "--out", "x.wav"], "unknown synth 'nope'"),
        (["render", "--params", "missing.json", "--out", "x.wav"], "missing.json"),
        (["render-dataset", "--n", "0", "--out", "x.h5"], "at least 1"),
        (["dataset-info", "missing.h5"], "no dataset file"),
        (["render", "--random", "1", "--out", "x.wav", "--note-s", "9"], "note_s"),
    ],
)
def test_user_mistakes_give_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flowsynth.cli.main", *args], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_wrong_parameter_name_in_preset(tmp_path: Path) -> None:
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({"params": {"cutof": 500.0}}))
    result = run("render", "--params", str(preset), "--out", str(tmp_path / "x.wav"))
    assert result.returncode == 2 and "unknown parameter(s) cutof" in result.stderr


def test_render_dataset_and_info(tmp_path: Path) -> None:
    out = tmp_path / "d.h5"
    args = ["render-dataset", "--synth", "builtin-16", "--n", "16", "--out", str(out), "--workers", "1"]
    result = run(*args, "--render-s", "1", "--note-s", "0.5", "--chunk-size", "8", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "16 sounds kept" in result.stdout
    info = run("dataset-info", str(out), "--json")
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert data["counts"]["kept"] == 16 and sum(data["splits"].values()) == 16
    assert data["params"]["filter_cutoff"]["units"] == "Hz"


def test_demo_matches_new_sounds_with_the_shipped_model(tmp_path: Path) -> None:
    result = run("demo", "--out", str(tmp_path), "--count", "2")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["model"] == "builtin-32-flow_reg" and summary["learned_params"] == 32
    assert len(summary["sounds"]) == 2
    for sound in summary["sounds"]:
        assert set(sound["metrics"]) >= {"sc", "lsd", "mfcc_l1", "mr_stft"}
        assert all(math.isfinite(v) for v in sound["metrics"].values())
        assert sound["inferred_preset"]["normalized"] != sound["true_preset"]["normalized"]
        target, _ = soundfile.read(tmp_path / sound["target"])
        match, _ = soundfile.read(tmp_path / sound["match"])
        assert len(target) == len(match) == 4 * 22050 and abs(match).max() > 1e-3
    assert (tmp_path / "spectrograms.png").stat().st_size > 10_000
