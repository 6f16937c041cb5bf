"""The ``resnet`` architectures (SNGAN's ResNets with optional SAGAN attention) and the ``sngan`` preset."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import gantk
from gantk.plugins.architectures._attention import SelfAttention
from gantk.plugins.architectures.resnet import build_resnet_discriminator, build_resnet_generator
from gantk.protocols import DataSpec

from engine_helpers import gantk_command

SIDES = [32, 48, 64, 128]
LAST_D_WIDTH = {32: 2, 48: 16, 64: 16, 128: 16}  # D's feature channels, in units of width


def image(side: int, channels: int = 3, classes: int = 0) -> DataSpec:
    return DataSpec((channels, side, side), classes, "pictures")


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def of_type(module: nn.Module, kind) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, kind)]


# ----------------------------------------------------------------------------- shapes and sizes
@pytest.mark.parametrize("side", SIDES)
def test_generator_makes_images_of_each_size_in_the_tanh_range(side):
    torch.manual_seed(side)
    generator = build_resnet_generator(image(side), z_dim=16, width=2)
    assert generator.z_dim == 16
    out = generator(torch.randn(3, 16))
    assert out.shape == (3, 3, side, side) and out.abs().max() <= 1.0
    with torch.no_grad():
        of_type(generator, nn.Conv2d)[-1].weight.mul_(1000.0)  # a tanh saturates at ±1 and never passes it
    saturated = generator(torch.randn(3, 16))
    assert saturated.abs().max() <= 1.0 and saturated.abs().max() > 0.99


@pytest.mark.parametrize("side", SIDES)
def test_discriminator_gives_one_raw_logit_and_summed_features(side):
    torch.manual_seed(side)
    discriminator = build_resnet_discriminator(image(side, channels=1), width=2)
    out = discriminator(torch.rand(4, 1, side, side) * 2 - 1)
    assert out.logits.shape == (4,)
    assert out.features.shape == (4, discriminator.feature_dim) and discriminator.feature_dim == 2 * LAST_D_WIDTH[side]
    assert (out.features >= 0).all()  # a sum over the map of ReLU outputs
    plain = build_resnet_discriminator(image(side, channels=1), width=2, sn=False)  # SN of a zero weight is 0/0
    with torch.no_grad():
        plain.head.weight.zero_()
        plain.head.bias.fill_(5.0)  # raw logits: nothing squashes them into [0, 1]
    assert (plain(torch.zeros(2, 1, side, side)).logits == 5.0).all()


def test_the_32px_networks_are_sngans_cifar10_resnets():
    spec = image(32)
    generator, discriminator = build_resnet_generator(spec), build_resnet_discriminator(spec)
    # G: Linear 128 -> 4·4·256, three up-blocks of 256 channels, BN, ReLU, conv3×3 -> 3
    assert [m.out_features for m in of_type(generator, nn.Linear)] == [4 * 4 * 256]
    assert {m.out_channels for m in of_type(generator, nn.Conv2d)[:-1]} == {256}
    # D: four blocks of 128 channels (the last two without pooling) -> 128 summed features
    assert discriminator.feature_dim == 128
    # every conv of both networks has a bias but the first conv of each G block (a BN follows it): SNGAN's
    # networks with 3 × 256 biases fewer in G
    assert count(generator) == 4_275_971 and count(discriminator) == 1_053_825


@pytest.mark.parametrize("side, g_params, d_params", [(48, 4_877_635, 19_542_721), (64, 12_219_715, 19_542_721),
                                                      (128, 32_148_803, 38_419_137)])
def test_parameter_counts_of_the_larger_layouts(side, g_params, d_params):
    with torch.device("meta"):  # sizes only
        assert count(build_resnet_generator(image(side))) == g_params
        assert count(build_resnet_discriminator(image(side))) == d_params


def test_width_scales_every_layer():
    narrow, wide = (build_resnet_generator(image(64), width=w) for w in (4, 8))
    assert [2 * c.out_channels for c in of_type(narrow, nn.Conv2d)[:-1]] == \
        [c.out_channels for c in of_type(wide, nn.Conv2d)[:-1]]
    assert build_resnet_discriminator(image(64), width=8).feature_dim == 8 * 16


@pytest.mark.parametrize("build, flag", [(build_resnet_generator, "--gen mlp"),
                                         (build_resnet_discriminator, "--disc mlp")])
def test_an_unsupported_size_names_the_four_sizes(build, flag):
    with pytest.raises(gantk.UsageError) as error:
        build(image(40))
    message = str(error.value)
    assert error.value.exit_code == 2 and "\n" not in message
    assert "32, 48, 64 or 128" in message and "got 3×40×40 from the data set 'pictures'" in message
    assert "--image-size 48 (or 32)" in message and flag in message
    with pytest.raises(gantk.UsageError, match=r"got 3×64×32"):
        build(DataSpec((3, 64, 32)))
    with pytest.raises(gantk.UsageError, match="builds images, but got vectors"):
        build(DataSpec((2,)))


@pytest.mark.parametrize("build, options, expected", [
    (build_resnet_generator, {"width": 0}, "'width' must be a positive integer"),
    (build_resnet_generator, {"z_dim": "big"}, "'z_dim' must be a positive integer"),
    (build_resnet_discriminator, {"sn": "maybe"}, "'sn' must be true or false"),
])
def test_bad_option_values_are_usage_errors(build, options, expected):
    with pytest.raises(gantk.UsageError, match=expected):
        build(image(32), **options)


def test_options_are_recorded_and_rebuild_the_same_networks():
    spec = image(32, classes=3)
    for build, options in ((build_resnet_generator, {"width": 2, "attention": 16, "conditioning": "cbn"}),
                           (build_resnet_discriminator, {"width": 2, "attention": 8, "conditioning": "projection"})):
        module = build(spec, **options)
        recorded = json.loads(json.dumps(module.options))  # as config.json stores them
        rebuilt = build(spec, **recorded)
        assert rebuilt.options == module.options
        rebuilt.load_state_dict(module.state_dict())  # strict: same names and shapes
    assert build_resnet_generator(spec).options == {"z_dim": 128, "width": 64, "attention": None,
                                                    "conditioning": "none"}
    assert build_resnet_discriminator(spec).options == {"width": 64, "attention": None, "sn": True,
                                                        "conditioning": "none"}


def test_orthogonal_initialisation():
    generator = build_resnet_generator(image(32), width=4)
    conv = of_type(generator, nn.Conv2d)[0]
    weight = conv.weight.detach().flatten(1)  # (out, in·k·k) with out < in·k·k: orthonormal rows
    torch.testing.assert_close(weight @ weight.T, torch.eye(weight.shape[0]), atol=1e-5, rtol=0)
    assert all((m.bias == 0).all() for m in of_type(generator, nn.Conv2d) if m.bias is not None)


# ----------------------------------------------------------------------------- spectral norm
def test_discriminator_is_spectrally_normalised_by_default_and_not_with_sn_false():
    spec = image(32)
    normalised = build_resnet_discriminator(spec, width=2)
    layers = of_type(normalised, (nn.Conv2d, nn.Linear))
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    vectors = [key for key in normalised.state_dict() if key.endswith(("._u", "._v"))]
    assert len(vectors) == 2 * len(layers)  # the power iteration's u and v are buffers: checkpoints carry them
    plain = build_resnet_discriminator(spec, width=2, sn=False)
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())
    assert plain.options["sn"] is False


# ----------------------------------------------------------------------------- conditioning
def test_cbn_generator_follows_the_labels():
    torch.manual_seed(0)
    generator = build_resnet_generator(image(32, classes=4), width=2, conditioning="auto").eval()
    assert generator.conditional and generator.options["conditioning"] == "cbn"
    norms = [m for m in generator.modules() if type(m).__name__ == "ConditionalBatchNorm"]
    assert len(norms) == 2 * 3  # two per up-block; the last BN stays unconditional
    for layer in of_type(generator, nn.Embedding):  # cBN starts as plain BN (γ = 1, β = 0): give labels weight
        nn.init.normal_(layer.weight, 0.0, 1.0)
    z = torch.randn(1, 128).expand(4, 128)  # the same noise for four labels
    with torch.no_grad():
        images = generator(z, torch.arange(4))
    assert all((images[i] - images[j]).abs().max() > 1e-3 for i in range(4) for j in range(i))
    with pytest.raises(gantk.UsageError, match="needs labels"):
        generator(z)


def test_projection_discriminator_uses_the_labels():
    torch.manual_seed(0)
    discriminator = build_resnet_discriminator(image(32, classes=4), width=2, conditioning="auto").eval()
    assert discriminator.conditional and discriminator.options["conditioning"] == "projection"
    x = torch.rand(1, 3, 32, 32).expand(4, -1, -1, -1)
    out = discriminator(x, torch.arange(4))
    assert (out.features == out.features[0]).all()  # the features do not see the label...
    assert len(set(out.logits.tolist())) == 4  # ...the projection term emb(y)ᵀφ(x) does
    expected = discriminator.head(out.features).flatten() + (discriminator.label_output.embedding.weight
                                                            * out.features).sum(1)
    torch.testing.assert_close(out.logits, expected)


@pytest.mark.parametrize("side, conditioning", [("generator", c) for c in ("none", "concat", "mul", "cbn")]
                         + [("discriminator", c) for c in ("none", "concat", "projection")])
def test_every_conditioning_of_each_side_makes_the_label_matter(side, conditioning):
    torch.manual_seed(0)
    spec = image(32, classes=4)
    build = build_resnet_generator if side == "generator" else build_resnet_discriminator
    module = build(spec, width=2, conditioning=conditioning).eval()
    for layer in of_type(module, nn.Embedding):
        nn.init.normal_(layer.weight, 0.0, 1.0)
    inputs = torch.randn(1, 128) if side == "generator" else torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        outputs = [module(inputs, torch.tensor([label])) for label in (0, 1)]
    if side == "discriminator":
        outputs = [out.logits for out in outputs]
    assert module.conditional == (conditioning != "none")
    assert ((outputs[0] - outputs[1]).abs().max() > 1e-6) == (conditioning != "none")


def test_impossible_conditionings_are_refused():
    with pytest.raises(gantk.UsageError, match="cannot condition the generator"):
        build_resnet_generator(image(32, classes=4), conditioning="projection")
    with pytest.raises(gantk.UsageError, match="cannot condition the discriminator"):
        build_resnet_discriminator(image(32, classes=4), conditioning="cbn")


# ----------------------------------------------------------------------------- attention
def test_attention_starts_as_the_identity_and_changes_the_output_once_gamma_moves():
    torch.manual_seed(0)
    block = SelfAttention(16)
    x = torch.randn(2, 16, 8, 8)
    assert block.gamma.item() == 0.0
    assert torch.equal(block(x), x)
    with torch.no_grad():
        block.gamma.fill_(0.5)
    assert (block(x) - x).abs().max() > 1e-3


def test_attention_attends_across_positions():
    torch.manual_seed(0)
    block = SelfAttention(16)
    with torch.no_grad():
        block.gamma.fill_(1.0)
    x = torch.randn(1, 16, 8, 8)
    far = x.clone()
    far[..., 6:, 6:] += 3.0  # change only the bottom-right corner
    changed = (block(far) - block(x)).abs()[..., :2, :2]
    assert changed.max() > 1e-4  # the top-left corner sees it (a convolution of this size would not)


@pytest.mark.parametrize("build, attention, where", [(build_resnet_generator, 32, "after up-block 3"),
                                                     (build_resnet_discriminator, 16, "after block 2")])
def test_attention_sits_at_the_asked_side_and_gradients_reach_gamma(build, attention, where):
    torch.manual_seed(0)
    module = build(image(64), width=2, attention=attention)
    assert module.options["attention"] == attention
    layers = list(module.net if build is build_resnet_generator else module.body)
    index = next(i for i, m in enumerate(layers) if isinstance(m, SelfAttention))
    assert index == {"after up-block 3": 5, "after block 2": 2}[where]  # G: Linear, Unflatten, 3 blocks
    block = layers[index]
    if build is build_resnet_generator:
        loss = module(torch.randn(4, 128)).square().mean()
    else:
        loss = module(torch.randn(4, 3, 64, 64)).logits.mean()
    loss.backward()
    assert block.gamma.grad is not None and block.gamma.grad.abs() > 0
    if build is build_resnet_discriminator:  # SN covers the attention's convs too
        assert all(parametrize.is_parametrized(m, "weight") for m in of_type(block, nn.Conv2d))


@pytest.mark.parametrize("build, value, valid", [
    (build_resnet_generator, 4, "none, 8, 16, 32, 64"),
    (build_resnet_generator, 12, "none, 8, 16, 32, 64"),
    (build_resnet_discriminator, 64, "none, 4, 8, 16, 32"),
])
def test_an_invalid_attention_side_lists_the_valid_ones(build, value, valid):
    with pytest.raises(gantk.UsageError, match=f"'attention' must be one of {valid}") as error:
        build(image(64), width=2, attention=value)
    assert "64-px" in str(error.value)


def test_48px_discriminator_offers_only_even_sides_for_attention():
    with pytest.raises(gantk.UsageError, match="'attention' must be one of none, 6, 12, 24"):
        build_resnet_discriminator(image(48), width=2, attention=3)


def test_attention_none_spellings():
    for value in (None, "none", "NONE"):
        assert build_resnet_generator(image(32), width=2, attention=value).options["attention"] is None
    assert build_resnet_generator(image(32), width=2, attention="16").options["attention"] == 16


# ----------------------------------------------------------------------------- registry, preset, training
def test_resnet_and_sngan_come_through_the_registry():
    registry = gantk.get_registry()
    assert registry.get("generator", "resnet").source.package == "gantk"
    assert registry.get("discriminator", "resnet").source.package == "gantk"
    preset = registry.create("preset", "sngan")
    assert preset["gen"] == preset["disc"] == "resnet" and preset["loss"] == "hinge"
    assert preset["n_critic"] == 5 and preset["lr"] == 2e-4 and tuple(preset["betas"]) == (0.0, 0.9)
    assert preset["dataset"] == "emoji" and preset["image_size"] == 64 and preset["batch_size"] == 64


@pytest.mark.slow
def test_sngan_preset_trains_end_to_end_on_emoji(tmp_path, monkeypatch):
    from test_emoji import make_package

    from gantk.plugins.datasets import emoji

    tarball = tmp_path / "google.tgz"
    monkeypatch.setitem(emoji.PACKAGES, "google", (tarball.as_uri(), make_package(tarball, "google")))
    data = tmp_path / "data"
    emoji.load_emoji(data_root=data, download=True)  # extracted once; the command reads it without the network
    result = gantk_command("train", "--preset", "sngan", "--data-root", str(data), "--steps", "2", "--batch-size",
                           "4", "-G", "width=4", "-D", "width=4", "--num-samples", "4", "--precision", "fp32",
                           "--runs-dir", str(tmp_path / "runs"), "--name", "sngan", "--quiet")
    assert result.returncode == 0, result.stderr
    run = tmp_path / "runs" / "sngan"
    config = json.loads((run / "config.json").read_text())
    assert config["gen"] == config["disc"] == "gantk:resnet" and config["loss"] == "gantk:hinge"
    assert config["n_critic"] == 5 and config["d_optimizer"] == {"name": "adam", "lr": 2e-4, "betas": [0.0, 0.9]}
    components = json.loads((run / "components.json").read_text())
    assert components["spec"]["shape"] == [3, 64, 64]
    assert components["discriminator"]["options"]["sn"] is True  # SNGAN's D: spectrally normalised by default
    assert list((run / "samples").glob("*.png"))
    exported = gantk.load_generator(run / "generator.safetensors")  # rebuilt from its recorded options
    assert exported(torch.randn(2, 128)).shape == (2, 3, 64, 64)
