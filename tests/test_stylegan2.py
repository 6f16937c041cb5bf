"""StyleGAN2 (Karras et al. 2020): the layers' maths, the generator's styles (w_avg, mixing, truncation), the
path-length regulariser, the lazy-regularisation Adam adjustment, and runs end to end."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import gantk
from gantk.engine.build import lazy_adjusted
from gantk.engine.config import OptimizerConfig, TrainConfig
from gantk.engine.sampling import draw
from gantk.engine.discriminator_input import minibatch_stddev, stddev_group_size
from gantk.engine.trainer import Trainer
from gantk.errors import UsageError
from gantk.plugins.architectures._style_layers import (
    EqualLinear, ModulatedConv2d, downsample, modulated_conv2d, upsample, upsample_conv2d,
)
from gantk.plugins.architectures.stylegan2 import (
    build_stylegan2_discriminator, build_stylegan2_generator, mix_styles,
)
from gantk.plugins.losses.path_length import PathLengthPenalty
from gantk.protocols import DataSpec, GeneratorPhase, StyleGenerator

#: A StyleGAN2 small enough for the 8×8 digits to train a step in milliseconds.
TINY_WIDTHS = {"channel_base": 64, "channel_max": 16}
TINY_G = {"z_dim": 16, "w_dim": 16, "map_layers": 2, **TINY_WIDTHS}
TINY_RUN = {"gen": "stylegan2", "dataset": "digits", "gen_options": TINY_G, "disc_options": TINY_WIDTHS,
            "batch_size": 8, "precision": "fp32", "log_every": 1, "sample_every": 1000, "checkpoint_every": 1000,
            "num_samples": 8}


def tiny_generator(spec: DataSpec = DataSpec((3, 16, 16)), **options):
    return build_stylegan2_generator(spec, **{**TINY_G, **options})


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- layers
def test_demodulated_outputs_have_unit_variance_for_unit_variance_inputs():
    torch.manual_seed(0)
    layer = ModulatedConv2d(64, 32, 3)
    x = torch.randn(64, 64, 20, 20, generator=seeded(1))
    styles = torch.randn(64, 64, generator=seeded(2)).mul(1.5).exp()  # per-sample styles, spread over 1/100…100
    with torch.no_grad():
        out = layer(x, styles)[:, :, 1:-1, 1:-1]  # inside the zero padding
        undemodulated = modulated_conv2d(x, layer.weight * layer.weight_gain, styles, demodulate=False)
    assert out.var().item() == pytest.approx(1.0, rel=0.1)
    assert out.var(dim=(0, 2, 3)).min().item() > 0.8  # every output channel, not only on average
    assert not 0.5 < undemodulated[:, :, 1:-1, 1:-1].var().item() < 2.0  # the styles alone change the variance


def test_modulation_without_per_sample_weights_equals_the_grouped_convolution():
    weight = torch.randn(6, 4, 3, 3, generator=seeded(0), dtype=torch.float64)
    styles = torch.rand(5, 4, generator=seeded(1), dtype=torch.float64) * 2 + 0.1
    x = torch.randn(5, 4, 7, 7, generator=seeded(2), dtype=torch.float64)
    # the paper's form: per-sample weights w'' = s·w / √(Σ (s·w)² + ε), one group per sample
    modulated = styles[:, None, :, None, None] * weight[None]  # (B, O, I, k, k)
    demodulated = modulated * (modulated.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
    grouped = F.conv2d(x.reshape(1, 20, 7, 7), demodulated.reshape(30, 4, 3, 3), padding=1, groups=5)
    assert torch.allclose(modulated_conv2d(x, weight, styles), grouped.reshape(5, 6, 7, 7), atol=1e-10)


def test_equalised_learning_rate_gives_unit_gain_at_init_and_scales_the_steps():
    torch.manual_seed(0)
    for fan_in in (8, 2048):
        layer = EqualLinear(fan_in, 256)
        out = layer(torch.randn(512, fan_in, generator=seeded(1)))
        assert out.var().item() == pytest.approx(1.0, rel=0.15)  # effective weights N(0, 1/fan_in)
    # the learning-rate multiplier: one Adam step moves the stored weights by the learning rate, the effective
    # weights by lr·lr_mul/√fan_in, so a mapping layer (lr_mul 0.01) learns 100× slower than a normal one
    moves = {}
    for lr_mul in (1.0, 0.01):
        layer = EqualLinear(64, 64, lr_mul=lr_mul)
        before = (layer.weight * layer.weight_gain).detach().clone()
        optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)
        layer(torch.randn(16, 64, generator=seeded(2))).square().sum().backward()
        optimizer.step()
        moves[lr_mul] = ((layer.weight * layer.weight_gain).detach() - before).abs().mean().item()
        assert moves[lr_mul] == pytest.approx(1e-3 * lr_mul / math.sqrt(64), rel=0.01)
    assert layer.weight.std().item() == pytest.approx(100.0, rel=0.1)  # stored as N(0, 1)/lr_mul


def test_resampling_is_the_papers_1_3_3_1_filter_inside_the_image():
    x = torch.randn(2, 3, 12, 12, generator=seeded(0), dtype=torch.float64)
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
    kernel = (taps[:, None] * taps[None, :] / 64).expand(3, 1, 4, 4)
    down = F.conv2d(F.pad(x, (1, 1, 1, 1)), kernel, stride=2, groups=3)  # FIR, then every other sample
    assert torch.allclose(downsample(x)[..., 1:-1, 1:-1], down[..., 1:-1, 1:-1])
    zeros = torch.zeros(2, 3, 24, 24, dtype=torch.float64)
    zeros[..., ::2, ::2] = x  # zeros between the samples, then the FIR (gain 4)
    up = F.conv2d(F.pad(zeros, (2, 1, 2, 1)), 4 * kernel, groups=3)
    assert torch.allclose(upsample(x)[..., 2:-2, 2:-2], up[..., 2:-2, 2:-2])
    assert downsample(x.bfloat16()).dtype is torch.bfloat16  # native ops: bf16 runs work
    # the up-convolution as the paper's code computes it (transposed, stride 2, then the filter) is the convolution
    # of the upsampled map inside the image
    weight = torch.randn(5, 3, 3, 3, generator=seeded(1), dtype=torch.float64)
    fused = upsample_conv2d(x, weight)
    assert fused.shape == (2, 5, 24, 24)
    assert torch.allclose(fused[..., 3:-3, 3:-3], F.conv2d(upsample(x), weight, padding=1)[..., 3:-3, 3:-3])


def test_minibatch_stddev_groups_samples_and_adds_one_feature():
    assert [stddev_group_size(b) for b in (1, 2, 3, 4, 5, 6, 8, 9)] == [1, 2, 3, 4, 1, 3, 4, 3]
    same = torch.ones(8, 5, 4, 4)
    assert minibatch_stddev(same).shape == (8, 6, 4, 4)
    assert minibatch_stddev(same)[:, 5].abs().max().item() < 1e-3  # identical samples: no spread
    spread = minibatch_stddev(torch.randn(6, 5, 4, 4, generator=seeded(0)))[:, 5]
    assert (spread > 0.3).all() and torch.equal(spread[0], spread[2])  # groups of 3: samples 0, 2, 4 together


# --------------------------------------------------------------------------- the generator's styles
@pytest.mark.parametrize("side, num_ws", [(32, 8), (64, 10)])
def test_shapes_at_32_and_64_px(side, num_ws):
    spec = DataSpec((3, side, side), name="emoji")
    generator, discriminator = tiny_generator(spec), build_stylegan2_discriminator(spec, **TINY_WIDTHS)
    assert isinstance(generator, StyleGenerator) and generator.num_ws == num_ws
    z = torch.randn(4, 16, generator=seeded(0))
    assert generator.mapping(z).shape == (4, num_ws, 16)
    images = generator(z)
    assert images.shape == (4, 3, side, side)
    out = discriminator(images)
    assert out.logits.shape == (4,) and out.features.shape == (4, discriminator.feature_dim)
    with torch.no_grad():
        assert generator.eval()(3 * z).abs().max().item() <= 1.0  # eval mode: clamped to the data's range


def test_sizes_that_are_not_powers_of_two_are_refused_with_the_nearest():
    with pytest.raises(UsageError, match="--image-size 32"):
        tiny_generator(DataSpec((3, 28, 28)))
    with pytest.raises(UsageError, match="channel_base"):
        build_stylegan2_discriminator(DataSpec((3, 64, 64)), channel_base=32)


def test_w_avg_follows_the_mapping_in_training_mode_only():
    generator = tiny_generator()
    z = torch.randn(64, 16, generator=seeded(0))
    assert generator.w_avg.abs().max() == 0
    generator.mapping(z)
    mean = generator.mapping_network(z, None).detach().mean(dim=0)
    assert torch.allclose(generator.w_avg, 0.005 * mean, atol=1e-6)  # β·0 + (1 − β)·E[w], β = 0.995
    kept = generator.w_avg.clone()
    generator.eval()(z)
    assert torch.equal(generator.w_avg, kept)


def test_psi_zero_gives_the_same_image_for_every_z():
    generator = tiny_generator()
    for seed in range(20):  # a w_avg away from 0, as training leaves it
        generator.mapping(torch.randn(16, 16, generator=seeded(seed)))
    truncated = draw(generator, 6, seed=1, truncation=0.0)
    assert torch.allclose(truncated, truncated[:1].expand_as(truncated), atol=1e-6)
    plain = draw(generator, 6, seed=1)
    assert not torch.allclose(plain, plain[:1].expand_as(plain), atol=1e-3)
    assert torch.allclose(draw(generator, 6, seed=1, truncation=1.0), plain, atol=1e-6)  # ψ = 1 changes nothing
    cut = draw(generator, 6, seed=1, truncation=0.0, truncation_cutoff=2)  # the fine layers keep their styles
    assert not torch.allclose(cut, cut[:1].expand_as(cut), atol=1e-6)


def test_mixing_at_layer_zero_equals_the_second_style_alone():
    generator = tiny_generator().eval()
    with torch.no_grad():
        first = generator.mapping(torch.randn(3, 16, generator=seeded(0)))
        second = generator.mapping(torch.randn(3, 16, generator=seeded(1)))
        assert torch.equal(generator.synthesis(mix_styles(first, second, 0)), generator.synthesis(second))
        assert torch.equal(generator.synthesis(mix_styles(first, second, generator.num_ws)),
                           generator.synthesis(first))
        halfway = generator.synthesis(mix_styles(first, second, 3))
        assert not torch.allclose(halfway, generator.synthesis(first))
        assert not torch.allclose(halfway, generator.synthesis(second))


def test_training_mode_mixes_styles_with_the_given_probability():
    z = torch.randn(4, 16, generator=seeded(0))

    def mixed(generator) -> bool:
        ws = generator.mapping(z)
        return not torch.allclose(ws[:, 0], ws[:, -1])  # the last style comes from a second latent

    torch.manual_seed(0)
    assert all(mixed(tiny_generator(mixing=1.0)) for _ in range(5))
    assert not any(mixed(tiny_generator(mixing=0.0)) for _ in range(5))
    assert not mixed(tiny_generator(mixing=1.0).eval())  # eval mode: one style per sample


def test_conditional_generator_follows_labels_and_conditional_discriminator_uses_them():
    spec = DataSpec((3, 16, 16), num_classes=4, name="labelled")
    generator = tiny_generator(spec, conditioning="auto").eval()
    discriminator = build_stylegan2_discriminator(spec, conditioning="auto", **TINY_WIDTHS)
    assert generator.conditional and generator.num_classes == 4 and generator.options["conditioning"] == "concat"
    assert discriminator.options["conditioning"] == "projection"
    z = torch.randn(1, 16, generator=seeded(0)).expand(4, -1)
    with torch.no_grad():
        images = generator(z, torch.arange(4))
        assert not torch.allclose(images[0], images[1])  # the same z, another label: another image
        torch.nn.init.normal_(discriminator.label_output.embedding.weight)
        logits = discriminator(images[:1].expand(4, -1, -1, -1), torch.arange(4)).logits
    assert logits.unique().numel() == 4
    with pytest.raises(UsageError, match="needs labels"):
        generator(z)
    assert not tiny_generator(DataSpec((3, 16, 16)), conditioning="auto").conditional  # unlabelled: none


def test_spectral_norm_option_parametrises_every_discriminator_layer():
    discriminator = build_stylegan2_discriminator(DataSpec((3, 16, 16)), sn=True, **TINY_WIDTHS)
    assert discriminator.options["sn"] is True
    layers = [m for m in discriminator.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") and m.weight_gain == 1.0
                          for m in layers)
    assert discriminator(torch.randn(4, 3, 16, 16)).logits.shape == (4,)


# --------------------------------------------------------------------------- path length
def test_path_length_gradient_reaches_only_the_generator():
    spec = DataSpec((3, 16, 16))
    generator, discriminator = tiny_generator(spec), build_stylegan2_discriminator(spec, **TINY_WIDTHS)
    term = PathLengthPenalty()
    z = torch.randn(8, 16, generator=seeded(0))
    fake = generator(z)
    phase = GeneratorPhase(fake, None, discriminator(fake), discriminator, step=4, generator=generator, z=z)
    penalty = term.generator_loss(phase)
    penalty.backward()
    assert penalty.item() > 0 and term.mean_length.item() > 0  # a moved from 0 towards the mean length
    assert all(p.grad is None for p in discriminator.parameters())
    mapping = [p.grad for p in generator.mapping_network.parameters()]
    synthesis = [p.grad for p in generator.synthesis_network.parameters() if p.grad is not None]
    assert all(g is not None for g in mapping) and any(g.abs().sum() > 0 for g in mapping)
    assert synthesis and any(g.abs().sum() > 0 for g in synthesis)


def test_path_length_needs_a_style_generator_before_training(tmp_path):
    config = TrainConfig.from_options({**TINY_RUN, "gen": "dcgan", "disc": "dcgan", "gen_options": {"width": 8},
                                       "disc_options": {"width": 8}, "loss": "ns+pl"})
    with pytest.raises(UsageError, match="pl need a style-based generator"):
        Trainer(config, tmp_path / "run", show_progress=False)
    assert not (tmp_path / "run" / "config.json").exists()


# --------------------------------------------------------------------------- lazy regularisation
def test_lazy_regularisation_adjusts_adam_per_network(tmp_path, capsys):
    config = TrainConfig.from_options({**TINY_RUN, "loss": "ns+r1+pl", "loss_options": {"r1": {"every": 16}},
                                       "lr": 0.002, "betas": (0.0, 0.99)})
    trainer = Trainer(config, tmp_path / "run", show_progress=False)
    optimizers = trainer.procedure.optimizers()
    d_group, g_group = optimizers["discriminator"].param_groups[0], optimizers["generator"].param_groups[0]
    assert d_group["lr"] == pytest.approx(0.002 * 16 / 17)  # lr·c, c = k/(k+1)
    assert d_group["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))  # β^c
    assert g_group["lr"] == pytest.approx(0.002 * 4 / 5)  # pl runs every 4 steps by default
    assert g_group["betas"][1] == pytest.approx(0.99 ** 0.8)
    notes = capsys.readouterr().err
    assert notes.count("lazy-regularisation adjustment") == 2 and "c = 16/17" in notes
    assert lazy_adjusted(OptimizerConfig("adam", 0.002, (0.0, 0.99)), 1).lr == 0.002  # no lazy term: unchanged


def test_lazy_terms_run_on_their_steps_with_their_weight_scaled(tmp_path):
    config = TrainConfig.from_options({**TINY_RUN, "loss": "ns+r1+pl", "steps": 4,
                                       "loss_options": {"r1": {"every": 2}, "pl": {"every": 4}}})
    trainer = Trainer(config, tmp_path / "run", show_progress=False)
    values = [trainer.procedure.run(step) for step in (1, 2, 3, 4)]
    assert ["d/r1" in v for v in values] == [False, True, False, True]
    assert ["g/pl" in v for v in values] == [False, False, False, True]
    last = values[3]
    expected = last["g/ns"] + 2.0 * 4 * last["g/pl"]  # weight 2 × every 4
    assert last["g/total"].item() == pytest.approx(expected.item(), rel=1e-5)


# --------------------------------------------------------------------------- runs, exports, sampling
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny stylegan2 run on the digits, 3 steps, checkpointed at steps 2 and 3, exported."""
    run = tmp_path_factory.mktemp("stylegan2") / "run"
    config = TrainConfig.from_options({**TINY_RUN, "steps": 3, "loss": "ns+r1+pl", "checkpoint_every": 2,
                                       "keep_checkpoints": 3, "ema": 0.9})
    trainer = Trainer(config, run, show_progress=False)
    trainer.train()
    return run, trainer


def test_w_avg_is_saved_in_checkpoints_and_exports(trained_run):
    run, trainer = trained_run
    trained = trainer.sample_generator().w_avg
    assert trained.abs().sum() > 0 and torch.equal(trained, trainer.generator.w_avg)  # the EMA copies buffers
    exported = gantk.load_generator(run / "generator.safetensors")
    assert torch.equal(exported.w_avg, trained)
    config = TrainConfig.load(run / "config.json")
    config.steps = 4
    resumed = Trainer(config, run, resume=True, show_progress=False)
    assert resumed.step == 3 and torch.equal(resumed.generator.w_avg, trainer.generator.w_avg)
    assert resumed.procedure.loss.terms[2].mean_length.item() == trainer.procedure.loss.terms[2].mean_length.item()


def test_sample_with_truncation_end_to_end(trained_run, cli, tmp_path):
    run, _ = trained_run
    result = cli("sample", str(run), "--n", "4", "--truncation", "0.5", "--out", str(tmp_path / "t.npz"))
    assert result.exit_code == 0, result.output
    import numpy as np

    truncated = np.load(tmp_path / "t.npz")["samples"]
    cli("sample", str(run), "--n", "4", "--out", str(tmp_path / "plain.npz"))
    assert truncated.shape == (4, 1, 8, 8) and not np.allclose(truncated, np.load(tmp_path / "plain.npz")["samples"])
    refused = cli("sample", str(run), "--truncation", "0.5", "--truncation-cutoff", "99", "--out",
                  str(tmp_path / "x.png"))
    assert refused.exit_code == 2 and "between 1 and 4" in refused.output


def test_truncation_of_a_dcgan_is_a_usage_error(checkpointed_run, cli, tmp_path):
    result = cli("export", str(checkpointed_run), "--out", str(tmp_path / "g.safetensors"))
    assert result.exit_code == 0, result.output
    refused = cli("sample", str(tmp_path / "g.safetensors"), "--truncation", "0.7", "--out", str(tmp_path / "s.png"))
    assert refused.exit_code == 2
    assert "--truncation needs a style-based generator" in refused.output and "Traceback" not in refused.output


def test_the_stylegan2_preset_trains_on_emoji(tmp_path, monkeypatch, cli):
    from test_emoji import make_package

    from gantk.plugins.datasets import emoji

    tarball = tmp_path / "google.tgz"
    monkeypatch.setitem(emoji.PACKAGES, "google", (tarball.as_uri(), make_package(tarball, "google")))
    result = cli("train", "--preset", "stylegan2", "--steps", "2", "--batch-size", "4", "--data-root",
                 str(tmp_path / "data"), "--download", "--runs-dir", str(tmp_path / "runs"), "--quiet",
                 "--num-samples", "4")
    assert result.exit_code == 0, result.output
    config = TrainConfig.load(next((tmp_path / "runs").glob("stylegan2-*")) / "config.json")
    assert config.gen == "gantk:stylegan2" and config.loss == "gantk:ns+0.0256*gantk:r1+gantk:pl"
    assert config.ema == pytest.approx(0.5 ** (32 / 10_000), abs=1e-6)  # a half-life of 10,000 images at batch 32


def test_the_parameter_counts_in_the_docs_are_the_networks():
    from gantk.plugins.presets.stylegan2 import stylegan2_preset

    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    spec = DataSpec((3, 64, 64))
    preset = stylegan2_preset()
    assert count(build_stylegan2_generator(spec, **preset["gen_options"])) == 1_706_840
    assert count(build_stylegan2_discriminator(spec)) == 1_465_025
    official = {"channel_base": 16384, "channel_max": 512}  # stylegan2-ada-pytorch, --cfg auto at 64 px
    assert count(build_stylegan2_generator(spec, z_dim=512, w_dim=512, map_layers=2, **official)) == 22_243_608
    assert count(build_stylegan2_discriminator(spec, **official)) == 23_407_361
