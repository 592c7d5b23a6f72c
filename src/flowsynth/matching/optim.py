"""Small-optimization helpers: a minimal Adam and a single-thread context.

:class:`Adam` is ``torch.optim.Adam``'s update (defaults, no weight decay, no amsgrad) for one
tensor: importing ``torch.optim`` loads TorchDynamo, which takes seconds, more than a quick match.
:func:`single_thread` runs a block on one torch thread: the many tiny operations of an envelope fit
are hundreds of times slower with several threads on a busy CPU (each waits for the others).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["Adam", "single_thread"]


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Context in which torch uses one intra-op thread; the previous count is restored after.

    >>> with single_thread():
    ...     torch.get_num_threads()
    1
    """
    previous = torch.get_num_threads()
    if previous != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if previous != 1:
            torch.set_num_threads(previous)


class Adam:
    """Adam (Kingma and Ba, 2015) on one leaf tensor.

    Arguments:
        param: The tensor to optimize (``requires_grad=True``).
        lr: Learning rate.
        betas: Decay rates of the first and second moment estimates.
        eps: Added to the denominator.

    Example:
        >>> x = torch.tensor([3.0], requires_grad=True)
        >>> adam = Adam(x, lr=0.1)
        >>> for _ in range(200):
        ...     adam.zero_grad()
        ...     (x - 1.0).square().sum().backward()
        ...     adam.step()
        >>> round(float(x), 2)
        1.0
    """

    def __init__(self, param: Tensor, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        if not param.requires_grad:
            raise ValueError("Adam needs a tensor with requires_grad=True")
        self.param, self.lr, self.betas, self.eps = param, float(lr), betas, float(eps)
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)
        self.t = 0

    def zero_grad(self) -> None:
        """Forgets the gradient of the last step."""
        self.param.grad = None

    def step(self) -> None:
        """One update from ``param.grad`` (no update when it has none)."""
        grad = self.param.grad
        if grad is None:
            return
        beta1, beta2 = self.betas
        self.t += 1
        with torch.no_grad():
            self.m.mul_(beta1).add_(grad, alpha=1.0 - beta1)
            self.v.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
            m_hat = self.m / (1.0 - beta1**self.t)
            v_hat = self.v / (1.0 - beta2**self.t)
            self.param.sub_(self.lr * m_hat / (v_hat.sqrt() + self.eps))
