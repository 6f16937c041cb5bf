"""The built-in architectures ``dcgan`` and ``mlp``: shapes, ranges, sizes, options, init, registration, training."""

from __future__ import annotations

import inspect
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

import gantk
from gantk.factories import call_factory
from gantk.plugins.architectures.dcgan import (
    build_dcgan_discriminator, build_dcgan_generator, hidden_widths, plan_side,
)
from gantk.plugins.architectures.mlp import build_mlp_discriminator, build_mlp_generator, dropout_rates
from gantk.protocols import DataSpec, DiscriminatorOutput

SIZES = [8, 16, 28, 32, 64]
CHANNELS = [1, 3]
NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def image(channels: int, side: int, name: str = "") -> DataSpec:
    return DataSpec((channels, side, side), name=name)


def of_type(module: nn.Module, kind: type | tuple[type, ...]) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, kind)]


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv_params(c_in: int, c_out: int, k: int, bias: bool) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


def bn_params(c: int) -> int:
    return 2 * c  # γ and β


@pytest.fixture(scope="module")
def classic_64():
    """The paper's 64×64 RGB networks (width 64), built once."""
    torch.manual_seed(0)
    spec = image(3, 64)
    return build_dcgan_generator(spec), build_dcgan_discriminator(spec)


# ----------------------------------------------------------------------------- dcgan: sizes and shapes
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("side", SIZES + [12, 56])
def test_dcgan_generator_shape_and_tanh_range(side, channels):
    torch.manual_seed(side)
    generator = build_dcgan_generator(image(channels, side), z_dim=16, width=8)
    out = generator(torch.randn(3, 16))
    assert out.shape == (3, channels, side, side) and generator.z_dim == 16
    assert out.abs().max() <= 1.0
    # blow up the output layer: a tanh saturates at ±1 but never passes it
    output_conv = of_type(generator, nn.ConvTranspose2d)[-1]
    with torch.no_grad():
        output_conv.weight.mul_(1000.0)
    saturated = generator(torch.randn(3, 16))
    assert saturated.abs().max() <= 1.0 and saturated.abs().max() > 0.99


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("side", SIZES + [12, 56])
def test_dcgan_discriminator_logits_and_features(side, channels):
    torch.manual_seed(side)
    spec = image(channels, side)
    discriminator = build_dcgan_discriminator(spec, width=8)
    captured = {}
    discriminator.head.register_forward_hook(lambda module, inputs, output: captured.update(head_in=inputs[0]))
    out = discriminator(torch.rand(4, *spec.shape) * 2 - 1)
    assert isinstance(out, DiscriminatorOutput)
    assert out.logits.shape == (4,)
    assert out.features.shape == (4, discriminator.feature_dim)
    # features are the flattened input of the last conv
    torch.testing.assert_close(out.features, captured["head_in"].flatten(1))
    assert not of_type(discriminator, (nn.Sigmoid, nn.Softmax, nn.LogSigmoid))
    with torch.no_grad():
        discriminator.head.bias.fill_(5.0)  # raw logits: nothing squashes them into [0, 1]
    assert (discriminator(torch.zeros(2, *spec.shape)).logits > 1.0).all()


@pytest.mark.parametrize("side, width, feature_dim", [(64, 64, 512 * 4 * 4), (28, 64, 128 * 7 * 7),
                                                      (32, 64, 256 * 4 * 4), (8, 16, 16 * 4 * 4)])
def test_dcgan_feature_dim_is_the_last_hidden_map(side, width, feature_dim):
    assert build_dcgan_discriminator(image(1, side), width=width).feature_dim == feature_dim


@pytest.mark.parametrize("side, widths", [
    (8, [64]), (16, [128, 64]), (28, [128, 64]), (32, [256, 128, 64]), (64, [512, 256, 128, 64]),
    (128, [512, 512, 256, 128, 64]),  # capped at 8·width
])
def test_dcgan_widths_double_per_halving_up_to_eight_times_width(side, widths):
    base, doublings = plan_side(side)
    assert hidden_widths(64, doublings) == widths
    spec = image(3, side)
    g_convs = of_type(build_dcgan_generator(spec), nn.ConvTranspose2d)
    assert [c.out_channels for c in g_convs] == widths + [3]
    assert g_convs[0].kernel_size == (base, base)
    d_convs = of_type(build_dcgan_discriminator(spec), nn.Conv2d)
    assert [c.out_channels for c in d_convs] == widths[::-1] + [1]
    assert d_convs[-1].kernel_size == (base, base)


def test_buildable_sides_are_four_to_seven_times_a_power_of_two():
    assert [s for s in range(1, 130) if plan_side(s)] == [8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64,
                                                          80, 96, 112, 128]
    assert plan_side(28) == (7, 2) and plan_side(64) == (4, 4) and plan_side(1024) == (4, 8)


@pytest.mark.parametrize("build, flag", [(build_dcgan_generator, "--gen mlp"),
                                         (build_dcgan_discriminator, "--disc mlp")])
def test_dcgan_unbuildable_size_names_what_it_supports(build, flag):
    with pytest.raises(gantk.UsageError) as error:
        build(image(3, 30, name="faces"))
    message = str(error.value)
    assert error.value.exit_code == 2
    assert "8, 16, 32, 64" in message and "28×28" in message
    assert "got 3×30×30 from the data set 'faces'" in message
    assert "--image-size 32 (or 28)" in message and flag in message
    assert "\n" not in message  # one paragraph


@pytest.mark.parametrize("build", [build_dcgan_generator, build_dcgan_discriminator])
def test_dcgan_refuses_non_square_tiny_and_vector_data(build):
    with pytest.raises(gantk.UsageError, match=r"square images.*got 1×32×16.*--image-size 32\b"):
        build(DataSpec((1, 32, 16)))
    with pytest.raises(gantk.UsageError, match=r"got 1×4×4.*--image-size 8\b"):
        build(image(1, 4))
    with pytest.raises(gantk.UsageError, match=r"builds images, but got vectors of shape \(2,\).*mlp"):
        build(DataSpec((2,), name="ring8"))


@pytest.mark.parametrize("build, options, expected", [
    (build_dcgan_generator, {"width": 0}, "'width' must be a positive integer"),
    (build_dcgan_generator, {"z_dim": 2.5}, "'z_dim' must be a positive integer"),
    (build_dcgan_discriminator, {"norm": "group"}, "one of batch, none, layer, instance"),
    (build_dcgan_discriminator, {"sn": "maybe"}, "'sn' must be true or false"),
    (build_dcgan_discriminator, {"spectral_norm": "maybe"}, "'spectral_norm' must be true or false"),
])
def test_dcgan_bad_option_values_are_usage_errors(build, options, expected):
    with pytest.raises(gantk.UsageError, match=expected):
        build(image(1, 16), **options)


def test_unknown_option_is_caught_by_the_engine_thanks_to_explicit_keywords():
    with pytest.raises(gantk.UsageError, match=r"no option 'widht'.*width=64"):
        call_factory("generator", "dcgan", build_dcgan_generator, image(1, 16), widht=8)


# ----------------------------------------------------------------------------- dcgan: init, norms, counts
def test_dcgan_weight_init_statistics(classic_64):
    for network in classic_64:
        weights = torch.cat([m.weight.detach().flatten() for m in of_type(network, (nn.Conv2d, nn.ConvTranspose2d))])
        assert abs(weights.mean().item()) < 1e-3
        assert weights.std().item() == pytest.approx(0.02, rel=0.02)
        biases = [m.bias for m in of_type(network, (nn.Conv2d, nn.ConvTranspose2d)) if m.bias is not None]
        assert biases and all((b == 0).all() for b in biases)
        norms = of_type(network, nn.BatchNorm2d)
        gamma = torch.cat([m.weight.detach() for m in norms])
        assert gamma.mean().item() == pytest.approx(1.0, abs=0.003)
        assert gamma.std().item() == pytest.approx(0.02, rel=0.15)
        assert all((m.bias == 0).all() for m in norms)


def test_dcgan_discriminator_norm_choices():
    spec = image(3, 32)
    batch = build_dcgan_discriminator(spec)
    assert len(of_type(batch, nn.BatchNorm2d)) == 2  # every stride-2 conv but the first
    none = build_dcgan_discriminator(spec, norm="none")
    assert not of_type(none, NORM_TYPES)
    assert all(conv.bias is not None for conv in of_type(none, nn.Conv2d))  # no norm shift to replace them
    layer = of_type(build_dcgan_discriminator(spec, norm="layer"), NORM_TYPES)
    assert len(layer) == 2 and all(isinstance(m, nn.GroupNorm) and m.num_groups == 1 for m in layer)
    instance = of_type(build_dcgan_discriminator(spec, norm="INSTANCE"), NORM_TYPES)
    assert len(instance) == 2 and all(isinstance(m, nn.InstanceNorm2d) and m.affine for m in instance)


@pytest.mark.parametrize("norm, per_sample", [("none", True), ("layer", True), ("batch", False)])
def test_per_sample_critic_scores_do_not_depend_on_the_batch(norm, per_sample):
    torch.manual_seed(0)
    critic = build_dcgan_discriminator(image(1, 16), width=8, norm=norm).train()
    x = torch.randn(6, 1, 16, 16)
    alone = critic(x[:1]).logits if norm != "batch" else critic(x[:2]).logits[:1]
    together = critic(x).logits[:1]
    assert torch.allclose(alone, together, atol=1e-5) == per_sample  # BatchNorm mixes samples (no GP with it)


def test_dcgan_spectral_norm_wraps_every_conv_with_unit_spectral_norm():
    torch.manual_seed(0)
    discriminator = build_dcgan_discriminator(image(3, 32), width=8, norm="none", sn=True)
    convs = of_type(discriminator, nn.Conv2d)
    assert len(convs) == 4 and all(parametrize.is_parametrized(c, "weight") for c in convs)
    discriminator.train()
    for _ in range(10):  # power iterations run on each training forward pass
        discriminator(torch.randn(2, 3, 32, 32))
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)
        assert conv.parametrizations.weight.original.std().item() == pytest.approx(0.02, rel=0.25)


def builtin_discriminators() -> list[str]:
    return [entry.name for entry in gantk.get_registry().list("discriminator") if entry.source.package == "gantk"]


def spectral_norms_after_training_passes(discriminator: nn.Module, spec: DataSpec, scale: float) -> list[float]:
    """σ(W) of every conv/linear weight the layers use, after their stored weights are multiplied by ``scale`` and
    ten forward passes in training mode (one power iteration each under spectral norm)."""
    layers = of_type(discriminator, (nn.Conv2d, nn.Linear))
    with torch.no_grad():
        for layer in layers:
            stored = layer.parametrizations.weight.original if parametrize.is_parametrized(layer) else layer.weight
            stored.mul_(scale)
    discriminator.train()
    for _ in range(10):
        discriminator(torch.rand(4, *spec.shape) * 2 - 1, torch.arange(4))
    return [torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2).item() for layer in layers]


@pytest.mark.parametrize("name", builtin_discriminators())
def test_every_builtin_discriminator_takes_sn_and_it_makes_every_layer_1_lipschitz(name):
    """sn=true: W / σ(W) for every conv/linear weight, σ from the power iteration (one step per training forward
    pass), so σ ≈ 1 whatever the stored weights' scale; sn=false leaves the weights as they are."""
    side = 128 if name == "fastgan" else 32  # fastgan builds 128, 256, 512 and 1024 px
    registry, spec = gantk.get_registry(), DataSpec((3, side, side), 4, "pictures")
    assert "sn" in inspect.signature(registry.get("discriminator", name).factory).parameters, \
        f"the discriminator '{name}' has no sn option"
    torch.manual_seed(0)
    normalised = registry.create("discriminator", name, spec, sn=True)
    layers = of_type(normalised, (nn.Conv2d, nn.Linear))
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert normalised.options["sn"] is True
    for sigma in spectral_norms_after_training_passes(normalised, spec, scale=3.0):
        assert sigma == pytest.approx(1.0, abs=0.05)  # σ(W / σ(W)) = 1; the estimate converges from above
    torch.manual_seed(0)
    plain = registry.create("discriminator", name, spec, sn=False)
    assert not any(parametrize.is_parametrized(m) for m in plain.modules()) and plain.options["sn"] is False
    before = [torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item()
              for m in of_type(plain, (nn.Conv2d, nn.Linear))]
    after = spectral_norms_after_training_passes(plain, spec, scale=3.0)
    assert after == pytest.approx([3.0 * sigma for sigma in before], rel=1e-4)


@pytest.mark.parametrize("build, spec", [(build_dcgan_discriminator, image(3, 16)),
                                         (build_mlp_discriminator, DataSpec((2,)))])
def test_spectral_norm_is_still_read_as_the_older_name_of_sn(build, spec):
    older = build(spec, spectral_norm=True)  # what config.json of a run made before `sn` records
    assert older.options["sn"] is True and "spectral_norm" not in older.options
    build(spec, sn=True).load_state_dict(older.state_dict())  # a checkpoint of such a run loads: same tensors
    assert build(spec, spectral_norm=False).options["sn"] is False
    assert build(spec, sn=True, spectral_norm=True).options["sn"] is True
    with pytest.raises(gantk.UsageError, match="spectral_norm is the older name of sn"):
        build(spec, sn=True, spectral_norm=False)


def test_mnist_dcgan_parameter_counts_match_the_tutorial_shapes():
    spec = image(1, 28)
    generator, discriminator = build_dcgan_generator(spec), build_dcgan_discriminator(spec)
    # G: ConvT(100,128,7,1,0) -> 7×7, BN, ConvT(128,64,4,2,1) -> 14, BN, ConvT(64,1,4,2,1) -> 28 (+ bias), tanh
    assert count(generator) == (conv_params(100, 128, 7, False) + bn_params(128) + conv_params(128, 64, 4, False)
                                + bn_params(64) + conv_params(64, 1, 4, True))
    # D: Conv(1,64,4,2,1) (+ bias) -> 14, Conv(64,128,4,2,1) -> 7, BN, Conv(128,1,7,1,0) (+ bias)
    assert count(discriminator) == (conv_params(1, 64, 4, True) + conv_params(64, 128, 4, False) + bn_params(128)
                                    + conv_params(128, 1, 7, True))
    assert [m.kernel_size for m in of_type(generator, nn.ConvTranspose2d)] == [(7, 7), (4, 4), (4, 4)]


def test_classic_64x64_parameter_counts(classic_64):
    generator, discriminator = classic_64
    # PyTorch's DCGAN example has 3,576,704 and 2,765,568 parameters with no bias anywhere; ours adds a bias
    # to G's output conv (3) and to D's first conv (64) and output conv (1)
    assert count(generator) == 3_576_704 + 3
    assert count(discriminator) == 2_765_568 + 64 + 1


# ----------------------------------------------------------------------------- mlp
def linear_shapes(module: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in of_type(module, nn.Linear)]


def test_mlp_vector_defaults_are_the_toy_gan():
    spec = DataSpec((1,), name="normal1d")
    generator, discriminator = build_mlp_generator(spec), build_mlp_discriminator(spec)
    assert generator.z_dim == 10 and linear_shapes(generator) == [(10, 50), (50, 50), (50, 1)]
    assert linear_shapes(discriminator) == [(1, 50), (50, 50), (50, 1)]
    for network in (generator, discriminator):
        assert len(of_type(network, nn.ReLU)) == 2
        assert not of_type(network, (nn.Tanh, nn.Sigmoid, nn.BatchNorm1d, nn.Dropout, nn.LeakyReLU))


def test_mlp_on_2d_vectors_outputs_unbounded_samples_and_logits():
    torch.manual_seed(0)
    spec = DataSpec((2,), name="ring8")
    generator, discriminator = build_mlp_generator(spec), build_mlp_discriminator(spec)
    with torch.no_grad():
        of_type(generator, nn.Linear)[-1].bias.fill_(3.0)  # a linear output reaches data far outside [-1, 1]
    samples = generator(torch.randn(5, 10))
    assert samples.shape == (5, 2) and (samples > 1.0).all()
    out = discriminator(samples)
    assert out.logits.shape == (5,) and out.features.shape == (5, 50) and discriminator.feature_dim == 50


def test_mlp_image_defaults_are_the_cgan_tutorial():
    torch.manual_seed(0)
    spec = image(1, 28)
    generator, discriminator = build_mlp_generator(spec), build_mlp_discriminator(spec)
    assert generator.z_dim == 100
    assert linear_shapes(generator) == [(100, 128), (128, 256), (256, 512), (512, 1024), (1024, 784)]
    norms = of_type(generator, nn.BatchNorm1d)
    assert [m.num_features for m in norms] == [256, 512, 1024]  # every hidden layer but the first
    assert all(m.eps == 1e-5 and m.momentum == 0.1 for m in norms)  # not the tutorial's eps=0.8
    assert all(m.negative_slope == 0.2 for m in of_type(generator, nn.LeakyReLU))
    samples = generator(torch.randn(4, 100))
    assert samples.shape == (4, 1, 28, 28) and samples.abs().max() <= 1.0
    assert isinstance(list(generator.net)[-2], nn.Tanh)

    assert linear_shapes(discriminator) == [(784, 512), (512, 512), (512, 512), (512, 1)]
    body = list(discriminator.body)
    dropouts = [i for i, m in enumerate(body) if isinstance(m, nn.Dropout)]
    assert [body[i].p for i in dropouts] == [0.4, 0.4]
    linears = [i for i, m in enumerate(body) if isinstance(m, nn.Linear)]
    assert linears[1] < dropouts[0] < linears[2] < dropouts[1]  # after the 2nd and 3rd hidden layers
    out = discriminator(samples)
    assert out.logits.shape == (4,) and out.features.shape == (4, 512)
    assert not torch.equal(discriminator(samples).logits, discriminator(samples).logits)  # dropout in training
    discriminator.eval()
    torch.testing.assert_close(discriminator(samples).logits, discriminator(samples).logits)


@pytest.mark.parametrize("value, expected", [
    ("128,256", [128, 256]), ("64", [64]), (32, [32]), ((16, 8), [16, 8]), ([4, 4, 4], [4, 4, 4]),
])
def test_mlp_hidden_parsing(value, expected):
    spec = DataSpec((3,))
    generator = build_mlp_generator(spec, hidden=value)
    assert generator.options["hidden"] == expected
    assert [shape[1] for shape in linear_shapes(generator)] == expected + [3]
    assert build_mlp_discriminator(spec, hidden=value).feature_dim == expected[-1]


@pytest.mark.parametrize("value", ["a,b", 0, "", (), "1.5", True])
def test_mlp_bad_hidden_is_a_usage_error(value):
    with pytest.raises(gantk.UsageError, match="'hidden' must be one or more positive integers"):
        build_mlp_generator(DataSpec((3,)), hidden=value)


def test_mlp_dropout_parsing():
    assert dropout_rates(0.3, 3) == [0.0, 0.3, 0.3]
    assert dropout_rates("0.3", 2) == [0.0, 0.3]
    assert dropout_rates("0.1,0.2", 2) == [0.1, 0.2]
    assert dropout_rates([0.5], 1) == [0.5]
    for bad, layers in [(1.0, 2), ("0.1,0.2", 3), ("x", 2), (-0.1, 2)]:
        with pytest.raises(gantk.UsageError, match="'dropout' must be a rate in"):
            dropout_rates(bad, layers)
    discriminator = build_mlp_discriminator(DataSpec((2,)), hidden=(8, 8), dropout="0.25,0.5")
    assert [m.p for m in of_type(discriminator, nn.Dropout)] == [0.25, 0.5]


def test_mlp_options_activation_and_batchnorm_switch():
    spec = image(1, 8)
    generator = build_mlp_generator(spec, hidden=(16, 16), activation="relu", batchnorm=False)
    assert not of_type(generator, (nn.BatchNorm1d, nn.LeakyReLU)) and len(of_type(generator, nn.ReLU)) == 2
    with pytest.raises(gantk.UsageError, match="'activation' must be one of relu, lrelu, maxout"):
        build_mlp_discriminator(spec, activation="gelu")
    spectral = build_mlp_discriminator(spec, hidden=(16,), sn=True)
    assert all(parametrize.is_parametrized(m, "weight") for m in of_type(spectral, nn.Linear))


def test_mlp_maxout_unit_is_the_max_of_its_pieces():
    discriminator = build_mlp_discriminator(DataSpec((2,)), hidden=(3,), activation="maxout", maxout_pieces=4,
                                            dropout=0)
    linear = of_type(discriminator, nn.Linear)[0]
    assert linear.out_features == 12  # 3 units × 4 pieces
    x = torch.randn(7, 2)
    pieces = (x @ linear.weight.T + linear.bias).reshape(7, 3, 4)  # unit i owns outputs 4i .. 4i+3
    torch.testing.assert_close(discriminator(x).features, pieces.max(dim=2).values)
    with pytest.raises(gantk.UsageError, match="maxout_pieces"):
        build_mlp_discriminator(DataSpec((2,)), activation="maxout", maxout_pieces=1)


def test_mlp_batchnorm_all_and_normal_init_build_pacgans_2d_networks():
    torch.manual_seed(0)
    generator = build_mlp_generator(DataSpec((2,)), z_dim=2, hidden=(400,) * 4, batchnorm="all", init="normal")
    assert len(of_type(generator, nn.BatchNorm1d)) == 4  # true leaves out the first layer's
    assert len(of_type(build_mlp_generator(DataSpec((2,)), hidden=(8,) * 4, batchnorm=True), nn.BatchNorm1d)) == 3
    weights = torch.cat([m.weight.detach().flatten() for m in of_type(generator, nn.Linear)])
    assert abs(float(weights.mean())) < 0.002 and 0.019 < float(weights.std()) < 0.021  # N(0, 0.02)
    assert not of_type(generator, nn.Linear)[-1].bias.any()  # biases 0
    with pytest.raises(gantk.UsageError, match="'batchnorm' must be true .*, all or false"):
        build_mlp_generator(DataSpec((2,)), batchnorm="some")
    with pytest.raises(gantk.UsageError, match="'init' must be one of default, normal"):
        build_mlp_discriminator(DataSpec((2,)), init="xavier")


# ----------------------------------------------------------------------------- common to both
BUILDS = [
    (build_dcgan_generator, image(3, 16), {"z_dim": 8, "width": 4}),
    (build_dcgan_discriminator, image(3, 16), {"width": 4, "norm": "layer", "sn": True}),
    (build_mlp_generator, image(1, 8), {"z_dim": 6, "hidden": "12,10", "activation": "relu"}),
    (build_mlp_discriminator, DataSpec((2,)), {"hidden": [9, 7], "dropout": 0.1}),
    (build_mlp_generator, DataSpec((2,)), {"hidden": "6", "batchnorm": "all", "init": "normal"}),
    (build_mlp_discriminator, DataSpec((2,)), {"hidden": [9, 7], "activation": "maxout", "maxout_pieces": 3}),
]


@pytest.mark.parametrize("build, spec, options", BUILDS)
def test_options_are_recorded_resolved_and_rebuild_the_same_module(build, spec, options):
    module = build(spec, **options)
    recorded = json.loads(json.dumps(module.options))  # as config.json stores them
    assert set(options) <= set(recorded)
    rebuilt = build(spec, **recorded)
    assert rebuilt.options == module.options
    rebuilt.load_state_dict(module.state_dict())  # strict: same names and shapes


def test_resolved_defaults_are_recorded():
    assert build_dcgan_generator(image(1, 28)).options == {"z_dim": 100, "width": 64, "conditioning": "none"}
    assert build_dcgan_discriminator(image(1, 28)).options == {"width": 64, "norm": "batch", "sn": False,
                                                               "conditioning": "none"}
    assert build_mlp_generator(DataSpec((1,))).options == {"z_dim": 10, "hidden": [50, 50], "activation": "relu",
                                                            "batchnorm": False, "conditioning": "none",
                                                            "init": "default"}
    assert build_mlp_discriminator(image(1, 28)).options == {"hidden": [512, 512, 512], "activation": "lrelu",
                                                             "dropout": [0.0, 0.4, 0.4], "sn": False,
                                                             "conditioning": "none", "init": "default"}


@pytest.mark.parametrize("name, spec", [("dcgan", image(1, 16)), ("mlp", DataSpec((2,))), ("mlp", image(3, 8))])
def test_names_resolve_through_the_registry_and_build(name, spec):
    registry = gantk.get_registry()
    generator_entry = registry.get("generator", name)
    discriminator_entry = registry.get("discriminator", name)
    assert generator_entry.source.package == discriminator_entry.source.package == "gantk"
    generator = generator_entry.create(spec)
    discriminator = discriminator_entry.create(spec)
    assert isinstance(generator, gantk.Generator) and isinstance(discriminator, gantk.Discriminator)
    z = torch.randn(3, generator.z_dim)
    labels = torch.zeros(3, dtype=torch.long)
    generator.eval()
    samples = generator(z, labels)  # labels are accepted (and, for now, ignored)
    assert samples.shape == (3, *spec.shape)
    torch.testing.assert_close(samples, generator(z))
    out = discriminator(samples, labels)
    assert out.logits.shape == (3,) and out.features.shape == (3, discriminator.feature_dim)


def test_tiny_dcgan_trains_discriminator_loss_goes_down():
    torch.manual_seed(0)
    spec = image(1, 16)
    generator = build_dcgan_generator(spec, z_dim=16, width=8)
    discriminator = build_dcgan_discriminator(spec, width=8)
    data = torch.rand(256, *spec.shape) * 2 - 1
    g_opt = torch.optim.Adam(generator.parameters(), 5e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), 5e-4, betas=(0.5, 0.999))
    d_losses = []
    for _ in range(30):
        real = data[torch.randint(0, len(data), (32,))]
        fake = generator(torch.randn(32, 16))
        # non-saturating GAN on logits: L_D = E sp(-D(x)) + E sp(D(x~)),  L_G = E sp(-D(x~))
        d_loss = F.softplus(-discriminator(real).logits).mean() + F.softplus(discriminator(fake.detach()).logits).mean()
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        g_loss = F.softplus(-discriminator(fake).logits).mean()
        g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()
        d_losses.append(d_loss.item())
    first, last = sum(d_losses[:5]) / 5, sum(d_losses[-5:]) / 5
    assert last < first - 0.15, d_losses  # seeds 0-5 give 1.31-1.39 -> 0.88-1.06
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters())  # G learns through D
