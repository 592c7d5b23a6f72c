"""Synth parameter ranges that map between a synth's own units and [0, 1]."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import torch
from torch import Tensor

__all__ = ["Param", "ParamSpace"]


@dataclass(frozen=True)
class Param:
    r"""One synth parameter, declared once.

    A normalized value :math:`x \in [0, 1]` maps to units by
    :math:`v = min + (max - min) x^{curve}`, or geometrically when ``log`` is set
    (:math:`v = min (max / min)^{x}`, for frequencies and times). A discrete
    parameter has ``choices`` and maps :math:`x` to the nearest choice index.

    Arguments:
        name: Identifier, unique within a synth.
        min: Value in units at ``x = 0``.
        max: Value in units at ``x = 1``.
        default: Value in units used when the parameter is not learned.
        units: Units of the value (``"Hz"``, ``"s"``, ``"semitones"``, ...).
        description: One line for people.
        curve: Exponent of the linear map (ignored when ``log``).
        log: Map geometrically (``min`` and ``max`` must be positive).
        choices: Names of the values of a discrete parameter.

    Example:
        >>> p = Param("cutoff", 20.0, 20000.0, default=1000.0, units="Hz", log=True)
        >>> round(float(p.to_units(torch.tensor(0.5))), 1)
        632.5
        >>> round(float(p.from_units(torch.tensor(632.456))), 3)
        0.5
    """

    name: str
    min: float = 0.0
    max: float = 1.0
    default: float | None = None
    units: str = ""
    description: str = ""
    curve: float = 1.0
    log: bool = False
    choices: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.choices is not None:
            object.__setattr__(self, "min", 0.0)
            object.__setattr__(self, "max", float(len(self.choices) - 1))
        if self.log and (self.min <= 0 or self.max <= 0):
            raise ValueError(f"parameter {self.name!r}: a log range needs min and max > 0, got {self.min}, {self.max}")
        if self.default is None:
            object.__setattr__(self, "default", self.min)
        lo, hi = sorted((self.min, self.max))
        if not lo <= self.default <= hi:  # type: ignore[operator]
            raise ValueError(f"parameter {self.name!r}: default {self.default} is outside [{lo}, {hi}]")

    @property
    def discrete(self) -> bool:
        """Whether the parameter takes one of a few named values."""
        return self.choices is not None

    def to_units(self, x: Tensor) -> Tensor:
        """Maps normalized values in [0, 1] to units."""
        x = x.clamp(0.0, 1.0)
        if self.discrete:
            return torch.round(x * self.max)
        if self.log:
            return self.min * (self.max / self.min) ** x
        return self.min + (self.max - self.min) * x**self.curve

    def from_units(self, v: Tensor) -> Tensor:
        """Maps values in units to [0, 1] (the inverse of :meth:`to_units`)."""
        if self.discrete:
            return (v / self.max if self.max > 0 else v * 0).clamp(0.0, 1.0)
        if self.log:
            x = torch.log(v / self.min) / math.log(self.max / self.min)
        else:
            x = ((v - self.min) / (self.max - self.min)).clamp(0.0, 1.0) ** (1.0 / self.curve)
        return x.clamp(0.0, 1.0)

    @property
    def default_normalized(self) -> float:
        """The default value in [0, 1]."""
        return float(self.from_units(torch.tensor(float(self.default), dtype=torch.float64)))  # type: ignore[arg-type]

    def describe(self) -> dict:
        """A JSON-ready description."""
        out = {
            "name": self.name,
            "min": self.min,
            "max": self.max,
            "default": self.default,
            "units": self.units,
            "description": self.description,
            "curve": self.curve,
            "log": self.log,
        }
        if self.choices is not None:
            out["choices"] = list(self.choices)
        return out

    @classmethod
    def from_description(cls, d: dict) -> Param:
        """Rebuilds a parameter from :meth:`describe`'s output."""
        d = dict(d)
        if d.get("choices") is not None:
            d["choices"] = tuple(d["choices"])
        return cls(**d)


@dataclass(frozen=True)
class ParamSpace:
    """The parameters a model learns, out of all of a synth's, with the others fixed.

    Arguments:
        params: Every parameter of the synth, in its render order.
        learned: Names of the learned parameters, in vector order.
        fixed: Normalized values of the parameters that are not learned
            (a parameter missing here stays at its default).

    Example:
        >>> space = ParamSpace((Param("a"), Param("b", default=0.25)), ("a",))
        >>> space.expand(torch.tensor([[0.7]])).tolist()
        [[0.699999988079071, 0.25]]
    """

    params: tuple[Param, ...]
    learned: tuple[str, ...]
    fixed: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError("parameter names must be unique")
        check_names(self.learned, names)
        check_names(tuple(self.fixed), names)
        for name, value in self.fixed.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fixed value of {name!r} must be normalized to [0, 1], got {value}")

    @property
    def names(self) -> tuple[str, ...]:
        """Names of every parameter."""
        return tuple(p.name for p in self.params)

    @property
    def learned_params(self) -> tuple[Param, ...]:
        """The learned parameters, in vector order."""
        by_name = {p.name: p for p in self.params}
        return tuple(by_name[n] for n in self.learned)

    def full_defaults(self) -> Tensor:
        """The normalized vector of every parameter with the learned ones at default."""
        return _full_defaults(self.params, tuple(sorted(self.fixed.items()))).clone()

    def expand(self, x: Tensor) -> Tensor:
        """Expands learned vectors ``[batch, n_learned]`` to full vectors ``[batch, n_params]``."""
        if x.dim() != 2 or x.shape[1] != len(self.learned):
            raise ValueError(f"expected parameters of shape [batch, {len(self.learned)}], got {list(x.shape)}")
        full = self.full_defaults().to(x).expand(x.shape[0], -1)
        index = torch.tensor([self.names.index(n) for n in self.learned], device=x.device)
        return full.index_copy(1, index, x)

    def to_units(self, x: Tensor) -> dict[str, list[float]]:
        """Maps learned normalized vectors to ``{name: values in units}``."""
        return {p.name: p.to_units(x[:, i]).tolist() for i, p in enumerate(self.learned_params)}

    def from_units(self, values: dict[str, float]) -> Tensor:
        """Maps ``{name: value in units}`` to one learned normalized vector ``[n_learned]``.

        Learned parameters missing from ``values`` take their default.
        """
        check_names(tuple(values), self.learned)
        out = []
        for p in self.learned_params:
            v = float(values.get(p.name, p.default))  # type: ignore[arg-type]
            out.append(float(p.from_units(torch.tensor(v, dtype=torch.float64))))
        return torch.tensor(out, dtype=torch.float32)


@lru_cache(maxsize=64)
def _full_defaults(params: tuple[Param, ...], fixed: tuple[tuple[str, float], ...]) -> Tensor:
    values = dict(fixed)
    return torch.tensor([values.get(p.name, p.default_normalized) for p in params], dtype=torch.float32)


def check_names(names: tuple[str, ...], known: list[str] | tuple[str, ...]) -> None:
    """Raises a :class:`ValueError` naming any unknown parameter."""
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
