"""``flowsynth macro``, ``flowsynth interpolate`` and ``flowsynth map`` on a trained model and a real dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import soundfile

from flowsynth.cli import control
from flowsynth.errors import FlowsynthError


def run(*argv: str) -> int:
    """Runs one control command as ``flowsynth`` would (user mistakes -> exit 2)."""
    parser = argparse.ArgumentParser(prog="flowsynth")
    control.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (FlowsynthError, ValueError, FileNotFoundError) as error:
        print(f"flowsynth {args.command}: error: {error}")
        return 2


@pytest.fixture(scope="module")
def common(model_paths, dataset_path, tmp_path_factory) -> list[str]:
    """Model, presets and quick measuring settings, with one cache for the module."""
    cache = str(tmp_path_factory.mktemp("cli_cache"))
    model = str(model_paths["flow_dis"])
    return ["--model", model, "--data", str(dataset_path), "--anchors", "2", "--sweep-steps", "3", "--cache-dir", cache]


def test_macro_renders_the_knob_setting(common: list[str], tmp_path: Path, capsys) -> None:
    out, preset = tmp_path / "x.wav", tmp_path / "x.json"
    assert run("macro", *common, "--set", "0=0.8,3=-1", "--out", str(out), "--preset-out", str(preset), "--list") == 0
    text = capsys.readouterr().out
    assert "[hidden]" in text and "semantic 0: dark / bright (flow_dis, centroid_hz)" in text
    assert "0=+0.80" in text and "3=-1.00" in text
    audio, rate = soundfile.read(out)
    assert rate == 22050 and len(audio) == 22050 and abs(audio).max() > 1e-3
    data = json.loads(preset.read_text())
    assert len(data["normalized"]) == 16 and len(data["latent"]) == 16


def test_a_flow_dis_model_can_have_measured_semantic_knobs(common: list[str], capsys) -> None:
    assert run("macro", *common, "--semantic-knobs", "measured", "--list") == 0
    text = capsys.readouterr().out
    assert "semantic 0: dark / bright (measured, centroid_hz)" in text and "(flow_dis" not in text


def test_any_model_can_have_guided_semantic_knobs(common: list[str], tmp_path: Path, capsys) -> None:
    out = tmp_path / "bright.wav"
    assert run("macro", *common, "--semantic-knobs", "guided", "--semantic", "0=0.9", "--out", str(out), "--list") == 0
    text = capsys.readouterr().out
    assert "semantic 0: dark / bright (guided, centroid_hz)" in text
    assert "semantic 2: sustained / percussive (guided, percussiveness)" in text
    assert soundfile.read(out)[0].std() > 0


def test_macro_from_a_preset_keeps_its_other_knobs(common: list[str], tmp_path: Path) -> None:
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    assert run("macro", *common, "--preset", "2", "--preset-out", str(one)) == 0
    assert run("macro", *common, "--preset", "2", "--set", "1=0.5", "--preset-out", str(two)) == 0
    a, b = (json.loads(p.read_text())["latent"] for p in (one, two))
    assert sum(x != y for x, y in zip(a, b, strict=True)) == 1


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--set", "0=1.5", "--out", "x.wav"], r"knob value must be in [-1, 1]"),
        (["--set", "zero=1", "--out", "x.wav"], "--set takes INDEX=VALUE"),
        (["--set", "0=0.5"], "nothing to do"),
        (["--preset", "no such preset", "--out", "x.wav"], "no preset named 'no such preset'"),
    ],
)
def test_macro_mistakes_are_one_clear_line(common: list[str], option: list[str], message: str, capsys) -> None:
    assert run("macro", *common, *option) == 2
    assert message in capsys.readouterr().out


def test_interpolate_writes_both_paths_and_their_smoothness(common: list[str], tmp_path: Path, capsys) -> None:
    out = tmp_path / "path"
    assert run("interpolate", "0", "#5", *common, "--steps", "5", "--out", str(out)) == 0
    assert len(list((out / "latent").glob("*.wav"))) == len(list((out / "linear").glob("*.wav"))) == 5
    report = json.loads((out / "interpolation.json").read_text())
    assert report["steps"] == 5 and report["end"].endswith("#5") and "smoother_on" in report
    assert (out / "interpolation.png").stat().st_size > 10_000
    assert "latent path smoother on" in capsys.readouterr().out


def test_interpolate_between_two_recorded_sounds(common: list[str], render_gm_note, tmp_path: Path) -> None:
    piano, strings = render_gm_note(0), render_gm_note(48)
    out = str(tmp_path / "p")
    assert (
        run("interpolate", str(piano), str(strings), *common, "--steps", "3", "--path", "geodesic", "--out", out) == 0
    )
    report = json.loads((tmp_path / "p" / "interpolation.json").read_text())
    assert report["start"] == piano.stem and report["end"] == strings.stem and report["method"] == "geodesic"


def test_map_writes_png_and_points(model_paths, dataset_path, tmp_path: Path) -> None:
    png, points = tmp_path / "map.png", tmp_path / "map.json"
    args = ["--model", str(model_paths["flow_reg"]), "--data", str(dataset_path), "--out", str(png)]
    assert run("map", *args, "--json", str(points)) == 0
    assert png.read_bytes()[:4] == b"\x89PNG" and len(json.loads(points.read_text())["points"]) == 48
    assert run("map", "--model", str(model_paths["flow_reg"]), "--out", str(png)) == 2


def test_without_model_the_shipped_one_is_used_or_the_error_says_how(tmp_path: Path) -> None:
    from flowsynth.matching import default_model_path

    shipped = default_model_path()
    args = argparse.Namespace(model=None)
    if shipped is None:
        with pytest.raises(ValueError, match="no --model given and no model shipped"):
            control._model(args)
    else:
        assert control._model(args) == shipped
    assert control._model(argparse.Namespace(model=tmp_path / "m.pt")) == tmp_path / "m.pt"


def test_interpolate_refuses_too_few_steps_before_loading_anything(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "no-model.pt"
    assert run("interpolate", "0", "1", "--model", str(missing), "--steps", "2", "--out", str(tmp_path / "o")) == 2
    assert "--steps must be at least 3" in capsys.readouterr().out, "checked before the missing model is opened"
    assert not (tmp_path / "o").exists()
