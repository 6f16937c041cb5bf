"""The tutorial architectures ``acgan`` (ACGAN tutorial, MNIST 28×28) and ``contragan`` (ContraGAN tutorial,
CIFAR-10 32×32): shapes, parameter counts of the tutorial shapes, conditioning, sizes, options, training."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import gantk
from gantk.engine.config import TrainConfig
from gantk.factories import call_factory
from gantk.plugins.architectures import acgan, contragan
from gantk.plugins.architectures._layers import multiples_near
from engine_helpers import loss_records
from gantk.plugins.architectures.acgan import build_acgan_discriminator, build_acgan_generator
from gantk.plugins.architectures.contragan import build_contragan_discriminator, build_contragan_generator
from gantk.protocols import DataSpec, DiscriminatorOutput
from gantk.registry import Registry
from gantk.engine.trainer import Trainer

K = 10
BUILDERS = {"acgan": (build_acgan_generator, build_acgan_discriminator),
            "contragan": (build_contragan_generator, build_contragan_discriminator)}
SQUASHING = (nn.Sigmoid, nn.Softmax, nn.LogSoftmax, nn.LogSigmoid, nn.Softmax2d)


def image(channels: int, side: int, name: str = "", num_classes: int = K) -> DataSpec:
    return DataSpec((channels, side, side), num_classes, name)


def of_type(module: nn.Module, kind) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, kind)]


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv(c_in: int, c_out: int, k: int, bias: bool) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


def linear(n_in: int, n_out: int, bias: bool) -> int:
    return n_in * n_out + (n_out if bias else 0)


def bn(c: int) -> int:
    return 2 * c  # γ and β


def labels(n: int, value: int | None = None) -> torch.Tensor:
    return torch.arange(n) % K if value is None else torch.full((n,), value)


# ----------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("arch, shape", [("acgan", (1, 28, 28)), ("acgan", (3, 32, 32)), ("acgan", (1, 32, 32)),
                                         ("contragan", (3, 32, 32)), ("contragan", (1, 32, 32)),
                                         ("contragan", (1, 28, 28))])
def test_generator_output_shape_and_tanh_range(arch, shape):
    torch.manual_seed(0)
    generator = BUILDERS[arch][0](DataSpec(shape, K), z_dim=16)
    out = generator(torch.randn(3, 16), labels(3))
    assert out.shape == (3, *shape) and generator.z_dim == 16
    with torch.no_grad():
        of_type(generator, nn.Conv2d)[-1].weight.mul_(1000.0)  # saturate the tanh: ±1, never beyond
    saturated = generator(torch.randn(3, 16), labels(3))
    assert 0.99 < saturated.abs().max() <= 1.0
    assert isinstance(list(generator.net)[-1], nn.Tanh)


@pytest.mark.parametrize("arch, shape, feature_dim", [
    ("acgan", (1, 28, 28), 128 * 2 * 2),  # 28 -> 14 -> 7 -> 4 -> 2
    ("acgan", (3, 32, 32), 128 * 2 * 2),  # 32 -> 16 -> 8 -> 4 -> 2
    ("acgan", (1, 32, 32), 128 * 2 * 2),
    ("acgan", (1, 16, 16), 128 * 1 * 1),  # 16 -> 8 -> 4 -> 2 -> 1
    ("acgan", (1, 30, 30), 128 * 2 * 2),  # D reads any side: 30 -> 15 -> 8 -> 4 -> 2
    ("contragan", (3, 32, 32), 256 * 4 * 4),  # 32 -> 16 -> 8 -> 4: the tutorial's 4096
    ("contragan", (1, 32, 32), 256 * 4 * 4),
    ("contragan", (1, 16, 16), 256 * 2 * 2),
    ("contragan", (1, 8, 8), 256 * 1 * 1),
])
def test_discriminator_logits_features_and_feature_dim(arch, shape, feature_dim):
    torch.manual_seed(0)
    discriminator = BUILDERS[arch][1](DataSpec(shape, K))
    captured = {}
    discriminator.head.register_forward_hook(lambda module, inputs, output: captured.update(head_in=inputs[0]))
    out = discriminator(torch.rand(4, *shape) * 2 - 1, labels(4))
    assert isinstance(out, DiscriminatorOutput) and discriminator.feature_dim == feature_dim
    assert out.logits.shape == (4,) and out.features.shape == (4, feature_dim)
    torch.testing.assert_close(out.features, captured["head_in"])  # the features are the adversarial head's input
    assert isinstance(discriminator.head, nn.Linear) and discriminator.head.out_features == 1  # no class head


@pytest.mark.parametrize("arch", BUILDERS)
def test_no_sigmoid_or_softmax_and_logits_are_raw(arch):
    spec = image(1, 16)
    generator, discriminator = (build(spec) for build in BUILDERS[arch])
    for network in (generator, discriminator):
        assert not of_type(network, SQUASHING)  # no double softmax, no Sigmoid + BCE: losses take logits
    with torch.no_grad():
        discriminator.head.bias.fill_(5.0)
    discriminator.eval()
    assert (discriminator(torch.zeros(2, *spec.shape)).logits > 1.0).all()


# ----------------------------------------------------------------------------- tutorial shapes: parameter counts
def test_acgan_tutorial_parameter_counts_mnist():
    spec = image(1, 28, "mnist")
    generator, discriminator = build_acgan_generator(spec), build_acgan_discriminator(spec)
    # G: emb Embedding(10, 100) ⊙ z; Linear(100, 128·7·7) (no bias: BN follows); BN(128) on the 7×7 map;
    # Upsample, Conv3×3 128->128, BN, LReLU; Upsample, Conv3×3 128->64, BN, LReLU; Conv3×3 64->1 (+ bias); tanh
    expected_g = (K * 100 + linear(100, 128 * 7 * 7, False) + bn(128) + conv(128, 128, 3, False) + bn(128)
                  + conv(128, 64, 3, False) + bn(64) + conv(64, 1, 3, True))
    assert count(generator) == expected_g == 850_601  # the tutorial's, biases before its BNs included: 856,665
    assert [m.out_channels for m in of_type(generator, nn.Conv2d)] == [128, 64, 1]
    assert len(of_type(generator, nn.Upsample)) == 2
    assert all(m.eps == 1e-5 for m in of_type(generator, nn.BatchNorm2d))  # not the tutorial's eps = 0.8
    # D: Conv3×3 s2 1->16, 16->32 + BN, 32->64 + BN, 64->128 + BN (all with bias: the BN comes after the
    # LReLU and dropout), adversarial Linear(128·2·2, 1); the class head Linear(512, 10) is the ac term's
    expected_d = (conv(1, 16, 3, True) + conv(16, 32, 3, True) + bn(32) + conv(32, 64, 3, True) + bn(64)
                  + conv(64, 128, 3, True) + bn(128) + linear(128 * 2 * 2, 1, True))
    assert count(discriminator) == expected_d == 98_113
    assert [c.stride for c in of_type(discriminator, nn.Conv2d)] == [(2, 2)] * 4


def test_acgan_discriminator_blocks_follow_the_tutorial_order():
    body = list(build_acgan_discriminator(image(1, 28)).body)
    kinds = [type(m).__name__ for m in body]
    assert kinds == ["Conv2d", "LeakyReLU", "Dropout2d",
                     "Conv2d", "LeakyReLU", "Dropout2d", "BatchNorm2d",
                     "Conv2d", "LeakyReLU", "Dropout2d", "BatchNorm2d",
                     "Conv2d", "LeakyReLU", "Dropout2d", "BatchNorm2d", "Flatten"]
    assert all(m.p == 0.25 for m in of_type(nn.Sequential(*body), nn.Dropout2d))
    assert all(m.negative_slope == 0.2 for m in of_type(nn.Sequential(*body), nn.LeakyReLU))
    no_dropout = build_acgan_discriminator(image(1, 28), dropout=0)
    assert not of_type(no_dropout, nn.Dropout2d) and no_dropout.options["dropout"] == 0.0


def test_contragan_tutorial_parameter_counts_cifar10():
    spec = image(3, 32, "cifar10")
    generator, discriminator = build_contragan_generator(spec), build_contragan_discriminator(spec)
    # G: Embedding(10, 10), z ⊕ emb(y) = 110; Linear(110, 128·8·8) (no bias), BN1d(8192), LReLU;
    # ConvT(128,128,4,2,1) BN LReLU; ConvT(128,64,4,2,1) BN LReLU; Conv(64,3,3,1,1) (+ bias); tanh
    expected_g = (K * K + linear(100 + K, 128 * 8 * 8, False) + bn(128 * 8 * 8) + conv(128, 128, 4, False)
                  + bn(128) + conv(128, 64, 4, False) + bn(64) + conv(64, 3, 3, True))
    assert count(generator) == expected_g == 1_312_935
    assert [m.num_features for m in of_type(generator, nn.BatchNorm1d)] == [8192]
    # D: Conv(3,64,4,2,1) (+ bias) LReLU; Conv(64,128,4,2,1) BN LReLU; Conv(128,256,4,2,1) BN LReLU;
    # adversarial Linear(4096, 1); the contrastive head is the loss term's
    expected_d = (conv(3, 64, 4, True) + conv(64, 128, 4, False) + bn(128) + conv(128, 256, 4, False) + bn(256)
                  + linear(4096, 1, True))
    assert count(discriminator) == expected_d == 663_361
    assert discriminator.feature_dim == 4096


# ----------------------------------------------------------------------------- conditioning
def randomise_label_embeddings(module: nn.Module) -> None:
    """cbn starts as plain BatchNorm (γ = 1, β = 0) and projection near 0: give the labels weight."""
    for layer in module.modules():
        if isinstance(layer, nn.Embedding):
            nn.init.normal_(layer.weight, 0.0, 1.0)


@pytest.mark.parametrize("arch", BUILDERS)
@pytest.mark.parametrize("conditioning", ["none", "concat", "mul", "cbn", "auto"])
def test_generator_conditioning_makes_the_label_matter(arch, conditioning):
    torch.manual_seed(0)
    generator = BUILDERS[arch][0](image(1, 8), z_dim=8, conditioning=conditioning).eval()
    randomise_label_embeddings(generator)
    z = torch.randn(4, 8)
    with torch.no_grad():
        effect = (generator(z, labels(4, 0)) - generator(z, labels(4, 1))).abs().max().item()
    resolved = {"acgan": "mul", "contragan": "concat"}[arch] if conditioning == "auto" else conditioning
    assert generator.options["conditioning"] == resolved
    assert generator.conditional == (resolved != "none")
    assert (effect > 1e-6) == (resolved != "none")


def test_default_generator_conditioning_is_each_tutorials():
    assert build_acgan_generator(image(1, 8)).options == {"z_dim": 100, "conditioning": "mul"}
    assert build_contragan_generator(image(1, 8)).options == {"z_dim": 100, "conditioning": "concat"}
    assert build_acgan_discriminator(image(1, 8)).options == {"dropout": 0.25, "sn": False, "conditioning": "none"}
    assert build_contragan_discriminator(image(1, 8)).options == {"sn": False, "conditioning": "none"}


@pytest.mark.parametrize("arch", BUILDERS)
@pytest.mark.parametrize("conditioning", ["none", "concat", "projection"])
def test_discriminator_conditioning_makes_the_label_matter(arch, conditioning):
    torch.manual_seed(0)
    discriminator = BUILDERS[arch][1](image(1, 8), conditioning=conditioning).eval()
    randomise_label_embeddings(discriminator)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        effect = (discriminator(x, labels(4, 0)).logits - discriminator(x, labels(4, 1)).logits).abs().max().item()
    assert discriminator.conditional == (conditioning != "none")
    assert (effect > 1e-6) == (conditioning != "none")


@pytest.mark.parametrize("arch", BUILDERS)
def test_cbn_replaces_every_generator_norm(arch):
    from gantk.plugins.conditionings.cbn import ConditionalBatchNorm

    generator = BUILDERS[arch][0](image(1, 8), z_dim=8, conditioning="cbn")
    norms = of_type(generator, nn.modules.batchnorm._BatchNorm)
    assert len(of_type(generator, ConditionalBatchNorm)) == len(norms) == 3
    assert all(not norm.affine for norm in norms)  # γ(y), β(y) come from the labels


@pytest.mark.parametrize("kind, conditioning", [(0, "projection"), (1, "mul"), (1, "cbn")])
@pytest.mark.parametrize("arch", BUILDERS)
def test_impossible_side_conditioning_is_a_usage_error(arch, kind, conditioning):
    with pytest.raises(gantk.UsageError, match="cannot condition the"):
        BUILDERS[arch][kind](image(1, 8), conditioning=conditioning)


def test_conditional_generator_on_unlabelled_data_is_refused():
    with pytest.raises(gantk.UsageError, match="needs a labelled data set"):
        build_acgan_generator(image(1, 8, num_classes=0))  # the default mul needs labels
    assert not build_acgan_generator(image(1, 8, num_classes=0), conditioning="none").conditional


# ----------------------------------------------------------------------------- sizes it cannot build
@pytest.mark.parametrize("build, multiple, suggestion, flag", [
    (build_acgan_generator, 4, "--image-size 32 (or 28)", "--gen mlp"),
    (build_contragan_generator, 4, "--image-size 32 (or 28)", "--gen mlp"),
    (build_contragan_discriminator, 8, "--image-size 32 (or 24)", "--disc mlp"),
])
def test_unbuildable_size_names_the_sizes_and_the_image_size_to_use(build, multiple, suggestion, flag):
    with pytest.raises(gantk.UsageError) as error:
        build(image(3, 30, "faces"))
    message = str(error.value)
    assert error.value.exit_code == 2 and "\n" not in message
    assert f"multiple of {multiple}, at least 8" in message and "(the tutorial's" in message
    assert "got 3×30×30 from the data set 'faces'" in message
    assert suggestion in message and flag in message


@pytest.mark.parametrize("build", [build_acgan_generator, build_contragan_generator, build_contragan_discriminator])
def test_tiny_non_square_and_vector_data_are_refused(build):
    with pytest.raises(gantk.UsageError, match=r"got 1×4×4.*--image-size 8\b"):
        build(image(1, 4))
    with pytest.raises(gantk.UsageError, match=r"square images.*got 1×32×16.*--image-size 32\b"):
        build(DataSpec((1, 32, 16), K))
    with pytest.raises(gantk.UsageError, match=r"but got vectors of shape \(2,\).*mlp"):
        build(DataSpec((2,), K, "ring8"), conditioning="none")


def test_acgan_discriminator_reads_vectors_never():
    with pytest.raises(gantk.UsageError, match=r"reads images, but got vectors.*--disc mlp"):
        build_acgan_discriminator(DataSpec((2,), K))


def test_contragan_generator_mentions_its_discriminator_needs_a_multiple_of_8():
    build_contragan_generator(image(1, 28))  # G alone builds 28 = 4·7
    with pytest.raises(gantk.UsageError, match="discriminator needs a multiple of 8"):
        build_contragan_generator(image(1, 26))
    with pytest.raises(gantk.UsageError, match="multiple of 8"):
        build_contragan_discriminator(image(1, 28))


def test_nearest_sizes():
    assert multiples_near(30, 4, 8) == [32, 28] and multiples_near(28, 4, 8) == [28]
    assert multiples_near(29, 4, 8) == [28, 32] and multiples_near(3, 4, 8) == [8]
    assert multiples_near(30, 8, 8) == [32, 24] and multiples_near(60, 8, 8) == [64, 56]


@pytest.mark.parametrize("build, options, expected", [
    (build_acgan_generator, {"z_dim": 0}, "'z_dim' must be a positive integer"),
    (build_contragan_generator, {"z_dim": 2.5}, "'z_dim' must be a positive integer"),
    (build_acgan_discriminator, {"dropout": 1.0}, r"'dropout' must be a rate in \[0, 1\)"),
    (build_acgan_discriminator, {"dropout": "lots"}, r"'dropout' must be a rate in \[0, 1\)"),
    (build_acgan_discriminator, {"dropout": True}, r"'dropout' must be a rate in \[0, 1\)"),
])
def test_bad_option_values_are_usage_errors(build, options, expected):
    with pytest.raises(gantk.UsageError, match=expected):
        build(image(1, 8), **options)


def test_unknown_option_is_caught_by_the_engine():
    with pytest.raises(gantk.UsageError, match=r"no option 'width'"):
        call_factory("generator", "acgan", build_acgan_generator, image(1, 8), width=8)


# ----------------------------------------------------------------------------- options, registry, training
@pytest.mark.parametrize("build, spec, options", [
    (build_acgan_generator, image(1, 12), {"z_dim": 7, "conditioning": "cbn"}),
    (build_acgan_discriminator, image(3, 8), {"dropout": "0.1", "conditioning": "projection"}),
    (build_contragan_generator, image(1, 8), {"z_dim": 5, "conditioning": "auto"}),
    (build_contragan_discriminator, image(1, 16), {"conditioning": "concat"}),
])
def test_options_round_trip_through_json_and_rebuild_the_same_state_dict(build, spec, options):
    torch.manual_seed(1)
    module = build(spec, **options)
    recorded = json.loads(json.dumps(module.options))  # as config.json stores them
    assert set(options) <= set(recorded) and recorded["conditioning"] != "auto"
    torch.manual_seed(1)
    rebuilt = build(spec, **recorded)
    assert rebuilt.options == module.options
    original, again = module.state_dict(), rebuilt.state_dict()
    assert original.keys() == again.keys()
    assert all(torch.equal(original[key], again[key]) for key in original)  # same seed, same weights


def tutorial_registry() -> Registry:
    registry = Registry.discover()
    for module in (acgan, contragan):
        registry.add_plugin(module)
    return registry


@pytest.mark.parametrize("name", BUILDERS)
def test_names_resolve_through_a_registry(name):
    registry = tutorial_registry()
    spec = image(1, 16)
    generator = registry.create("generator", name, spec)
    discriminator = registry.create("discriminator", name, spec)
    assert isinstance(generator, gantk.Generator) and isinstance(discriminator, gantk.Discriminator)
    out = discriminator(generator(torch.randn(2, generator.z_dim), labels(2)), labels(2))
    assert out.logits.shape == (2,) and out.features.shape == (2, discriminator.feature_dim)


@pytest.mark.parametrize("gen, loss, image_size, term, extra", [
    ("acgan", "ns+ac", 28, "ac", {}),  # the ACGAN tutorial on 28×28 digits
    ("contragan", "hinge+contrastive", 16, "contrastive", {"loss_options": {"contrastive": {"dim": 16}}}),
])
def test_few_steps_of_training_through_the_trainer(tmp_path, gen, loss, image_size, term, extra):
    config = TrainConfig.from_options({"gen": gen, "disc": gen, "loss": loss, "dataset": "digits",
                                       "image_size": image_size, "steps": 2, "precision": "fp32", "batch_size": 16,
                                       "log_every": 1, "sample_every": 1000, "checkpoint_every": 1000,
                                       "num_samples": 10, **extra})
    trainer = Trainer(config, tmp_path / "run", registry=tutorial_registry(), show_progress=False)
    assert trainer.generator.conditional  # mul / concat by default
    trainer.train()
    last = loss_records(tmp_path / "run")[-1]
    assert {f"d/{term}", f"g/{term}"} <= last.keys()
    assert all(torch.isfinite(torch.tensor(v)) for v in last.values() if isinstance(v, float))
    head = next(m for m in trainer.procedure.loss.modules() if isinstance(m, nn.Linear))
    assert head.in_features == trainer.procedure.discriminator.feature_dim  # the term's head sits on D's features
