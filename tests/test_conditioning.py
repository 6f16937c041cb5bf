"""Conditioning plugins: how labels enter G and D, with dcgan and mlp, and in training."""

from __future__ import annotations

import types

import pytest
import torch

import gantk
from gantk.protocols import DataSpec
from gantk.engine.trainer import Trainer

from engine_helpers import gantk_command, loss_records, tiny_config

IMAGES = DataSpec((1, 8, 8), 10, "digits")
VECTORS = DataSpec((2,), 4, "points")
UNLABELLED = DataSpec((1, 8, 8), 0, "blank")
GENERATOR_SIDE = ["none", "concat", "mul", "cbn"]
DISCRIMINATOR_SIDE = ["none", "concat", "projection"]


def build(kind: str, arch: str, spec: DataSpec, conditioning: str, **options):
    small = {"dcgan": {"width": 8}, "mlp": {"hidden": (16, 16)}}[arch]
    if kind == "generator" and arch == "mlp":
        small["batchnorm"] = True
    return gantk.get_registry().create(kind, arch, spec, conditioning=conditioning, **small, **options)


def randomise_label_embeddings(module) -> None:
    """cbn starts as plain BatchNorm (γ = 1, β = 0) and projection near 0: give the labels weight."""
    for layer in module.modules():
        if isinstance(layer, torch.nn.Embedding):
            torch.nn.init.normal_(layer.weight, 0.0, 1.0)


def label_effect(outputs_for_label) -> float:
    """How much the output changes when only the label changes (same noise / same input)."""
    return (outputs_for_label(0) - outputs_for_label(1)).abs().max().item()


@pytest.mark.parametrize("arch, spec", [("dcgan", IMAGES), ("mlp", IMAGES), ("mlp", VECTORS)])
@pytest.mark.parametrize("conditioning", GENERATOR_SIDE)
def test_generator_conditioning_makes_the_label_matter(arch, spec, conditioning):
    torch.manual_seed(0)
    generator = build("generator", arch, spec, conditioning).eval()
    randomise_label_embeddings(generator)
    z = torch.randn(4, generator.z_dim)
    with torch.no_grad():
        effect = label_effect(lambda c: generator(z, torch.full((4,), c)))
        assert generator(z, torch.zeros(4, dtype=torch.long)).shape == (4, *spec.shape)
    assert generator.conditional == (conditioning != "none")
    assert (effect > 1e-6) == (conditioning != "none")
    assert generator.options["conditioning"] == conditioning


@pytest.mark.parametrize("arch, spec", [("dcgan", IMAGES), ("mlp", IMAGES), ("mlp", VECTORS)])
@pytest.mark.parametrize("conditioning", DISCRIMINATOR_SIDE)
def test_discriminator_conditioning_makes_the_label_matter(arch, spec, conditioning):
    torch.manual_seed(0)
    discriminator = build("discriminator", arch, spec, conditioning).eval()
    randomise_label_embeddings(discriminator)
    x = torch.randn(4, *spec.shape)
    with torch.no_grad():
        out = discriminator(x, torch.zeros(4, dtype=torch.long))
        effect = label_effect(lambda c: discriminator(x, torch.full((4,), c)).logits)
    assert out.logits.shape == (4,) and out.features.shape == (4, discriminator.feature_dim)
    assert (effect > 1e-6) == (conditioning != "none")


@pytest.mark.parametrize("kind, conditioning, works", [
    ("generator", "projection", "cbn, concat, mul or none"),
    ("discriminator", "mul", "concat, none or projection"),
    ("discriminator", "cbn", "concat, none or projection"),
])
def test_impossible_side_is_a_usage_error_naming_what_works(kind, conditioning, works):
    with pytest.raises(gantk.UsageError, match=f"cannot condition the {kind}; for the {kind} use {works}"):
        build(kind, "dcgan", IMAGES, conditioning)


def test_conditioning_names_resolve_in_the_registry_that_builds_the_network():
    """An architecture built from a given registry finds that registry's conditionings, not the global ones."""
    from gantk.conditioning import Conditioning
    from gantk.registry import PluginSource, Registry

    class Halves(Conditioning):
        name, sides = "halves", frozenset({"generator"})

    plugin = types.ModuleType("acme_conditioning")
    plugin.register_conditionings = gantk.hookimpl(lambda register: register("halves", lambda spec: Halves(10)))
    registry = Registry.discover()
    registry.add_plugin(plugin, PluginSource("acme", "1.0", "acme_conditioning", "main"))
    generator = registry.create("generator", "dcgan", IMAGES, conditioning="halves", width=8)
    assert generator.options["conditioning"] == "halves"
    with pytest.raises(gantk.UsageError, match="for the discriminator use concat, none or projection"):
        registry.create("discriminator", "dcgan", IMAGES, conditioning="halves", width=8)
    with pytest.raises(gantk.UnknownNameError, match="Unknown conditioning 'halves'"):
        build("generator", "dcgan", IMAGES, "halves")  # the process-wide registry has no 'halves'


def test_conditioning_on_unlabelled_data_is_refused():
    with pytest.raises(gantk.UsageError, match="needs a labelled data set"):
        build("generator", "dcgan", UNLABELLED, "cbn")


def test_mlp_cbn_needs_batchnorm():
    with pytest.raises(gantk.UsageError, match="conditioning=cbn only with batchnorm=true"):
        gantk.get_registry().create("generator", "mlp", VECTORS, conditioning="cbn")


def test_conditional_generator_without_labels_says_what_to_do():
    generator = build("generator", "dcgan", IMAGES, "cbn")
    with pytest.raises(gantk.UsageError, match="needs labels"):
        generator(torch.randn(2, generator.z_dim))


def test_label_loss_makes_both_networks_conditional_and_grids_have_a_row_per_class(tmp_path):
    trainer = Trainer(tiny_config(steps=3, loss="ns+ac", num_samples=20), tmp_path / "run", show_progress=False)
    assert trainer.generator.conditional and trainer.generator.options["conditioning"] == "concat"
    assert trainer.procedure.discriminator.conditional and trainer.procedure.discriminator.options["conditioning"] == "projection"
    result = trainer.train()
    from PIL import Image

    grid = Image.open(tmp_path / "run" / "samples" / "step_000003.png")
    assert grid.size == (2 * (8 + 2) + 2, 10 * (8 + 2) + 2)  # 2 per row, 10 rows (one per class)
    exported = gantk.load_generator(result.exported)
    assert exported.conditional and exported.spec.num_classes == 10
    for command, expected in ((["--label", "3", "--n", "5"], 5), (["--labels", "all", "--n", "30"], 30)):
        out = tmp_path / f"s{expected}.safetensors"
        sampled = gantk_command("sample", str(result.exported), *command, "--out", str(out))
        assert sampled.returncode == 0, sampled.stderr
        from safetensors.torch import load_file

        stored = load_file(out)
        assert stored["samples"].shape[0] == expected
        assert stored["labels"].tolist() == ([3] * 5 if expected == 5 else [c for c in range(10) for _ in range(3)])


def test_label_loss_with_an_unconditional_generator_fails_before_training(tmp_path):
    with pytest.raises(gantk.UsageError, match="generator 'dcgan' is unconditional"):
        Trainer(tiny_config(steps=1, loss="hinge+contrastive", gen_options={"width": 8, "z_dim": 16,
                                                                            "conditioning": "none"}),
                tmp_path / "run", show_progress=False)


def test_a_conditioning_given_for_either_network_is_kept_over_auto(tmp_path):
    trainer = Trainer(tiny_config(steps=1, loss="ns+ac", gen_options={"width": 8, "z_dim": 16, "conditioning": "cbn"},
                                  disc_options={"width": 8, "conditioning": "none"}), tmp_path / "run",
                      show_progress=False)
    assert trainer.generator.options["conditioning"] == "cbn" and not trainer.procedure.discriminator.conditional


def test_headline_composition_trains(tmp_path):
    """dcgan G (auto: concat) against the acgan D (auto: projection) with hinge + contrastive, on labelled digits."""
    trainer = Trainer(tiny_config(steps=2, loss="hinge+contrastive", disc="acgan", disc_options={},
                                  loss_options={"contrastive": {"dim": 16}}), tmp_path / "run", show_progress=False)
    assert trainer.procedure.discriminator.options["conditioning"] == "projection"
    trainer.train()
    line = loss_records(tmp_path / "run")[-1]
    assert {"d/hinge", "d/contrastive", "g/hinge", "g/contrastive"} <= line.keys()


@pytest.mark.parametrize("arch", ["dcgan", "resnet", "stylegan2"])
def test_conditioning_none_as_typed_on_the_command_line_is_unconditional(arch):
    """``-G conditioning=none`` reads as None (parse_value): on labelled data it must not fall back to auto."""
    from gantk.options import parse_value
    labelled = DataSpec((3, 32, 32), num_classes=4, name="labelled")
    registry = gantk.get_registry()
    generator = registry.create("generator", arch, labelled, conditioning=parse_value("none"))
    assert not generator.conditional
    discriminator = registry.create("discriminator", arch, labelled, conditioning=parse_value("none"))
    assert discriminator.options["conditioning"] == "none"
