"""FastGAN (Liu et al. 2021): skip-layer excitation at every size, the generator's sizes and noise, the
self-supervised discriminator's outputs and reconstructions, parameter counts, and a run exported and sampled."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import gantk
from gantk.engine.config import TrainConfig
from gantk.engine.footprint import on_meta
from gantk.engine.sampling import draw
from gantk.engine.trainer import Trainer
from gantk.errors import UsageError
from gantk.plugins.architectures._fastgan_layers import NoiseInjection
from gantk.plugins.architectures.fastgan import build_fastgan_discriminator, build_fastgan_generator
from gantk.protocols import DataSpec, SelfSupervisedDiscriminator

NARROW = {"width": 8}  # channels do not matter for shapes; 8 keeps at least one channel at 1024 px


def rgb(side: int) -> DataSpec:
    return DataSpec((3, side, side))


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------- generator
@pytest.mark.parametrize("side, gated", [(128, {128: 8}), (256, {128: 8, 256: 16}),
                                         (512, {128: 8, 256: 16, 512: 32}), (1024, {128: 8, 256: 16, 512: 32})])
def test_skip_layer_excitation_gates_the_128_256_512_maps_from_the_8_16_32_maps(side, gated):
    generator = build_fastgan_generator(rgb(side), z_dim=16, **NARROW).eval()
    seen = {}

    def record(module, inputs, output):
        low, high = inputs
        assert output.shape == high.shape  # a channel-wise gate: the high-resolution map keeps its shape
        seen[high.shape[-1]] = low.shape[-1]

    for excitation in generator.excitations.values():
        excitation.register_forward_hook(record)
    with torch.no_grad():
        image = generator(torch.randn(1, 16))
    assert seen == gated and image.shape == (1, 3, side, side)


@pytest.mark.parametrize("side", [128, 256])
def test_generator_makes_images_in_range_and_a_latent_gives_one_image_in_eval_mode(side):
    torch.manual_seed(0)
    generator = build_fastgan_generator(rgb(side), z_dim=32, **NARROW)
    for noise in generator.modules():
        if isinstance(noise, NoiseInjection):
            nn.init.constant_(noise.strength, 0.5)  # as if trained: the noise now shows
    z = torch.randn(2, 32)
    with torch.no_grad():
        trained = generator.train()(z), generator(z)
        evaluated = generator.eval()(z), generator(z)
    assert trained[0].shape == (2, 3, side, side)
    assert trained[0].abs().max() <= 1 and evaluated[0].abs().max() <= 1
    assert not torch.equal(*trained)  # training draws fresh noise
    assert torch.equal(*evaluated)  # eval mode adds the noise maps saved with the weights


@pytest.mark.parametrize("side, fix", [(64, "--image-size 128,"), (200, "--image-size 256 (or 128)")])
def test_other_sizes_are_usage_errors_naming_the_sizes_that_work(side, fix):
    for build in (build_fastgan_generator, build_fastgan_discriminator):
        with pytest.raises(UsageError, match="128, 256, 512 or 1024 px") as error:
            build(rgb(side))
        assert fix in str(error.value)


def test_a_1024_px_generator_of_default_width_runs_a_forward_step_on_cpu():
    generator = build_fastgan_generator(rgb(1024)).eval()
    with torch.no_grad():
        image = generator(torch.randn(1, 256))
    assert image.shape == (1, 3, 1024, 1024) and torch.isfinite(image).all()


# --------------------------------------------------------------------------- discriminator
@pytest.fixture(scope="module")
def discriminator_256():
    torch.manual_seed(0)
    return build_fastgan_discriminator(rgb(256), **NARROW)


def test_discriminator_outputs_patch_logits_features_and_its_maps(discriminator_256):
    assert isinstance(discriminator_256, SelfSupervisedDiscriminator)
    images = torch.rand(2, 3, 256, 256) * 2 - 1
    out = discriminator_256(images)
    assert out.logits.shape == (2, 50)  # 5×5 from the 256 px path, 5×5 from the 128 px branch
    assert out.features.shape == (2, 64) == (2, discriminator_256.feature_dim)  # 8·width
    assert set(out.extras) == {"input", "map_8", "map_16", "small_map_8"}
    assert out.extras["map_8"].shape[-1] == 8 and out.extras["map_16"].shape[-1] == 16
    assert out.extras["input"] is images


def test_reconstructions_pair_128_px_images_and_the_part_is_the_drawn_quarter(discriminator_256):
    discriminator = discriminator_256.eval()  # BN with running statistics: the decoders are deterministic
    images = torch.rand(2, 3, 256, 256) * 2 - 1
    halves = {0: (slice(0, 128), slice(0, 128)), 1: (slice(0, 128), slice(128, 256)),
              2: (slice(128, 256), slice(0, 128)), 3: (slice(128, 256), slice(128, 256))}
    seen = set()
    with torch.no_grad():
        extras = discriminator(images).extras
        for seed in range(40):
            torch.manual_seed(seed)
            drawn = int(torch.randint(4, ()).item())
            torch.manual_seed(seed)
            pairs = discriminator.reconstruct(extras)
            assert set(pairs) == {"whole", "part", "small"}
            for reconstruction, target in pairs.values():
                assert reconstruction.shape == target.shape == (2, 3, 128, 128)
            rows, cols = halves[drawn]
            reconstruction, target = pairs["part"]
            assert torch.equal(target, images[:, :, rows, cols])  # the quarter of the 256 px input is 128×128
            map_rows, map_cols = slice(rows.start // 16, rows.stop // 16), slice(cols.start // 16, cols.stop // 16)
            decoded = discriminator.decoders["part"](extras["map_16"][:, :, map_rows, map_cols])
            assert torch.equal(reconstruction, decoded)  # decoded from the same quarter of the 16×16 map
            seen.add(drawn)
        whole_target = pairs["whole"][1]
    assert seen == {0, 1, 2, 3}
    assert torch.allclose(whole_target, torch.nn.functional.avg_pool2d(images, 2))  # area resize 256 → 128


@pytest.mark.parametrize("sn", [True, False])
def test_spectral_norm_is_on_every_conv_of_the_discriminator_when_asked(sn):
    discriminator = build_fastgan_discriminator(rgb(128), sn=sn, **NARROW)
    convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    down_path = [m for m in discriminator.down.modules() if isinstance(m, nn.Conv2d)]
    assert len(down_path) == 3 * 4  # 128 → 64 → 32 → 16 → 8: three convs per residual down-block
    assert all(hasattr(m, "parametrizations") for m in convs) is sn
    assert any(hasattr(m, "parametrizations") for m in convs) is sn
    assert discriminator.options == {"width": 8, "sn": sn}


# --------------------------------------------------------------------------- parameter counts (docs/training.md)
@pytest.mark.parametrize("side, generator_params, discriminator_params",
                         [(256, 27_014_118, 11_526_160), (1024, 27_062_784, 11_528_192)])
def test_parameter_counts_at_default_widths_are_the_documented_ones(side, generator_params, discriminator_params):
    generator = on_meta(lambda: build_fastgan_generator(rgb(side)))
    discriminator = on_meta(lambda: build_fastgan_discriminator(rgb(side)))
    assert parameter_count(generator) == generator_params
    assert parameter_count(discriminator) == discriminator_params


# --------------------------------------------------------------------------- a run: export and sample
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A narrow fastgan run on the digits resized to 128 px: 2 steps of hinge, exported."""
    run = tmp_path_factory.mktemp("fastgan") / "run"
    config = TrainConfig.from_options({
        "gen": "fastgan", "disc": "fastgan", "loss": "hinge", "dataset": "digits", "image_size": 128,
        "gen_options": {"z_dim": 16, **NARROW}, "disc_options": NARROW, "batch_size": 4, "steps": 2,
        "precision": "fp32", "log_every": 1, "sample_every": 1000, "checkpoint_every": 1000, "num_samples": 4,
        "ema": 0.9})
    trainer = Trainer(config, run, show_progress=False)
    result = trainer.train()
    return run, trainer, result


def test_the_export_loads_by_name_and_gives_the_trained_ema_samples(trained_run):
    _, trainer, result = trained_run
    loaded = gantk.load_generator(result.exported)
    trained = draw(trainer.ema.model, 4, seed=3)
    assert torch.allclose(draw(loaded, 4, seed=3), trained, atol=1e-6)
    # the run keeps its weights channels-last (another summation order): in that layout the samples are identical
    assert torch.equal(draw(loaded.to(memory_format=torch.channels_last), 4, seed=3), trained)


def test_gantk_sample_draws_from_the_run(trained_run, cli, tmp_path):
    run, _, _ = trained_run
    for name in ("a", "b"):
        result = cli("sample", str(run), "--n", "3", "--seed", "5", "--out", str(tmp_path / f"{name}.npz"))
        assert result.exit_code == 0, result.output
    first, second = (np.load(tmp_path / f"{name}.npz")["samples"] for name in ("a", "b"))
    assert first.shape == (3, 1, 128, 128) and np.array_equal(first, second)  # a seed gives the same images
