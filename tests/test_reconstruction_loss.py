"""FastGAN's reconstruction term ``recon`` (Liu et al. 2021, §3.2): it trains D's down-path and decoders only, its
L1/MSE/LPIPS values, the engine's refusal of a discriminator without decoders, the LPIPS weights file, and the
``fastgan`` preset."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor, nn

import gantk
from gantk.engine.config import TrainConfig
from gantk.engine.trainer import Trainer
from gantk.errors import GantkError, UsageError
from gantk.plugins.losses.reconstruction import (
    LPIPS_CHANNELS, LpipsVGG, ReconstructionLoss, build_reconstruction, load_lpips_vgg,
)
from gantk.protocols import DataSpec, DiscriminatorOutput, DiscriminatorPhase, SelfSupervisedDiscriminator

SPEC = DataSpec((3, 16, 16))


class DecodingDiscriminator(nn.Module):
    """A tiny self-supervised D (the contract, not FastGAN): 16 px → an 8×8 map → one logit; a decoder turns the
    map back into the whole image."""

    feature_dim = 4

    def __init__(self) -> None:
        super().__init__()
        self.options: dict = {}
        self.down = nn.Conv2d(3, 4, 4, stride=2, padding=1)  # 16 → 8 px
        self.head = nn.Conv2d(4, 1, 8)  # 8 px → one logit
        self.decoder = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(4, 3, 3, padding=1), nn.Tanh())

    def forward(self, x: Tensor, y: Tensor | None = None) -> DiscriminatorOutput:
        feature_map = F.leaky_relu(self.down(x), 0.2)
        return DiscriminatorOutput(self.head(feature_map).flatten(1), feature_map.mean(dim=(2, 3)),
                                   {"input": x, "map_8": feature_map})

    def reconstruct(self, extras: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        return {"whole": (self.decoder(extras["map_8"]), extras["input"])}


class FixedPairs(nn.Module):
    """A 'discriminator' whose reconstructions are given pairs, to check the term's value."""

    feature_dim = 1

    def __init__(self, pairs: dict[str, tuple[Tensor, Tensor]]) -> None:
        super().__init__()
        self.pairs, self.options = pairs, {}

    def forward(self, x: Tensor, y: Tensor | None = None) -> DiscriminatorOutput:
        return DiscriminatorOutput(torch.zeros(len(x), 1), torch.zeros(len(x), 1), {"input": x})

    def reconstruct(self, extras: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        return self.pairs


def discriminator_phase(discriminator: nn.Module, real: Tensor, fake: Tensor) -> DiscriminatorPhase:
    return DiscriminatorPhase(real, fake, None, None, discriminator(real), discriminator(fake), discriminator)


def recon_loss(discriminator: nn.Module, real: Tensor, fake: Tensor, term: ReconstructionLoss | None = None) -> Tensor:
    term = term or build_reconstruction(SPEC)
    term.attach(discriminator)
    return term.discriminator_loss(discriminator_phase(discriminator, real, fake))


def fastgan_discriminator() -> nn.Module:
    pytest.importorskip("gantk.plugins.architectures.fastgan")
    try:
        entry = gantk.get_registry().get("discriminator", "fastgan")
    except UsageError:
        pytest.skip("the fastgan discriminator is not registered yet")
    return entry.create(DataSpec((3, 128, 128)), width=4)


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("make_discriminator", [DecodingDiscriminator, fastgan_discriminator], ids=["fake", "fastgan"])
def test_the_term_trains_the_discriminators_down_path_and_decoders_and_never_the_generator(make_discriminator):
    torch.manual_seed(0)
    discriminator = make_discriminator()
    assert isinstance(discriminator, SelfSupervisedDiscriminator)
    side = 16 if isinstance(discriminator, DecodingDiscriminator) else 128
    generator = nn.Sequential(nn.Linear(8, 3 * side * side), nn.Tanh(), nn.Unflatten(1, (3, side, side)))
    fake = generator(torch.randn(4, 8))  # not detached: the term must still leave G alone
    real = torch.rand(4, 3, side, side) * 2 - 1

    recon_loss(discriminator, real, fake).backward()

    assert all(p.grad is None for p in generator.parameters())
    named = dict(discriminator.named_parameters())
    decoders = [name for name in named if "decoder" in name]
    assert decoders, "the discriminator should have decoders"
    assert all(named[name].grad is not None and named[name].grad.abs().sum() > 0 for name in decoders)
    first_layer = next(iter(named.values()))  # the input layer: on the down-path to every decoded map
    assert first_layer.grad is not None and first_layer.grad.abs().sum() > 0


def test_the_discriminator_is_not_a_submodule_of_the_term():
    """Its parameters would otherwise be counted twice in D's optimizer and checkpoints."""
    term = build_reconstruction(SPEC)
    term.attach(DecodingDiscriminator())
    assert list(term.parameters()) == [] and term.state_dict() == {}


# --------------------------------------------------------------------------- values
def test_the_value_is_zero_when_the_reconstructions_equal_their_targets():
    image = torch.rand(2, 3, 16, 16)
    pairs = {"whole": (image.clone(), image), "part": (image[..., :8, :8].clone(), image[..., :8, :8])}
    for distance in ("l1", "mse"):
        term = build_reconstruction(SPEC, distance=distance)
        assert recon_loss(FixedPairs(pairs), image, image, term).item() == 0.0


@pytest.mark.parametrize("distance, formula", [("l1", lambda d: d.abs().mean()), ("mse", lambda d: d.square().mean())])
def test_the_value_is_the_sum_over_the_pairs_of_the_mean_distance(distance, formula):
    torch.manual_seed(1)
    whole, whole_target = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    part, part_target = torch.randn(2, 3, 8, 8, dtype=torch.bfloat16), torch.randn(2, 3, 8, 8)
    pairs = {"whole": (whole, whole_target), "part": (part, part_target)}
    value = recon_loss(FixedPairs(pairs), whole, whole, build_reconstruction(SPEC, distance=distance))
    expected = formula(whole - whole_target) + formula(part.float() - part_target)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, expected)


def test_pairs_of_different_shapes_are_the_discriminators_error():
    pairs = {"part": (torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 16, 16))}
    with pytest.raises(GantkError, match="reconstruction 'part' has shape"):
        recon_loss(FixedPairs(pairs), torch.zeros(2, 3, 16, 16), torch.zeros(2, 3, 16, 16))


def test_bad_options_are_usage_errors():
    with pytest.raises(UsageError, match="distance"):
        build_reconstruction(SPEC, distance="l3")
    with pytest.raises(UsageError, match="only with distance=lpips"):
        build_reconstruction(SPEC, lpips_weights="w.safetensors")
    with pytest.raises(UsageError, match="lpips_weights was not given"):
        build_reconstruction(SPEC, distance="lpips")


# --------------------------------------------------------------------------- the engine's check
def test_a_discriminator_without_decoders_is_refused_before_training(tmp_path):
    config = TrainConfig.from_options({"gen": "dcgan", "dataset": "digits", "gen_options": {"width": 8},
                                       "disc_options": {"width": 8}, "loss": "hinge+recon", "batch_size": 8,
                                       "precision": "fp32"})
    with pytest.raises(UsageError, match="recon need a discriminator that decodes") as error:
        Trainer(config, tmp_path / "run", show_progress=False)
    assert "--disc" in str(error.value)
    assert not (tmp_path / "run" / "config.json").exists()


# --------------------------------------------------------------------------- LPIPS
def random_lpips_file(path, *, negative: bool = False) -> str:
    """A weights file with LPIPS-VGG's names and shapes and random values (non-negative linear layers)."""
    torch.manual_seed(2)
    tensors = {name: torch.randn_like(value) * 0.1 for name, value in LpipsVGG().state_dict().items()}
    for index in range(len(LPIPS_CHANNELS)):
        tensors[f"lin{index}.weight"] = tensors[f"lin{index}.weight"].abs() * (-1 if negative else 1)
    save_file(tensors, str(path))
    return str(path)


def test_lpips_is_zero_for_identical_images_positive_otherwise_and_symmetric(tmp_path):
    term = build_reconstruction(SPEC, distance="lpips", lpips_weights=random_lpips_file(tmp_path / "lpips.safetensors"))
    network = load_lpips_vgg(term.lpips_weights)
    torch.manual_seed(3)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(network(a, a), torch.zeros(2))
    forward, backward = network(a, b), network(b, a)
    assert (forward > 0).all()
    torch.testing.assert_close(forward, backward)
    value = recon_loss(FixedPairs({"whole": (a, b)}), a, a, term)
    torch.testing.assert_close(value, forward.mean())
    assert network(a[:, :1], b[:, :1]).gt(0).all()  # grey images are compared as RGB


def test_lpips_gradient_reaches_the_decoders_but_the_network_stays_frozen(tmp_path):
    term = build_reconstruction(SPEC, distance="lpips", lpips_weights=random_lpips_file(tmp_path / "lpips.safetensors"))
    discriminator = DecodingDiscriminator()
    recon_loss(discriminator, torch.rand(2, 3, 16, 16) * 2 - 1, torch.zeros(2, 3, 16, 16), term).backward()
    assert all(p.grad is not None for p in discriminator.decoder.parameters())
    assert list(term.parameters()) == [] and term.state_dict() == {}


def test_a_missing_lpips_file_is_named(tmp_path):
    missing = tmp_path / "nowhere" / "lpips.safetensors"
    with pytest.raises(GantkError, match="nowhere/lpips.safetensors"):
        build_reconstruction(SPEC, distance="lpips", lpips_weights=str(missing))


def test_a_wrong_lpips_file_says_what_is_wrong(tmp_path):
    other = tmp_path / "other.safetensors"
    save_file({"features.0.weight": torch.zeros(64, 3, 3, 3)}, str(other))
    with pytest.raises(GantkError, match="other.safetensors.*missing"):
        build_reconstruction(SPEC, distance="lpips", lpips_weights=str(other))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(GantkError, match="garbage.safetensors.*not a complete safetensors"):
        build_reconstruction(SPEC, distance="lpips", lpips_weights=str(garbage))
    with pytest.raises(GantkError, match="negative weights"):
        build_reconstruction(SPEC, distance="lpips",
                             lpips_weights=random_lpips_file(tmp_path / "negative.safetensors", negative=True))


# --------------------------------------------------------------------------- the preset
def test_the_fastgan_preset_is_listed_and_makes_a_valid_config(cli):
    listing = cli("presets")
    assert listing.exit_code == 0
    line = next(line for line in listing.stdout.splitlines() if line.startswith("fastgan  "))
    assert "Liu 2021" in line
    config = TrainConfig.from_options(gantk.get_registry().create("preset", "fastgan"))
    assert (config.gen, config.disc, config.loss, config.batch_size, config.image_size, config.dataset) == (
        "fastgan", "fastgan", "hinge+recon", 8, 256, "folder")
    assert config.augment == "diffaugment:policy=color+translation" and config.ema == 0.999
    assert (config.g_optimizer.lr, config.d_optimizer.lr) == (2e-4, 2e-4)
    assert tuple(config.g_optimizer.betas) == tuple(config.d_optimizer.betas) == (0.5, 0.999)
