"""Data-parallel training under ``torchrun``: process group set-up (gloo on CPU, NCCL on GPUs) and reductions.

Run the same ``flowsynth train`` command with ``torchrun --nproc_per_node N -m flowsynth.cli.main train ...``;
torchrun's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``)
is all it needs. Without it, training runs in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

__all__ = ["Processes", "setup_processes"]


@dataclass(frozen=True)
class Processes:
    """This process's place among the data-parallel processes."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def distributed(self) -> bool:
        """Whether several processes train together."""
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Whether this process writes files and shows progress (rank 0)."""
        return self.rank == 0

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum of ``values`` over the processes (``values`` itself in one process)."""
        if not self.distributed:
            return values
        values = values.to(self.device).clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values.cpu()

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag``, on every process (for decisions taken on one clock)."""
        if not self.distributed:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.broadcast(value, src=0)
        return bool(value.item())

    def barrier(self) -> None:
        """Waits for every process."""
        if self.distributed:
            dist.barrier()

    def close(self, wait: bool = True) -> None:
        """Leaves the process group; with ``wait``, once every process has finished (a process that tears its
        connections down while another still writes its checkpoints can abort that one's transport threads).
        """
        if self.distributed and dist.is_initialized():
            if wait:
                dist.barrier()
            dist.destroy_process_group()


def setup_processes() -> Processes:
    """Joins torchrun's process group when ``WORLD_SIZE > 1``: NCCL with one GPU per process, else gloo on CPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
        return Processes(0, 1, device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Processes(rank, world_size, device)
