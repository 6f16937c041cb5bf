"""The ``cyclegan`` procedure: consistency losses, the history pool, exact resume, the translator export."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch import nn

import gantk
from gantk.engine.checkpoint import load_latest_checkpoint
from gantk.engine.run_export import export_run
from gantk.engine.safetensors_io import read_metadata
from gantk.engine.trainer import Trainer
from gantk.errors import GantkError, UsageError
from gantk.plugins.procedures._image_pool import ImagePool
from gantk.plugins.procedures.cyclegan import consistency_losses
from gantk.plugins.tools.report import build_report

from engine_helpers import tiny_config

#: CycleGAN between two copies of the 8x8 digits, networks narrow enough for a step in milliseconds.
TINY_CYCLEGAN = {"procedure": "cyclegan", "gen": "resnet-translator", "disc": "patchgan", "loss": "lsgan",
                 "dataset": "digits", "dataset_b": "digits", "dataset_b_options": {}, "image_size": 16,
                 "gen_options": {"blocks": 1, "width": 4}, "disc_options": {"width": 4, "layers": 2},
                 "batch_size": 2, "ema": None, "procedure_options": {"pool": 3}}


def cyclegan_config(**overrides):
    return tiny_config(**{**TINY_CYCLEGAN, **overrides})


def images(draw_count: int, seed: int) -> torch.Tensor:
    return torch.rand(draw_count, 3, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 4), seed=st.integers(0, 2**16), cycle=st.floats(0.1, 20.0), identity=st.floats(0.0, 1.0))
def test_consistency_losses_are_zero_for_identity_translators_and_positive_otherwise(batch, seed, cycle, identity):
    real_a, real_b = images(batch, seed), images(batch, seed + 1)
    unchanged = gantk.Translator(nn.Identity(), nn.Identity())
    terms = consistency_losses(unchanged, real_a, real_b, unchanged.b2a(real_b), unchanged.a2b(real_a),
                               cycle, identity)
    assert set(terms) == {"g/cycle_a", "g/cycle_b"} | ({"g/identity_a", "g/identity_b"} if identity > 0 else set())
    assert all(value.item() == 0.0 for value in terms.values())
    # a translator that changes images is penalised: negation's cycle is the identity (no cycle loss), but its
    # identity terms are λμ·mean|−x − x| = 2λμ·mean|x|
    negate = gantk.Translator(lambda x: -x, lambda x: -x)
    terms = consistency_losses(negate, real_a, real_b, -real_b, -real_a, cycle, identity)
    assert terms["g/cycle_a"].item() == pytest.approx(0.0, abs=1e-6)
    if identity > 0:
        expected = cycle * identity * 2 * real_a.abs().mean().item()
        assert terms["g/identity_a"].item() == pytest.approx(expected, rel=1e-5)


@settings(max_examples=25, deadline=None)
@given(capacity=st.integers(0, 6), batches=st.lists(st.integers(1, 4), min_size=1, max_size=8), seed=st.integers(0, 99))
def test_pool_returns_only_fakes_it_was_given_and_keeps_at_most_capacity(capacity, batches, seed):
    torch.manual_seed(seed)
    pool, given_so_far, counter = ImagePool(capacity, (1, 2, 2)), [], 0
    for size in batches:
        fakes = torch.arange(counter, counter + size, dtype=torch.float32).view(size, 1, 1, 1).expand(size, 1, 2, 2)
        counter += size
        given_so_far += fakes[:, 0, 0, 0].tolist()
        shown = pool(fakes)
        assert shown.shape == fakes.shape
        identities = shown[:, 0, 0, 0].tolist()
        assert all(value in given_so_far for value in identities)  # only real past (or current) fakes
        assert all((image == image[0, 0, 0]).all() for image in shown)  # whole images, never blends
        assert int(pool.count) == min(capacity, len(given_so_far))
    if capacity == 0:
        assert identities == fakes[:, 0, 0, 0].tolist()


def test_pool_state_is_saved_and_restored_so_a_copy_continues_alike():
    torch.manual_seed(0)
    pool = ImagePool(4, (1, 2, 2))
    for start in range(0, 12, 3):
        pool(torch.arange(start, start + 3, dtype=torch.float32).view(3, 1, 1, 1).expand(3, 1, 2, 2))
    copy = ImagePool(4, (1, 2, 2))
    copy.load_state_dict(pool.state_dict())
    fakes = torch.arange(100, 104, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 1, 2, 2)
    rng = torch.get_rng_state()
    first = pool(fakes)
    torch.set_rng_state(rng)
    assert torch.equal(copy(fakes), first)
    assert torch.equal(copy.images, pool.images)


def module_tensors(run_dir) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_latest_checkpoint(run_dir).tensors.items() if k.startswith(("module/", "optim/"))}


def test_resume_is_bit_exact_on_cpu_fp32(tmp_path):
    straight = Trainer(cyclegan_config(steps=6, checkpoint_every=3), tmp_path / "straight", show_progress=False)
    straight.train()
    Trainer(cyclegan_config(steps=3), tmp_path / "split", show_progress=False).train()
    resumed = Trainer(cyclegan_config(steps=6), tmp_path / "split", resume=True, show_progress=False)
    assert resumed.step == 3
    resumed.train()
    expected, got = module_tensors(tmp_path / "straight"), module_tensors(tmp_path / "split")
    assert expected.keys() == got.keys()
    assert any(key.startswith("module/pool_a/") for key in got)  # the pools are part of the checkpoint
    assert all(torch.equal(expected[key], got[key]) for key in expected)


def test_every_loss_term_is_logged_and_the_translator_is_exported_and_loads(tmp_path):
    result = Trainer(cyclegan_config(steps=2, sample_every=2), tmp_path / "run", show_progress=False).train()
    logged = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    for name in ("g_a2b/lsgan", "g_b2a/lsgan", "g/cycle_a", "g/cycle_b", "g/identity_a", "g/identity_b",
                 "g/total", "d_a/lsgan", "d_b/lsgan", "d/total"):
        assert name in logged, name
    assert result.exported == tmp_path / "run" / "translator.safetensors"
    metadata = read_metadata(result.exported)
    assert metadata["gantk.kind"] == "translator" and json.loads(metadata["gantk.domains"]) == ["A", "B"]
    translator = gantk.load_translator(result.exported)
    assert translator.domains == ("A", "B")
    trained = load_latest_checkpoint(tmp_path / "run").tensors  # no EMA here: the export is the trained weights
    assert all(torch.equal(value, trained[f"module/translator/{name}"]) for name, value in translator.state_dict().items())
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        assert translator.a2b(x).shape == x.shape and translator(x, "b2a").shape == x.shape
    with pytest.raises(GantkError, match="translator export"):
        gantk.load_generator(result.exported)
    # the preview: inputs, translations, reconstructions for each domain (unpaired: no ground-truth row)
    picture = Image.open(tmp_path / "run" / "samples" / "step_000002.png")
    assert picture.height == 2 + 6 * (16 + 2)


def test_ema_and_bf16_come_from_the_engine(tmp_path):
    result = Trainer(cyclegan_config(steps=3, ema=0.5, precision="bf16"), tmp_path / "run", show_progress=False).train()
    assert result.precision == "bf16"
    checkpoint = load_latest_checkpoint(tmp_path / "run").tensors
    exported = gantk.load_translator(result.exported).state_dict()
    # the export holds the EMA of both directions, which differs from the trained weights after 3 steps
    assert all(torch.equal(value, checkpoint[f"module/ema/{name}"]) for name, value in exported.items())
    assert any(not torch.equal(value, checkpoint[f"module/translator/{name}"]) for name, value in exported.items())
    assert read_metadata(result.exported)["gantk.config"].count('"ema": true') == 1


def test_the_report_of_a_translation_run_shows_its_translations_and_no_latent_interpolation(tmp_path):
    Trainer(cyclegan_config(steps=2, sample_every=1), tmp_path / "run", show_progress=False).train()
    page = build_report(tmp_path / "run").read_text()
    assert "Translations over time" in page and "step_000002.png" in page
    assert "Latent interpolation" not in page and "resnet-translator" in page


def test_gantk_export_writes_the_translator_of_a_run(tmp_path):
    Trainer(cyclegan_config(steps=1), tmp_path / "run", show_progress=False).train()

    out = export_run(tmp_path / "run", tmp_path / "again.safetensors")
    assert read_metadata(out)["gantk.kind"] == "translator"
    again, trained = gantk.load_translator(out), gantk.load_translator(tmp_path / "run" / "translator.safetensors")
    assert again.domains == trained.domains
    assert all(torch.equal(value, trained.state_dict()[name]) for name, value in again.state_dict().items())


def test_a_packed_patchgan_whose_pack_does_not_divide_the_batch_is_refused_before_training(tmp_path):
    with pytest.raises(UsageError, match="multiple of 3"):
        Trainer(cyclegan_config(disc_options={"width": 4, "layers": 2, "pack": 3}), tmp_path / "run",
                show_progress=False)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_one_domain_data_or_a_noise_generator_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(UsageError, match="two domains.*emoji-styles"):
        Trainer(cyclegan_config(dataset_b=None), tmp_path / "one", show_progress=False)
    with pytest.raises(UsageError, match="resnet-translator"):
        Trainer(cyclegan_config(gen="dcgan", gen_options={"width": 8}), tmp_path / "noise", show_progress=False)
    with pytest.raises(UsageError, match="two domains"):
        Trainer(tiny_config(dataset_b="digits"), tmp_path / "gan", show_progress=False)
    with pytest.raises(UsageError, match="--n-critic"):
        Trainer(cyclegan_config(n_critic=2), tmp_path / "critic", show_progress=False)
