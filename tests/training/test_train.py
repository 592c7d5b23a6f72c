"""Training through the CLI on a tiny dataset: run folder contents, resuming, budgets, data parallelism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from flowsynth.cli.main import main
from flowsynth.models import load_model
from flowsynth.training import TrainConfig, train

from .conftest import SMALL_ARGS


def train_args(data: Path, model: str, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        *("--data", str(data), "--model", model, "--out", str(out)),
        *("--batch-size", "16", "--model-args", json.dumps(SMALL_ARGS[model]), "--threads", "1", "--quiet", *extra),
    ]


def config(data: Path, out: Path, model: str = "vae", **kwargs) -> TrainConfig:
    settings = {"epochs": 2, "batch_size": 16, "model_args": SMALL_ARGS[model], "progress": False, "threads": 1}
    settings |= kwargs
    return TrainConfig(data=str(data), model=model, out=str(out), **settings)


@pytest.mark.parametrize("model", ["mlp", "cnn", "flow_reg", "flow_dis"])
def test_cli_training_writes_a_complete_run(tiny_dataset: Path, tmp_path: Path, model: str) -> None:
    out = tmp_path / "run"
    assert main(train_args(tiny_dataset, model, out, "--epochs", "2", "--kl-warmup", "1")) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"] == model and saved["epochs"] == 2
    assert saved["resolved"]["num_params"] == 16 and saved["resolved"]["train_size"] == 38
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    assert rows[0]["beta"] == 1.0 and rows[0]["valid"]["param_mse"] > 0
    loaded = load_model(out / "model.pt")
    assert loaded.name == model
    assert loaded.meta["synth"]["learned"] == list(loaded.meta["synth"]["learned"])
    assert loaded.meta["render"]["render_s"] == 1.0
    assert loaded.meta["training"]["stopped"] == "epochs" and loaded.meta["training"]["train_size"] == 38
    assert loaded.feature_norm.mean != 0.0
    features = torch.zeros(2, 64, 80) - 5.0
    assert loaded.infer(features).shape == (2, 16)


def test_training_learns(tiny_dataset: Path, tmp_path: Path) -> None:
    """A few epochs lower the training loss (a broken gradient path would not)."""
    train(config(tiny_dataset, tmp_path / "run", "mlp", epochs=8, lr=3e-3))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train"]["loss"] < 0.8 * rows[0]["train"]["loss"]


class Interrupt(KeyboardInterrupt):
    """Stands for a Ctrl-C after an epoch."""


def test_resumed_run_ends_where_an_uninterrupted_one_does(tiny_dataset: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    train(config(tiny_dataset, whole))

    def interrupt_after_first_epoch(row: dict) -> None:
        if row["epoch"] == 1:
            raise Interrupt

    cut = tmp_path / "cut"
    with pytest.raises(Interrupt):
        train(config(tiny_dataset, cut), on_epoch=interrupt_after_first_epoch)
    assert torch.load(cut / "last.pt", weights_only=True)["epoch"] == 1
    summary = train(config(tiny_dataset, cut))
    assert summary["epochs"] == 2
    expected = torch.load(whole / "last.pt", weights_only=True)
    resumed = torch.load(cut / "last.pt", weights_only=True)
    for key, value in expected["model"].items():
        assert torch.equal(resumed["model"][key], value), key
    assert resumed["optimizer"]["state"].keys() == expected["optimizer"]["state"].keys()
    lines = (cut / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


def test_finished_run_is_kept_extended_or_refused(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(config(tiny_dataset, out, "mlp", epochs=1))
    assert train(config(tiny_dataset, out, "mlp", epochs=1))["epochs"] == 1
    assert train(config(tiny_dataset, out, "mlp", epochs=2))["epochs"] == 2
    with pytest.raises(ValueError, match=r"holds a run with other settings \(model, model_args\)"):
        train(config(tiny_dataset, out, "cnn", epochs=1))


def test_time_budget_stops_before_an_epoch_that_would_overrun(tiny_dataset: Path, tmp_path: Path) -> None:
    summary = train(config(tiny_dataset, tmp_path / "run", "mlp", epochs=50, minutes=1e-4))
    assert summary["stopped"] == "time budget" and summary["epochs"] == 1


def test_early_stopping(tiny_dataset: Path, tmp_path: Path) -> None:
    summary = train(config(tiny_dataset, tmp_path / "run", "mlp", epochs=40, lr=0.3, patience=1, reg_warmup=0))
    assert summary["stopped"] == "early stopping" and summary["epochs"] < 40


def test_user_mistakes_are_one_line(tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(train_args(tmp_path / "missing.h5", "mlp", tmp_path / "run")) == 2
    assert "flowsynth train: error: no dataset file at" in capsys.readouterr().err
    assert main(train_args(tiny_dataset, "mlp", tmp_path / "run", "--epochs", "0")) == 2
    assert "epochs must be >= 1, got 0" in capsys.readouterr().err
    assert main(train_args(tiny_dataset, "flow_dis", tmp_path / "run2", "--tag-pairs", "soft:hard")) == 2
    assert "no tags for the pair soft:hard" in capsys.readouterr().err
    with pytest.raises(ValueError, match="give flow_dis's tag pairs with --tag-pairs"):
        train(config(tiny_dataset, tmp_path / "run3", "flow_dis", model_args={"pairs": [["a", "b"]]}))


def test_two_processes_train_data_parallel(tiny_dataset: Path, tmp_path: Path) -> None:
    """``torchrun --nproc_per_node 2`` (gloo on CPU) runs the same command."""
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += ["-m", "flowsynth.cli.main", *train_args(tiny_dataset, "flow_reg", out, "--epochs", "2")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((out / "config.json").read_text())
    assert saved["resolved"]["world_size"] == 2
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    assert load_model(out / "model.pt").meta["training"]["world_size"] == 2


def test_cli_offers_every_model() -> None:
    from flowsynth.cli import models as cli_models
    from flowsynth.models import available_models

    assert list(cli_models._MODELS) == available_models()
