"""Every model answers the same questions: shapes, deterministic inference, gradients, latent maps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from flowsynth.features.norm import FeatureNorm
from flowsynth.models import LatentModel, LossWeights, ParamModel, available_models, build_model
from flowsynth.models.distributions import PointMass

NUM_PARAMS, BATCH = 6, 4
NINE = ["mlp", "cnn", "resnet", "ae", "vae", "wae", "vae_flow", "flow_reg", "flow_dis"]
SMALL_CONV = {"channels": (4, 4, 8, 8), "hidden": 16}
SMALL: dict[str, dict] = {
    "mlp": {"hidden": (32, 32)},
    "cnn": SMALL_CONV,
    "resnet": SMALL_CONV,
    **{name: {**SMALL_CONV, "reg_hidden": (16,)} for name in ("ae", "vae", "wae")},
    "vae_flow": {**SMALL_CONV, "reg_hidden": (16,), "flow_transforms": 2, "flow_hidden": (16,)},
    "flow_reg": {
        **SMALL_CONV,
        "flow_transforms": 2,
        "flow_hidden": (16,),
        "reg_transforms": 2,
        "reg_flow_hidden": (16,),
    },
    "flow_dis": {
        **SMALL_CONV,
        "flow_transforms": 2,
        "flow_hidden": (16,),
        "reg_transforms": 2,
        "reg_flow_hidden": (16,),
        "pairs": [["dark", "bright"], ["tonal", "noisy"]],
        "dis_hidden": (16,),
    },
}
INVERTIBLE = ("flow_reg", "flow_dis")


def small_model(name: str, seed: int = 0) -> ParamModel:
    torch.manual_seed(seed)
    return build_model(name, NUM_PARAMS, **SMALL[name])


def features(seed: int = 0, batch: int = BATCH) -> torch.Tensor:
    """Raw log-mel-like values (natural log of a mel power: about -7 to 3)."""
    return torch.randn(batch, 64, 80, generator=torch.Generator().manual_seed(seed)) * 2.0 - 3.0


def tags_for(model: ParamModel) -> torch.Tensor | None:
    if model.name != "flow_dis":
        return None
    return torch.tensor([[1, 0], [-1, 1], [0, 0], [0, -1]])


def test_registry_holds_the_nine_models() -> None:
    """Guard: the parametrized tests below cannot pass on an empty registry."""
    assert available_models() == NINE
    assert set(SMALL) == set(NINE)


@pytest.mark.parametrize("name", NINE)
def test_shapes(name: str) -> None:
    model = small_model(name)
    x = features()
    assert model.infer(x).shape == (BATCH, NUM_PARAMS)
    samples = model(x).sample((3,))
    assert samples.shape == (3, BATCH, NUM_PARAMS)
    assert ((samples >= 0) & (samples <= 1)).all()


@pytest.mark.parametrize("name", NINE)
def test_infer_is_deterministic_in_range_and_draws_no_random_number(name: str) -> None:
    model = small_model(name)
    model.train()
    x = features()
    state = torch.get_rng_state()
    first, second = model.infer(x), model.infer(x)
    assert torch.equal(torch.get_rng_state(), state), "infer must use the posterior mean, never a sample"
    assert torch.equal(first, second)
    assert ((first >= 0) & (first <= 1)).all()
    assert model.training, "infer must restore the training mode"
    assert torch.allclose(model.infer(x[:1]), first[:1], atol=1e-5), "eval mode: one sound as in a batch"


@pytest.mark.parametrize("name", NINE)
def test_loss_reaches_every_parameter(name: str) -> None:
    """All weights get a gradient (data-parallel training needs it) and the loss is finite."""
    model = small_model(name)
    params = torch.rand(BATCH, NUM_PARAMS, generator=torch.Generator().manual_seed(2))
    out = model.loss(features(), params, LossWeights(beta=0.5, gamma=1.0), tags_for(model))
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    missing = [key for key, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


@pytest.mark.parametrize("name", NINE)
def test_features_are_normalized_inside(name: str) -> None:
    model = small_model(name).eval()
    x = features()
    reference = model.infer((x + 3.0) / 2.0)
    model.set_feature_norm(FeatureNorm(-3.0, 2.0))
    assert torch.allclose(model.infer(x), reference, atol=1e-6)
    assert model.feature_norm.state_dict() == {"mean": -3.0, "std": 2.0}


@pytest.mark.parametrize("name", NINE)
def test_wrong_input_shape_is_explained(name: str) -> None:
    model = small_model(name)
    with pytest.raises(ValueError, match=r"features must have shape \[batch, 64, 80\] \(log-mel\), got \[64, 80\]"):
        model.infer(torch.zeros(64, 80))


@pytest.mark.parametrize("name", [n for n in NINE if n in ("ae", "vae", "wae", "vae_flow", "flow_reg", "flow_dis")])
def test_latent_interface(name: str) -> None:
    model = small_model(name).eval()
    assert isinstance(model, LatentModel)
    x = features()
    z = model.latent_mean(x)
    assert z.shape == (BATCH, model.latent_size)
    assert torch.allclose(model.latent_to_params(z), model.infer(x))
    assert model.encode(x).sample().shape == (BATCH, model.latent_size)
    assert model.decode(z).shape == (BATCH, 64, 80)


@pytest.mark.parametrize("name", INVERTIBLE)
def test_params_to_latent_is_the_exact_inverse(name: str) -> None:
    model = small_model(name).eval()
    assert model.latent_size == NUM_PARAMS
    params = torch.rand(BATCH, NUM_PARAMS, generator=torch.Generator().manual_seed(3)) * 0.98 + 0.01
    with torch.no_grad():
        assert torch.allclose(model.latent_to_params(model.params_to_latent(params)), params, atol=1e-5)
        z = torch.randn(BATCH, NUM_PARAMS)
        assert torch.allclose(model.params_to_latent(model.latent_to_params(z)), z, atol=1e-3)


@pytest.mark.parametrize("name", ["ae", "vae_flow"])
def test_params_to_latent_searches_the_latent(name: str) -> None:
    model = small_model(name).eval()
    with torch.no_grad():
        reachable = model.latent_to_params(torch.randn(BATCH, model.latent_size))
        start = (model.latent_to_params(torch.zeros(BATCH, model.latent_size)) - reachable).abs().mean()
    found = model.latent_to_params(model.params_to_latent(reachable))
    assert (found - reachable).abs().mean() < 0.5 * start


@pytest.mark.parametrize("name", INVERTIBLE)
def test_flow_posterior_has_a_density(name: str) -> None:
    model = small_model(name).eval()
    posterior = model.posterior(features())
    samples = posterior.rsample()
    assert samples.shape == (BATCH, NUM_PARAMS)
    assert torch.isfinite(posterior.log_prob(samples)).all()


@pytest.mark.parametrize("name", INVERTIBLE)
def test_inverse_term_is_the_parameters_negative_log_likelihood(name: str) -> None:
    model = small_model(name).eval()
    params = torch.rand(2, NUM_PARAMS, generator=torch.Generator().manual_seed(4)) * 0.9 + 0.05
    center = torch.randn(2, NUM_PARAMS, generator=torch.Generator().manual_seed(5))
    nll = model.inverse_nll(center, params)
    for row in range(2):
        z = model.params_to_latent(params[row : row + 1])[0]
        jacobian = torch.autograd.functional.jacobian(lambda v: model.latent_to_params(v[None])[0], z)
        expected = 0.5 * (z - center[row]).square().sum() + torch.linalg.slogdet(jacobian)[1]
        assert torch.allclose(nll[row], expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name", INVERTIBLE)
def test_inverse_term_trains_the_regression_flow_backwards(name: str) -> None:
    model = small_model(name)
    params = torch.rand(BATCH, NUM_PARAMS, generator=torch.Generator().manual_seed(6))
    out = model.loss(features(), params, LossWeights(), tags_for(model))
    assert out["inverse"] > 0 or out["inverse"] < 0
    out["inverse"].backward()
    flow_grads = [p.grad for p in model.regression_flow.parameters() if p.grad is not None]
    assert flow_grads and any(bool(g.abs().sum() > 0) for g in flow_grads)
    encoder_grads = [p.grad for p in model.to_mean.parameters()]
    assert all(g is not None and bool(g.abs().sum() > 0) for g in encoder_grads)
    off = build_model(name, NUM_PARAMS, **SMALL[name], inverse_weight=0.0)
    assert "inverse" not in off.loss(features(), params, LossWeights(), tags_for(off))


def test_deterministic_models_have_a_point_mass_posterior() -> None:
    model = small_model("cnn").eval()
    posterior = model(features())
    assert isinstance(posterior, PointMass)
    assert torch.equal(posterior.mean, model.infer(features()))


def test_disentangling_loss_uses_only_tagged_sounds() -> None:
    model = small_model("flow_dis")
    z = torch.randn(BATCH, NUM_PARAMS)
    tags = torch.tensor([[1, 0], [0, 0], [0, 0], [0, 0]])
    only_first = model.disentangling_loss(z[:1], tags[:1])
    assert torch.allclose(model.disentangling_loss(z, tags), only_first)
    with pytest.raises(ValueError, match=r"tags must be \[batch, 2\]"):
        model.loss(features(), torch.rand(BATCH, NUM_PARAMS), LossWeights(), torch.zeros(BATCH, 3))


def test_disentangling_learns_where_presets_are_placed_too() -> None:
    """The disentangling term averages the encoder's latents and the presets' (exact inverse) latents."""
    model = small_model("flow_dis").eval()
    params = torch.rand(BATCH, NUM_PARAMS)
    tags = torch.tensor([[1, -1], [0, 1], [-1, 0], [0, 0]])
    center = torch.randn(BATCH, NUM_PARAMS)
    both = model._extra_loss(center, params, tags, LossWeights())["dis"]
    expected = 0.5 * (
        model.disentangling_loss(center, tags) + model.disentangling_loss(model.params_to_latent(params), tags)
    )
    assert torch.allclose(both, expected)
    model.inverse_weight = 0.0  # without the inverse term the presets' latents are found all the same
    assert torch.allclose(model._extra_loss(center, params, tags, LossWeights())["dis"], expected)
    model.dis_on_presets = False
    assert torch.allclose(
        model._extra_loss(center, params, tags, LossWeights())["dis"], model.disentangling_loss(center, tags)
    )
    assert not torch.allclose(both, model.disentangling_loss(center, tags))
    assert "dis_on_presets" in model.config


def test_no_dropout_stands_in_for_an_activation() -> None:
    """Every dropout layer follows an activation (the original code replaced activations by dropout)."""
    for name in NINE:
        for module in small_model(name).modules():
            if not isinstance(module, nn.Sequential):
                continue
            layers = list(module)
            for i, layer in enumerate(layers):
                if isinstance(layer, nn.Dropout):
                    assert i > 0 and isinstance(layers[i - 1], nn.LeakyReLU), f"{name}: {module}"


def test_bad_names_and_arguments_are_explained() -> None:
    with pytest.raises(ValueError, match="unknown model 'gan'; known: mlp, cnn"):
        build_model("gan", 8)
    with pytest.raises(ValueError, match="bad arguments for model 'cnn'"):
        build_model("cnn", 8, width=3)
    with pytest.raises(ValueError, match="latent size is the number of parameters"):
        build_model("flow_reg", 8, latent_size=4)
    with pytest.raises(ValueError, match="num_params must be at least 2"):
        build_model("mlp", 1)
