"""``flowsynth evaluate``: the report's conditions and metrics, computed against re-rendered targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from flowsynth.cli.main import main
from flowsynth.data import DatasetFile
from flowsynth.features.metrics import AUDIO_METRICS, param_mae
from flowsynth.models import load_model
from flowsynth.training import METRICS, TrainConfig, evaluate_model, per_param_errors, train

from .conftest import SMALL_ARGS


@pytest.fixture(scope="module")
def trained(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "flow_reg"
    config = TrainConfig(
        data=str(tiny_dataset), model="flow_reg", out=str(out), epochs=1, batch_size=16,
        model_args=SMALL_ARGS["flow_reg"], progress=False, threads=1,
    )  # fmt: skip
    train(config)
    return out / "model.pt"


def test_cli_report(trained: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    report_path = tmp_path / "eval" / "report.json"
    args = ["evaluate", "--model", str(trained), "--data", str(tiny_dataset), "--json", str(report_path)]
    plot = tmp_path / "eval" / "params.png"
    assert main([*args, "--limit", "3", "--quiet", "--per-param", "--plot", str(plot)]) == 0
    report = json.loads(report_path.read_text())
    assert report["test_set"] == {"data": str(tiny_dataset), "split": "test", "sounds": 3, "limit": 3}
    assert report["synth"] == "builtin" and report["num_params"] == 16 and report["seed"] == 3
    assert report["render"]["render_s"] == 1.0
    assert report["model"]["name"] == "flow_reg" and report["model"]["training_seed"] == 0
    assert report["feature_check_max_abs"] < 1e-3, "targets re-rendered from the true parameters are the dataset's"
    assert set(report["metrics"]) == set(METRICS) >= set(AUDIO_METRICS)
    for value in report["metrics"].values():
        assert value["ci95_low"] <= value["mean"] <= value["ci95_high"]
    out = capsys.readouterr().out
    assert "synth builtin, 16 parameters, dataset seed 3" in out and "mfcc_l1" in out
    learned = load_model(trained).meta["synth"]["learned"]
    assert list(report["per_param"]) == list(learned)
    assert all(name in out for name in learned), "--per-param prints every parameter"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parameter_metrics_match_inference(trained: Path, tiny_dataset: Path) -> None:
    model, dataset = load_model(trained), DatasetFile(tiny_dataset)
    report = evaluate_model(model, dataset, limit=4, progress=False)
    features, params = dataset.load("test")
    expected = param_mae(params[:4], model.infer(features[:4])).mean()
    assert report["metrics"]["param_mae"]["mean"] == pytest.approx(float(expected), rel=1e-5)


def test_perfect_estimates_score_zero(tiny_dataset: Path) -> None:
    """An oracle that returns the true parameters re-renders the targets exactly: every distance is 0."""
    dataset = DatasetFile(tiny_dataset)
    features, params = dataset.load("test")

    class Oracle(torch.nn.Module):
        name, num_params = "oracle", 16

        def infer(self, x: torch.Tensor) -> torch.Tensor:
            rows = [int(torch.argmin((features - f).abs().flatten(1).sum(1))) for f in x]
            return params[rows]

    report = evaluate_model(Oracle(), dataset, progress=False)  # type: ignore[arg-type]
    for name in METRICS:
        assert report["metrics"][name]["mean"] == pytest.approx(0.0, abs=1e-6), name
    assert {v["r2"] for v in report["per_param"].values()} == {1.0}


def test_per_param_errors_against_guessing_the_mean() -> None:
    truth = torch.rand(200, 3, generator=torch.Generator().manual_seed(0))
    estimate = torch.stack([truth[:, 0], truth[:, 1].mean().expand(200), 1.0 - truth[:, 2]], dim=1)
    errors = per_param_errors(["exact", "mean", "mirrored"], truth, estimate)
    assert errors["exact"]["r2"] == 1.0 and errors["exact"]["mse"] == 0.0
    assert errors["mean"]["r2"] == pytest.approx(0.0, abs=1e-4)
    assert errors["mean"]["mse"] == pytest.approx(errors["mean"]["chance_mse"], rel=1e-4)
    assert errors["mirrored"]["r2"] < -1.0, "an anti-correlated guess is worse than the mean"
    with pytest.raises(ValueError, match="3 names"):
        per_param_errors(["a", "b", "c"], truth[:, :2], estimate[:, :2])


def test_damaged_checkpoint_is_one_line(tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"not a checkpoint")
    assert main(["evaluate", "--model", str(path), "--data", str(tiny_dataset)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flowsynth evaluate: error:") and "not a readable model checkpoint" in err
    assert len(err.strip().splitlines()) == 1


def test_model_and_dataset_must_agree(trained: Path, tmp_path: Path) -> None:
    from flowsynth.data import RenderJob, render_dataset
    from flowsynth.synth import RenderConfig, get_synth

    other = tmp_path / "b32.h5"
    config = RenderConfig(render_s=1.0, note_s=0.5)
    render_dataset(other, RenderJob(get_synth("builtin-32").describe(), config.describe(), 12, 0, 12), progress=False)
    with pytest.raises(ValueError, match="the model infers 16 parameters, the dataset's synth learns 32"):
        evaluate_model(load_model(trained), DatasetFile(other), progress=False)
