"""Every flow and bijection of the models through the same invariants (shape, gradients, inverse, log-det, save/load)."""

from __future__ import annotations

import inspect
import io
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor
from zuko.flows import UnconditionalTransform
from zuko.lazy import LazyTransform

from flowsynth.models import flows
from flowsynth.models.flows import FLOW_KINDS, DisentanglingFlow, PosteriorIAF, RegressionFlow, UnitIntervalTransform

FEATURES, CONTEXT, BATCH = 5, 3, 4


@dataclass(frozen=True)
class Case:
    """A flow to test: how to build it, and whether it takes a context."""

    make: Callable[[], LazyTransform]
    context: int = 0
    covers: type | None = None


CASES: dict[str, Case] = {
    "unit-interval": Case(lambda: UnconditionalTransform(UnitIntervalTransform), covers=UnitIntervalTransform),
    **{
        f"posterior-iaf-{kind}": Case(
            lambda kind=kind: PosteriorIAF(FEATURES, CONTEXT, 2, (16,), kind), CONTEXT, PosteriorIAF
        )
        for kind in FLOW_KINDS
    },
    **{
        f"regression-{kind}": Case(lambda kind=kind: RegressionFlow(FEATURES, 2, (16,), kind), covers=RegressionFlow)
        for kind in FLOW_KINDS
    },
    **{
        f"disentangling-{kind}": Case(
            lambda kind=kind: DisentanglingFlow(FEATURES, 2, (16,), kind), covers=DisentanglingFlow
        )
        for kind in FLOW_KINDS
    },
}


def _build(case: Case, seed: int = 0) -> LazyTransform:
    torch.manual_seed(seed)
    return case.make().double()


def _inputs(case: Case, seed: int = 1) -> tuple[Tensor, Tensor | None]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, FEATURES, generator=generator, dtype=torch.float64)
    c = torch.randn(BATCH, case.context, generator=generator, dtype=torch.float64) if case.context else None
    return x, c


def _transform(flow: LazyTransform, c: Tensor | None):
    return flow(c) if c is not None else flow()


def test_every_flow_is_covered() -> None:
    """Guard: the cases are not empty and cover every flow class the module defines."""
    defined = {
        obj
        for _, obj in inspect.getmembers(flows, inspect.isclass)
        if obj.__module__ == flows.__name__ and not obj.__name__.startswith("_")
    }
    assert CASES
    assert defined == {case.covers for case in CASES.values()}


@pytest.mark.parametrize("name", CASES)
def test_shapes(name: str) -> None:
    case = CASES[name]
    x, c = _inputs(case)
    y, ladj = _transform(_build(case), c).call_and_ladj(x)
    assert y.shape == x.shape
    assert ladj.shape == (BATCH,) or (name == "unit-interval" and ladj.shape == x.shape)


@pytest.mark.parametrize("name", CASES)
def test_gradients(name: str) -> None:
    case = CASES[name]
    flow = _build(case)
    x, c = _inputs(case)
    x.requires_grad_(True)
    y, ladj = _transform(flow, c).call_and_ladj(x)
    (y.square().sum() + ladj.sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for parameter in flow.parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all()
    if list(flow.parameters()):
        assert sum(float(p.grad.abs().sum()) for p in flow.parameters()) > 0


@pytest.mark.parametrize("name", CASES)
def test_inverse_of_forward(name: str) -> None:
    case = CASES[name]
    x, c = _inputs(case)
    transform = _transform(_build(case), c)
    with torch.no_grad():
        y = transform(x)
        assert torch.allclose(transform.inv(y), x, atol=1e-6)
        assert torch.allclose(transform(transform.inv(y)), y, atol=1e-6)


@pytest.mark.parametrize("name", CASES)
def test_log_det_matches_autograd_jacobian(name: str) -> None:
    case = CASES[name]
    flow = _build(case)
    x, c = _inputs(case)
    _, ladj = _transform(flow, c).call_and_ladj(x)
    if ladj.shape == x.shape:  # element-wise bijection: sum over the event
        ladj = ladj.sum(-1)
    for b in range(BATCH):
        context = c[b : b + 1] if c is not None else None
        jacobian = torch.autograd.functional.jacobian(lambda v, c=context: _transform(flow, c)(v[None])[0], x[b])
        assert torch.allclose(torch.linalg.slogdet(jacobian).logabsdet, ladj[b], atol=1e-6)


@pytest.mark.parametrize("name", CASES)
def test_save_load_round_trip(name: str) -> None:
    case = CASES[name]
    flow = _build(case, seed=0)
    buffer = io.BytesIO()
    torch.save(flow.state_dict(), buffer)
    buffer.seek(0)
    loaded = _build(case, seed=123)
    loaded.load_state_dict(torch.load(buffer, weights_only=True))
    x, c = _inputs(case)
    with torch.no_grad():
        assert torch.equal(_transform(loaded, c)(x), _transform(flow, c)(x))
    if hasattr(flow, "config"):
        assert type(flow)(**flow.config).config == flow.config


def test_posterior_flow_depends_on_its_input() -> None:
    flow = _build(CASES["posterior-iaf-maf"])
    z0 = torch.randn(1, FEATURES, dtype=torch.float64).expand(2, FEATURES)
    contexts = torch.randn(2, CONTEXT, dtype=torch.float64)
    zk = flow(contexts)(z0)
    assert not torch.allclose(zk[0], zk[1])


def test_posterior_flow_needs_a_context() -> None:
    with pytest.raises(ValueError, match="conditioned on the input"):
        PosteriorIAF(FEATURES, 0)
    with pytest.raises(ValueError, match="give a context"):
        PosteriorIAF(FEATURES, CONTEXT)()


def test_regression_flow_maps_into_the_unit_interval_and_back_from_its_edges() -> None:
    flow = RegressionFlow(FEATURES, 2, (16,))
    with torch.no_grad():
        params = flow()(torch.randn(100, FEATURES) * 3)
        assert ((params > 0) & (params < 1)).all()
        edges = torch.tensor([[0.0, 1.0, 0.5, 0.0, 1.0]])
        z = flow().inv(edges)
    assert torch.isfinite(z).all()


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown flow kind 'glow'; known: maf, nsf, realnvp"):
        RegressionFlow(FEATURES, kind="glow")
