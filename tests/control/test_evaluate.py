"""The held-out measurement of a model's controls (PROTOCOL.md's semantic and interpolation figures)."""

from __future__ import annotations

import json

from flowsynth.control import AnalysisConfig, SoundSpace
from flowsynth.control.evaluate import evaluate_controls, main


def test_report_holds_every_figure_with_its_conditions(space: SoundSpace, dataset_path, tmp_path) -> None:
    report = evaluate_controls(space, dataset_path, anchors=2, pairs=2, steps=5, analysis=AnalysisConfig(2, 3, 4))
    assert report["test_set"]["split"] == "test" and report["num_params"] == 16 and report["seed"] == 0
    assert [row["name"] for row in report["semantic"]][:2] == ["dark / bright", "tonal / noisy"]
    for row in report["semantic"]:
        assert -1 <= row["rho"]["mean"] <= 1 and row["leakage"]["mean"] >= 0
    inter = report["interpolation"]
    assert inter["pairs"] == 2 and set(inter["per_descriptor"]) >= {"centroid_hz", "flux"}
    assert 0 <= inter["descriptors_smoother_on_average"] <= 8 and len(report["macros"]) == 4
    assert report["interpolation_encoded"]["endpoint_error"]["mean"] < 1e-3  # heard sounds are reached exactly
    json.dumps(report)


def test_command_line_writes_the_report(model_paths, dataset_path, tmp_path, capsys) -> None:
    out = tmp_path / "quality.json"
    args = ["--model", str(model_paths["flow_dis"]), "--data", str(dataset_path), "--out", str(out)]
    main([*args, "--anchors", "2", "--pairs", "1", "--macro-anchors", "1"])
    assert json.loads(out.read_text())["model"] == "flow_dis"
    assert "interpolation: latent smoother on" in capsys.readouterr().out
