"""Semantic knobs: flow_dis's own coordinates, measured directions for the other models, and their measurement."""

from __future__ import annotations

import pytest
import torch

from flowsynth.control import SemanticKnobs, SoundSpace, evaluate_semantic, fit_semantic_knobs
from flowsynth.control.descriptors import DescriptorScale
from flowsynth.control.semantic import KNOB_RANGE, _center_span, _guided_knobs
from flowsynth.data import DatasetFile
from flowsynth.training.tags import DESCRIPTOR_TAGS


@pytest.fixture(scope="module")
def measured(space: SoundSpace, dataset_path) -> SemanticKnobs:
    data = DatasetFile(dataset_path)
    params = torch.from_numpy(data.read("params"))
    descriptors = {n: torch.from_numpy(data.read(f"descriptors/{n}")) for n in data.descriptor_names()}
    return fit_semantic_knobs(space, space.to_latent(params), descriptors)


def test_flow_dis_knobs_are_its_semantic_coordinates(dis_space: SoundSpace, reference: torch.Tensor) -> None:
    knobs = fit_semantic_knobs(dis_space, reference)
    assert [k.name for k in knobs.knobs] == ["dark / bright", "tonal / noisy"]
    assert all(k.kind == "flow_dis" and k.descriptor for k in knobs.knobs)
    z = reference[:3]
    moved = knobs.apply(z, {0: 0.6})
    before, after = dis_space.model.to_semantic(z), dis_space.model.to_semantic(moved)
    assert torch.allclose(after[:, 0], torch.full((3,), 0.6 * knobs.knobs[0].span), atol=1e-4)
    assert torch.allclose(after[:, 1:], before[:, 1:], atol=1e-4)
    assert torch.allclose(knobs.values(moved)[:, 0], torch.full((3,), 0.6), atol=1e-4)


def test_a_flow_dis_model_can_use_measured_knobs(dis_space: SoundSpace, reference: torch.Tensor) -> None:
    descriptors = dis_space.describe(dis_space.to_params(reference))
    knobs = fit_semantic_knobs(dis_space, reference, descriptors, source="measured")
    assert knobs.knobs and all(k.kind == "measured" for k in knobs.knobs)
    assert len(knobs.knobs) > len(dis_space.model.pairs), "one measured knob per descriptor pair"
    with pytest.raises(ValueError, match="unknown semantic knob source 'learned'"):
        fit_semantic_knobs(dis_space, reference, descriptors, source="learned")


def test_measured_knobs_move_along_one_unit_direction(measured: SemanticKnobs, reference: torch.Tensor) -> None:
    assert [(k.low, k.high) for k in measured.knobs] == list(DESCRIPTOR_TAGS)
    knob = measured.knobs[0]
    u = torch.tensor(knob.direction)
    assert float(u.norm()) == pytest.approx(1.0, abs=1e-5)
    z = reference[:4]
    moved = measured.apply(z, {0: -0.25})
    assert torch.allclose(measured.values(moved)[:, 0], torch.full((4,), -0.25), atol=1e-4)
    orthogonal = (moved - z) - ((moved - z) @ u)[:, None] * u
    assert float(orthogonal.abs().max()) < 1e-4


def test_measured_brightness_knob_follows_the_centroid_on_held_out_presets(
    measured: SemanticKnobs, space: SoundSpace, dataset_path
) -> None:
    data = DatasetFile(dataset_path)
    held_out = space.to_latent(torch.from_numpy(data.read("params", "test"))[:3])
    scale = DescriptorScale.fit({n: torch.from_numpy(data.read(f"descriptors/{n}")) for n in data.descriptor_names()})
    first = [k.descriptor for k in measured.knobs].index("centroid_hz")
    only = SemanticKnobs(space, [measured.knobs[first]])
    (report,) = evaluate_semantic(only, held_out, steps=5, scale=scale)
    assert report["name"] == "dark / bright" and report["descriptor"] == "centroid_hz"
    assert report["rho"]["mean"] > 0.5, report
    assert report["leakage"]["mean"] >= 0 and set(report["per_descriptor_range"]) == set(scale.names)


def test_measured_knob_ends_are_the_reference_presets_extremes(
    measured: SemanticKnobs, space: SoundSpace, dataset_path
) -> None:
    """Knob -1 and +1 sit at the 2nd and 98th percentile of the coordinate over the reference presets
    (not at mean -+ 2 deviations, which a two-humped spread pushes past the presets)."""
    data = DatasetFile(dataset_path)
    coordinate = space.to_latent(torch.from_numpy(data.read("params"))).double() @ torch.tensor(
        measured.knobs[0].direction, dtype=torch.float64
    )
    low, high = torch.quantile(coordinate, torch.tensor(KNOB_RANGE, dtype=torch.float64)).tolist()
    knob = measured.knobs[0]
    assert knob.center - knob.span == pytest.approx(low, abs=1e-4)
    assert knob.center + knob.span == pytest.approx(high, abs=1e-4)
    two_humps = torch.cat([torch.zeros(70), torch.linspace(4.0, 6.0, 30)]).double()
    center, span = _center_span(two_humps)
    assert 0.0 <= center - span and center + span <= 6.0


def test_knob_errors_say_what_is_accepted(measured: SemanticKnobs, reference: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"semantic knob index must be an integer in \[0, 5\]"):
        measured.apply(reference[:1], {9: 0.0})
    with pytest.raises(ValueError, match=r"semantic knob value must be in \[-1, 1\]"):
        measured.apply(reference[:1], {0: -2.0})


def test_knobs_round_trip_through_json(measured: SemanticKnobs, space: SoundSpace) -> None:
    import json

    again = SemanticKnobs.from_dict(space, json.loads(json.dumps(measured.to_dict())))
    assert again.knobs == measured.knobs


@pytest.fixture(scope="module")
def steered(space: SoundSpace, dataset_path) -> SemanticKnobs:
    from flowsynth.control.surrogate import fit_surrogate

    data = DatasetFile(dataset_path)
    params = torch.from_numpy(data.read("params", "train"))
    descriptors = {n: torch.from_numpy(data.read(f"descriptors/{n}", "train")) for n in data.descriptor_names()}
    surrogate = fit_surrogate(params, descriptors, steps=300)
    return fit_semantic_knobs(space, space.to_latent(params), descriptors, "steered", surrogate)


def test_auto_knobs_are_validated_when_there_is_a_surrogate(
    steered: SemanticKnobs, measured: SemanticKnobs, space: SoundSpace, dataset_path
) -> None:
    assert all(k.kind == "measured" for k in measured.knobs), "no surrogate: measured knobs"
    data = DatasetFile(dataset_path)
    params = torch.from_numpy(data.read("params", "train"))
    descriptors = {n: torch.from_numpy(data.read(f"descriptors/{n}", "train")) for n in data.descriptor_names()}
    chosen = fit_semantic_knobs(space, space.to_latent(params), descriptors, surrogate=steered.surrogate, validation=4)
    assert [s["name"] for s in chosen.selection] == [k.name for k in chosen.knobs] == [k.name for k in steered.knobs]
    for knob, selection in zip(chosen.knobs, chosen.selection, strict=True):
        rho = selection["validation_rho"]
        assert set(rho) == {"measured", "steered", "guided"}
        assert knob.kind == selection["chosen"] == max(rho, key=rho.get)  # the first of equals
        if knob.kind != "measured":
            twin = steered.knobs[[k.name for k in steered.knobs].index(knob.name)]
            assert (knob.index, knob.center, knob.span, knob.sign) == (twin.index, twin.center, twin.span, twin.sign)


def test_guided_knobs_move_along_the_measured_direction_then_steer(
    steered: SemanticKnobs, measured: SemanticKnobs, space: SoundSpace, reference: torch.Tensor
) -> None:
    guided = SemanticKnobs(space, _guided_knobs(measured.knobs, steered.knobs), steered.surrogate)
    assert [k.name for k in guided.knobs] == [k.name for k in steered.knobs] and all(
        k.kind == "guided" for k in guided.knobs
    )
    loud = [k.descriptor for k in guided.knobs].index("loudness_db")
    knob, guide = guided.knobs[loud], measured.knobs[loud]
    assert knob.direction == guide.direction and (knob.guide_center, knob.guide_span) == (guide.center, guide.span)
    z = reference[:6]
    # the guide move alone is the measured knob's move; the steps that follow reach the asked value
    only_guide = SemanticKnobs(space, [guide]).apply(z, {0: 0.5})
    moved = guided.apply(z, {loud: 0.5})
    assert not torch.allclose(moved, only_guide)
    start = guided.values(only_guide)[:, loud]
    found = guided.values(moved)[:, loud]
    assert bool(((found - 0.5).abs() <= (start - 0.5).abs() + 1e-4).all()), (start, found)
    assert float((found - 0.5).abs().median()) < 0.05, found


def test_steered_knobs_follow_the_surrogate(steered: SemanticKnobs) -> None:
    assert [(k.low, k.high) for k in steered.knobs] == list(DESCRIPTOR_TAGS)
    assert all(k.kind == "steered" for k in steered.knobs)
    percussive = next(k for k in steered.knobs if k.descriptor == "percussiveness")
    assert percussive.sign == -1.0 and steered.surrogate.names[percussive.index] == "effective_duration_s"


def test_steered_knobs_reach_the_descriptor_they_ask_for(steered: SemanticKnobs, reference: torch.Tensor) -> None:
    z = reference[:6]
    loud = [k.descriptor for k in steered.knobs].index("loudness_db")
    reached = torch.stack([steered.values(steered.apply(z, {loud: v}))[:, loud] for v in (-0.5, 0.0, 0.5)])
    # every sound moves towards the asked value, and ends nearer to it than it started
    start = steered.values(z)[:, loud]
    assert torch.allclose(steered.values(z, steered.space.to_params(z)), steered.values(z), atol=1e-5)
    for asked, found in zip((-0.5, 0.0, 0.5), reached, strict=True):
        assert bool(((found - asked).abs() <= (start - asked).abs() + 1e-4).all()), (asked, start, found)
    assert bool((reached[2] > reached[0]).all()), reached
    assert float((reached[1] - 0.0).abs().median()) < 0.05, reached


def test_steered_knobs_need_their_surrogate(steered: SemanticKnobs, space: SoundSpace) -> None:
    import json

    data = json.loads(json.dumps(steered.to_dict()))
    with pytest.raises(ValueError, match="need their surrogate's weights"):
        SemanticKnobs.from_dict(space, data)
    with pytest.raises(ValueError, match="steered and guided knobs need their descriptor surrogate"):
        SemanticKnobs(space, steered.knobs)
    again = SemanticKnobs.from_dict(space, data, steered.surrogate.state_dict())
    assert again.knobs == steered.knobs
    z = torch.zeros(2, space.latent_size)
    assert torch.allclose(again.apply(z, {0: 0.3}), steered.apply(z, {0: 0.3}))


def test_validated_knobs_of_a_flow_dis_model_weigh_its_own_knobs_too(
    steered: SemanticKnobs, dis_space: SoundSpace, dataset_path
) -> None:
    data = DatasetFile(dataset_path)
    params = torch.from_numpy(data.read("params", "train"))
    descriptors = {n: torch.from_numpy(data.read(f"descriptors/{n}", "train")) for n in data.descriptor_names()}
    z = dis_space.to_latent(params)
    own = fit_semantic_knobs(dis_space, z, descriptors, surrogate=steered.surrogate)
    assert [k.kind for k in own.knobs] == ["flow_dis", "flow_dis"], "auto stays the model's own knobs"
    chosen = fit_semantic_knobs(dis_space, z, descriptors, "validated", steered.surrogate, validation=4)
    assert [k.name for k in chosen.knobs] == [f"{low} / {high}" for low, high in DESCRIPTOR_TAGS]
    first = chosen.selection[0]
    assert set(first["validation_rho"]) == {"measured", "steered", "guided", "flow_dis"}
    assert first["chosen"] == max(first["validation_rho"], key=first["validation_rho"].get)
