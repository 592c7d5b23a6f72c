"""The training loop: warm-ups, validation, early stopping, checkpoints, resuming, data parallelism.

A run folder holds ``config.json`` (the settings and the resolved facts), ``metrics.jsonl`` (one line
per epoch), ``model.pt`` (the best model so far by validation parameter MSE, a checkpoint that
:func:`flowsynth.models.load_model` reads alone) and ``last.pt`` (the state after the last finished
epoch: weights, optimizer, schedule, early stopping, clock). Rerunning the same command resumes from
``last.pt``. Every epoch reseeds the random generators from ``(seed, epoch, rank)``, so a resumed run
draws the same numbers, and ends with the same weights, as an uninterrupted one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from flowsynth import __version__
from flowsynth.errors import CheckpointError, FlowsynthError
from flowsynth.features.norm import FeatureNorm
from flowsynth.models import LossWeights, ParamModel, build_model
from flowsynth.models.checkpoint import atomic_save, load_checkpoint, save_model
from flowsynth.training.config import TrainConfig
from flowsynth.training.data import Split, TrainingData, batches, load_training_data, steps_per_epoch
from flowsynth.training.distributed import Processes, setup_processes
from flowsynth.training.schedule import EarlyStopping, loss_weights, make_scheduler, warmup_epochs

__all__ = ["STATE_FORMAT", "train"]

STATE_FORMAT = "flowsynth-train-state/1"
_VALID_CHUNK = 256

EpochCallback = Callable[[dict[str, Any]], None]


def train(config: TrainConfig, on_epoch: EpochCallback | None = None) -> dict[str, Any]:
    """Trains (or resumes training) a model as ``config`` says; returns a summary of the run.

    Arguments:
        config: The settings.
        on_epoch: Called on every process with each epoch's metrics, after the checkpoints are saved.

    Raises:
        ValueError: the run folder holds a run with other settings, or a setting is wrong.
        DatasetError: the dataset cannot be used.
        FlowsynthError: training diverged (the loss stayed NaN).
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    processes = setup_processes()
    try:
        result = _Trainer(config, processes, on_epoch).run()
    except BaseException:
        processes.close(wait=False)  # another process may have failed too: nobody to wait for
        raise
    processes.close()
    return result


def _seed(*parts: int) -> int:
    """A seed from integers (stable across runs and processes)."""
    value = 0x9E3779B1
    for part in parts:
        value = (value * 1_000_003 + int(part) + 1) % (2**63 - 1)
    return value


class _LossModule(nn.Module):
    """Wraps a model so that its loss is the forward pass, as data parallelism needs."""

    def __init__(self, model: ParamModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, features: Tensor, params: Tensor, tags: Tensor | None, beta: float, gamma: float, delta: float
    ) -> dict[str, Tensor]:
        return self.model.loss(features, params, LossWeights(beta, gamma, delta), tags)


class _Trainer:
    def __init__(self, config: TrainConfig, processes: Processes, on_epoch: EpochCallback | None) -> None:
        self.config, self.processes, self.on_epoch = config, processes, on_epoch
        self.out = Path(config.out)
        self._check_previous_run()
        pairs = config.tag_pairs if config.model == "flow_dis" else None
        self.data: TrainingData = load_training_data(
            config.data, pairs, config.tag_fraction, config.tag_quantile, config.seed
        )
        self.model = self._build_model().to(processes.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.scheduler = make_scheduler(config, self.optimizer)
        self.early = EarlyStopping(config.patience)
        self.epoch, self.elapsed_s, self.last_epoch_s = 0, 0.0, 0.0
        self.module = self._wrap()
        if (self.out / "last.pt").exists():
            self._resume()
        if processes.main:
            self.out.mkdir(parents=True, exist_ok=True)
            config.save(self.out / "config.json", self._resolved())
            self._trim_metrics()

    # -- set-up -----------------------------------------------------------------------------------

    def _check_previous_run(self) -> None:
        saved = self.out / "config.json"
        if not saved.exists():
            return
        try:
            previous = TrainConfig.load(saved)
        except (ValueError, TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"{saved} is not a training config ({error}); choose another --out") from None
        changed = self.config.differences(previous)
        if changed:
            raise ValueError(
                f"{self.out} holds a run with other settings ({', '.join(changed)}); rerun it with the same "
                "command to resume it, or choose another --out"
            )

    def _build_model(self) -> ParamModel:
        kwargs = dict(self.config.model_args)
        if self.config.model == "flow_dis":
            if kwargs.get("pairs", self.config.tag_pairs) != self.config.tag_pairs:
                raise ValueError("give flow_dis's tag pairs with --tag-pairs LOW:HIGH,..., not in --model-args")
            kwargs["pairs"] = self.config.tag_pairs
        torch.manual_seed(self.config.seed)
        model = build_model(self.config.model, self.data.num_params, **kwargs)
        model.set_feature_norm(FeatureNorm().fit(self.data.train.features))
        return model

    def _wrap(self) -> nn.Module:
        module = _LossModule(self.model)
        if not self.processes.distributed:
            return module
        device_ids = [self.processes.device] if self.processes.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)

    def _resolved(self) -> dict[str, Any]:
        dataset = self.data.dataset
        return {
            "num_params": self.data.num_params,
            "train_size": len(self.data.train),
            "valid_size": len(self.data.valid),
            "synth": dataset.synth_description.get("name"),
            "dataset_seed": dataset.attrs.get("seed"),
            "world_size": self.processes.world_size,
            "device": str(self.processes.device),
            "model_kwargs": self.model.config,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "flowsynth_version": __version__,
            "torch_version": torch.__version__,
        }

    # -- resuming -----------------------------------------------------------------------------------

    def _resume(self) -> None:
        path = self.out / "last.pt"
        try:
            state = torch.load(path, map_location=self.processes.device, weights_only=True)
        except (RuntimeError, OSError, EOFError, ValueError) as error:
            raise CheckpointError(f"{path} is unreadable ({error}); delete it to restart the run") from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise CheckpointError(f"{path} is not a training state ({STATE_FORMAT}); delete it to restart the run")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.early.load_state_dict(state["early"])
        self.epoch, self.elapsed_s, self.last_epoch_s = state["epoch"], state["elapsed_s"], state["last_epoch_s"]
        if self.processes.main and self.config.progress:
            print(f"resuming {self.out} after epoch {self.epoch}")

    def _trim_metrics(self) -> None:
        """Drops metric lines of epochs past the resume point (written just before an interruption)."""
        path = self.out / "metrics.jsonl"
        if not path.exists():
            return
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        kept = [line for line in lines if json.loads(line)["epoch"] <= self.epoch]
        path.write_text("".join(line + "\n" for line in kept))

    def _state(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "early": self.early.state_dict(),
            "elapsed_s": self.elapsed_s,
            "last_epoch_s": self.last_epoch_s,
            "rng_state": torch.get_rng_state(),
        }

    # -- the loop -----------------------------------------------------------------------------------

    def _stop_reason(self) -> str | None:
        if self.early.should_stop:
            return "early stopping"
        if self.epoch >= self.config.epochs:
            return "epochs"
        budget_s = self.config.minutes * 60 if self.config.minutes else None
        over = budget_s is not None and self.elapsed_s + self.last_epoch_s > budget_s
        return "time budget" if self.processes.agree(over) else None

    def run(self) -> dict[str, Any]:
        reason = self._stop_reason()
        while reason is None:
            start = time.perf_counter()
            train_metrics = self._train_epoch()
            valid_metrics = self._validate()
            self.last_epoch_s = time.perf_counter() - start
            self._end_epoch(train_metrics, valid_metrics)
            reason = self._stop_reason()
        summary = self._summary(reason)
        if self.processes.main:
            self._finalize(summary)
        return summary

    def _batch(self, split: Split, index: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        device = self.processes.device
        tags = split.tags[index].to(device) if self.config.model == "flow_dis" else None
        return split.features[index].to(device), split.params[index].to(device), tags

    def _train_epoch(self) -> dict[str, float]:
        config, processes = self.config, self.processes
        torch.manual_seed(_seed(config.seed, self.epoch, processes.rank))
        self.module.train()
        n = len(self.data.train)
        steps = steps_per_epoch(n, config.batch_size)
        sums: dict[str, float] = {}
        count, skipped, start = 0, 0, time.perf_counter()
        order = batches(n, config.batch_size, _seed(config.seed, self.epoch), processes.rank, processes.world_size)
        bar = tqdm(order, total=steps, desc=f"epoch {self.epoch + 1}", leave=False, disable=not self._verbose)
        for step, index in enumerate(bar):
            if len(index) < 2:
                minimum = 2 * processes.world_size
                raise ValueError(f"each process needs batches of at least 2 sounds: use --batch-size >= {minimum}")
            weights = loss_weights(config, self.epoch + step / steps)
            out = self.module(*self._batch(self.data.train, index), weights.beta, weights.gamma, weights.delta)
            self.optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            norm = nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
            if torch.isfinite(norm):
                self.optimizer.step()
            else:
                skipped += 1
            for key, value in out.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach()) * len(index)
            count += len(index)
            bar.set_postfix(loss=f"{float(out['loss'].detach()):.4g}")
        if skipped == steps:
            raise FlowsynthError(f"training diverged at epoch {self.epoch + 1} (NaN gradients); lower --lr")
        totals = processes.sum(torch.tensor([*sums.values(), float(count)], dtype=torch.float64))
        metrics = {key: float(v) / float(totals[-1]) for key, v in zip(sums, totals[:-1].tolist(), strict=True)}
        metrics["samples_per_s"] = float(totals[-1]) / (time.perf_counter() - start)
        metrics["skipped_steps"] = float(skipped)
        return metrics

    @property
    def _verbose(self) -> bool:
        return self.config.progress and self.processes.main

    def _validate(self) -> dict[str, float]:
        config, processes, split = self.config, self.processes, self.data.valid
        weights = LossWeights(beta=config.beta, gamma=1.0, delta=1.0)
        index = torch.arange(processes.rank, len(split), processes.world_size)
        sums: dict[str, float] = {}
        with torch.no_grad(), self.model.evaluating():
            for chunk in index.split(_VALID_CHUNK):
                features, params, tags = self._batch(split, chunk)
                error = self.model.infer(features) - params
                terms = {k: float(v) for k, v in self.model.loss(features, params, weights, tags).items()}
                terms |= {"param_mse": float(error.square().mean()), "param_mae": float(error.abs().mean())}
                for key, value in terms.items():
                    sums[key] = sums.get(key, 0.0) + value * len(chunk)
        totals = processes.sum(torch.tensor([*sums.values(), float(len(index))], dtype=torch.float64))
        return {key: float(v) / float(totals[-1]) for key, v in zip(sums, totals[:-1].tolist(), strict=True)}

    def _end_epoch(self, train_metrics: dict[str, float], valid_metrics: dict[str, float]) -> None:
        lr = self.optimizer.param_groups[0]["lr"]
        score = valid_metrics["param_mse"]
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(score)
        else:
            self.scheduler.step()
        improved = self.early.update(score, after_warmup=self.epoch + 1 >= warmup_epochs(self.config))
        self.epoch += 1
        self.elapsed_s += self.last_epoch_s
        weights = loss_weights(self.config, float(self.epoch))
        row = {
            "epoch": self.epoch,
            "lr": lr,
            "beta": weights.beta,
            "gamma": weights.gamma,
            "train": train_metrics,
            "valid": valid_metrics,
            "best": improved,
            "epoch_s": self.last_epoch_s,
            "elapsed_s": self.elapsed_s,
        }
        if self.processes.main:
            self._save(improved, row)
        if self.on_epoch is not None:
            self.on_epoch(row)

    def _save(self, improved: bool, row: dict[str, Any]) -> None:
        if improved:
            dataset = self.data.dataset
            save_model(
                self.out / "model.pt", self.model, dataset.synth_description, dataset.render_config, self._info()
            )
        atomic_save(self._state(), self.out / "last.pt")
        with open(self.out / "metrics.jsonl", "a") as file:
            file.write(json.dumps(row) + "\n")
        if self.config.progress:
            valid = row["valid"]
            print(
                f"epoch {self.epoch}/{self.config.epochs}: train loss {row['train']['loss']:.4g}, valid loss "
                f"{valid['loss']:.4g}, valid param MSE {valid['param_mse']:.4f}{' (best)' if improved else ''}, "
                f"{row['train']['samples_per_s']:.0f} sounds/s"
            )

    def _info(self) -> dict[str, Any]:
        dataset = self.data.dataset
        return {
            "data": str(dataset.path),
            "dataset_seed": dataset.attrs.get("seed"),
            "train_size": len(self.data.train),
            "valid_size": len(self.data.valid),
            "seed": self.config.seed,
            "epochs_trained": self.epoch,
            "best_epoch": self.early.best_epoch + 1,
            "valid_param_mse": self.early.best,
            "train_time_s": self.elapsed_s,
            "world_size": self.processes.world_size,
            "config": self.config.to_dict(),
            "flowsynth_version": __version__,
        }

    def _summary(self, reason: str) -> dict[str, Any]:
        rows = []
        metrics = self.out / "metrics.jsonl"
        if self.processes.main and metrics.exists():
            rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        speeds = [row["train"]["samples_per_s"] for row in rows]
        return {
            "out": str(self.out),
            "model": self.config.model,
            "stopped": reason,
            "epochs": self.epoch,
            "best_epoch": self.early.best_epoch + 1,
            "valid_param_mse": self.early.best,
            "train_time_s": self.elapsed_s,
            "samples_per_s": sum(speeds) / len(speeds) if speeds else None,
        }

    def _finalize(self, summary: dict[str, Any]) -> None:
        """Records the final facts of the run in ``model.pt``'s training info."""
        path = self.out / "model.pt"
        if not path.exists():
            return
        checkpoint = load_checkpoint(path)
        checkpoint["training"].update(
            stopped=summary["stopped"],
            epochs_run=summary["epochs"],
            total_train_time_s=summary["train_time_s"],
            samples_per_s=summary["samples_per_s"],
        )
        atomic_save(checkpoint, path)
