"""What the machine lets this process use (no torch import: the CLI's parser reads it)."""

from __future__ import annotations

import os

__all__ = ["usable_cores"]


def usable_cores(limit: int | None = None) -> int:
    """The CPU cores this process may run on (its affinity, which containers and ``taskset`` narrow),
    at least 1 and at most ``limit``.

    Example:
        >>> 1 <= usable_cores(4) <= 4
        True
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, limit) if limit else cores)
