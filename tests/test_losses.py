"""The built-in loss plugins: their formulas (hypothesis properties), their terms and their registration."""

from __future__ import annotations

import dataclasses

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import gantk
from gantk.factories import call_factory
from gantk.engine.loss_composition import build_loss
from gantk.plugins.losses.bce import (
    bce_discriminator_loss, build_bce, build_ns, minimax_generator_loss, non_saturating_generator_loss,
    smoothed_discriminator_loss,
)
from gantk.plugins.losses.gp import build_gp, gradient_penalty, interpolate
from gantk.plugins.losses.hinge import hinge_discriminator_loss, hinge_generator_loss
from gantk.plugins.losses.lsgan import lsgan_discriminator_loss, lsgan_generator_loss
from gantk.plugins.losses.r1 import build_r1, r1_penalty
from gantk.plugins.losses.wgan import build_wgan, clip_parameters, wgan_discriminator_loss, wgan_generator_loss
from gantk.protocols import DataSpec, DiscriminatorOutput, DiscriminatorPhase, GeneratorPhase, LossTerm

SPEC = DataSpec((3,), name="test")
IMAGE_SPEC = DataSpec((1, 2, 2), num_classes=2, name="test-images")
PROPERTY = settings(max_examples=60, deadline=None)

D_LOSSES = {
    "bce": bce_discriminator_loss,
    "hinge": hinge_discriminator_loss,
    "lsgan": lsgan_discriminator_loss,
    "wgan": wgan_discriminator_loss,
}
G_LOSSES = {
    "bce": minimax_generator_loss,
    "ns": non_saturating_generator_loss,
    "hinge": hinge_generator_loss,
    "lsgan": lsgan_generator_loss,
    "wgan": wgan_generator_loss,
}
BUILT_IN = ["bce", "ns", "hinge", "lsgan", "wgan", "gp", "r1", "ragan", "rahinge"]


def registered(name: str, **options) -> LossTerm:
    """The loss term ``name`` as the registry builds it."""
    return gantk.get_registry().create("loss", name, SPEC, **options)


def logits(low: float = -20.0, high: float = 20.0, min_size: int = 1, max_size: int = 16):
    """Batches of logits as float32 tensors."""
    floats = st.floats(low, high, allow_nan=False, allow_infinity=False, width=32)
    return st.lists(floats, min_size=min_size, max_size=max_size).map(lambda v: torch.tensor(v, dtype=torch.float32))


def log_sigmoid_textbook(t: torch.Tensor) -> torch.Tensor:
    return torch.log(torch.sigmoid(t.double()))  # the naive form, fine in float64 for moderate logits


def log_one_minus_sigmoid_textbook(t: torch.Tensor) -> torch.Tensor:
    return torch.log(1.0 - torch.sigmoid(t.double()))


class LinearD(nn.Module):
    """D(x) = wᵀ flatten(x) + b: its input gradient is w for every x."""

    def __init__(self, weight: torch.Tensor, bias: float = 0.3) -> None:
        super().__init__()
        self.feature_dim = weight.numel()
        self.weight = nn.Parameter(weight.clone().float())
        self.bias = nn.Parameter(torch.tensor(bias))

    def forward(self, x, y=None):
        flat = x.flatten(1)
        return DiscriminatorOutput(flat @ self.weight + self.bias, flat)


class QuadraticD(nn.Module):
    """D(x) = ½‖x‖²: its input gradient is x itself (per sample, not a constant)."""

    feature_dim = 1

    def forward(self, x, y=None):
        flat = x.flatten(1)
        return DiscriminatorOutput(0.5 * flat.pow(2).sum(1), flat[:, :1])


def d_step(discriminator, real, fake, *, real_grad=False, labels=None, fake_labels=None, step=0):
    """The context the engine gives loss terms in a D update."""
    if real_grad:
        real = real.detach().requires_grad_(True)
    return DiscriminatorPhase(real, fake, labels, fake_labels, discriminator(real, labels),
                              discriminator(fake, fake_labels), discriminator, step)


def g_step(discriminator, fake) -> GeneratorPhase:
    return GeneratorPhase(fake, None, discriminator(fake), discriminator)


# --------------------------------------------------------------------------------- bce / ns
@PROPERTY
@given(real=logits(), fake=logits())
def test_bce_and_ns_equal_the_log_sigmoid_forms(real, fake):
    expected_d = -log_sigmoid_textbook(real).mean() - log_one_minus_sigmoid_textbook(fake).mean()
    assert bce_discriminator_loss(real, fake).item() == pytest.approx(expected_d.item(), rel=1e-5, abs=1e-5)
    # saturating minimax G minimises E log(1 - σ(D(x~))); non-saturating G minimises -E log σ(D(x~))
    expected_minimax = log_one_minus_sigmoid_textbook(fake).mean()
    assert minimax_generator_loss(None, fake).item() == pytest.approx(expected_minimax.item(), rel=1e-5, abs=1e-5)
    expected_ns = -log_sigmoid_textbook(fake).mean()
    assert non_saturating_generator_loss(None, fake).item() == pytest.approx(expected_ns.item(), rel=1e-5, abs=1e-5)


@PROPERTY
@given(real=st.lists(st.sampled_from([-1e4, 1e4, 0.0]), min_size=1, max_size=8),
       fake=st.lists(st.sampled_from([-1e4, 1e4, 0.0]), min_size=1, max_size=8))
def test_bce_and_ns_stay_finite_for_huge_logits(real, fake):
    real_t = torch.tensor(real, requires_grad=True)
    fake_t = torch.tensor(fake, requires_grad=True)
    d = bce_discriminator_loss(real_t, fake_t)
    smoothed = smoothed_discriminator_loss(real_t, fake_t, real_target=0.9, fake_target=0.1)
    g_minimax, g_ns = minimax_generator_loss(None, fake_t), non_saturating_generator_loss(None, fake_t)
    for value in (d, smoothed, g_minimax, g_ns):
        assert torch.isfinite(value)
        real_grad, fake_grad = torch.autograd.grad(value, (real_t, fake_t), allow_unused=True,
                                                   materialize_grads=True)
        assert torch.isfinite(real_grad).all() and torch.isfinite(fake_grad).all()
    # sp(t) → max(t, 0) for |t| large: the loss is the exact asymptote, not a clamped log(0)
    r, f = torch.tensor(real, dtype=torch.float64), torch.tensor(fake, dtype=torch.float64)
    assert d.item() == pytest.approx((F.relu(-r).mean() + F.relu(f).mean() + math.log(2) * (
        (r == 0).double().mean() + (f == 0).double().mean())).item(), rel=1e-6, abs=1e-6)
    assert g_ns.item() == pytest.approx((F.relu(-f).mean() + math.log(2) * (f == 0).double().mean()).item(),
                                        rel=1e-6, abs=1e-6)


@PROPERTY
@given(real=logits(), fake=logits(), real_target=st.floats(0.0, 1.0), fake_target=st.floats(0.0, 1.0))
def test_label_smoothing_is_bce_with_the_given_targets(real, fake, real_target, fake_target):
    term = build_ns(SPEC, real_target=real_target, fake_target=fake_target)
    out_real, out_fake = DiscriminatorOutput(real, real[:, None]), DiscriminatorOutput(fake, fake[:, None])
    step = DiscriminatorPhase(real, fake, None, None, out_real, out_fake, lambda x, y=None: None)

    def textbook(t, target):  # -[t log σ(l) + (1 - t) log(1 - σ(l))]
        return -(target * log_sigmoid_textbook(t) + (1 - target) * log_one_minus_sigmoid_textbook(t)).mean()

    expected = textbook(real, real_target) + textbook(fake, fake_target)
    assert term.discriminator_loss(step).item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-5)
    assert term.options() == {"real_target": real_target, "fake_target": fake_target}


def test_label_smoothing_changes_only_the_discriminator_loss():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    D = LinearD(torch.tensor([1.0]), bias=0.0)
    plain, smoothed = build_ns(SPEC), build_ns(SPEC, real_target=0.9, fake_target=0.1)
    step = d_step(D, real[:, None], fake[:, None])
    assert not torch.allclose(smoothed.discriminator_loss(step), plain.discriminator_loss(step))
    gen = g_step(D, fake[:, None])
    assert torch.equal(smoothed.generator_loss(gen), plain.generator_loss(gen))
    assert torch.equal(build_bce(SPEC).discriminator_loss(step), plain.discriminator_loss(step))


@pytest.mark.parametrize("options", [{"real_target": 1.5}, {"fake_target": -0.1}, {"real_target": "high"},
                                     {"real_target": True}])
def test_ns_rejects_targets_outside_0_1(options):
    with pytest.raises(gantk.UsageError, match="real_target|fake_target"):
        build_ns(SPEC, **options)


# ------------------------------------------------------------------------------------ hinge
@PROPERTY
@given(real=logits(), fake=logits())
def test_hinge_discriminator_loss_is_non_negative(real, fake):
    value = hinge_discriminator_loss(real, fake)
    assert value.item() >= 0.0
    expected = torch.clamp(1 - real.double(), min=0).mean() + torch.clamp(1 + fake.double(), min=0).mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-6, abs=1e-6)


@PROPERTY
@given(real=logits(1.0, 1e4), fake=logits(-1e4, -1.0))
def test_hinge_discriminator_loss_is_zero_beyond_the_margins(real, fake):
    assert hinge_discriminator_loss(real, fake).item() == 0.0


@PROPERTY
@given(real=logits(1.0, 50.0), fake=logits(-50.0, -1.0), inside=st.floats(-0.75, 0.75, width=32))
def test_hinge_discriminator_loss_is_positive_inside_a_margin(real, fake, inside):
    assert hinge_discriminator_loss(torch.cat([real, torch.tensor([inside])]), fake).item() > 0.0
    assert hinge_discriminator_loss(real, torch.cat([fake, torch.tensor([inside])])).item() > 0.0


# ------------------------------------------------------------------------------------- wgan
@PROPERTY
@given(real=logits(), fake=logits())
def test_wgan_discriminator_loss_is_antisymmetric(real, fake):
    forward, swapped = wgan_discriminator_loss(real, fake), wgan_discriminator_loss(fake, real)
    assert forward.item() == pytest.approx(-swapped.item(), abs=1e-5)
    assert forward.item() == pytest.approx((fake.double().mean() - real.double().mean()).item(), abs=1e-5)
    assert wgan_generator_loss(None, fake).item() == pytest.approx(-fake.double().mean().item(), abs=1e-5)


# ------------------------------------------------------------------------------------ lsgan
@PROPERTY
@given(real=logits(), fake=logits())
def test_lsgan_discriminator_loss_is_minimised_at_one_and_zero(real, fake):
    optimum = lsgan_discriminator_loss(torch.ones_like(real), torch.zeros_like(fake))
    assert optimum.item() == 0.0
    value = lsgan_discriminator_loss(real, fake)
    expected = 0.5 * (real.double() - 1).pow(2).mean() + 0.5 * fake.double().pow(2).mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)
    assert value.item() >= optimum.item()
    if not (torch.all(real == 1) and torch.all(fake == 0)):
        assert value.item() > 0.0
    # and the gradient vanishes at the optimum
    r, f = torch.ones_like(real, requires_grad=True), torch.zeros_like(fake, requires_grad=True)
    grads = torch.autograd.grad(lsgan_discriminator_loss(r, f), (r, f))
    assert all(torch.all(g == 0) for g in grads)


@PROPERTY
@given(fake=logits())
def test_lsgan_generator_loss_is_minimised_at_one(fake):
    assert lsgan_generator_loss(None, torch.ones_like(fake)).item() == 0.0
    expected = 0.5 * (fake.double() - 1).pow(2).mean()
    assert lsgan_generator_loss(None, fake).item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)


# -------------------------------------------------------------------------- all adversarial
@PROPERTY
@given(data=st.data(), real=logits(min_size=2), fake=logits(min_size=2))
def test_every_loss_is_invariant_to_the_order_of_the_batch(data, real, fake):
    real_order = torch.tensor(data.draw(st.permutations(range(len(real)))))
    fake_order = torch.tensor(data.draw(st.permutations(range(len(fake)))))
    for name, loss in D_LOSSES.items():
        assert loss(real[real_order], fake[fake_order]).item() == pytest.approx(
            loss(real, fake).item(), rel=1e-5, abs=1e-5), name
    smoothed = smoothed_discriminator_loss(real[real_order], fake[fake_order], real_target=0.9, fake_target=0.1)
    assert smoothed.item() == pytest.approx(
        smoothed_discriminator_loss(real, fake, real_target=0.9, fake_target=0.1).item(), rel=1e-5, abs=1e-5)
    for name, loss in G_LOSSES.items():
        assert loss(None, fake[fake_order]).item() == pytest.approx(loss(None, fake).item(), rel=1e-5, abs=1e-5), name
    gradients = torch.randn(len(real), 3)
    assert gradient_penalty(gradients[real_order]).item() == pytest.approx(gradient_penalty(gradients).item(), rel=1e-5)
    assert r1_penalty(gradients[real_order]).item() == pytest.approx(r1_penalty(gradients).item(), rel=1e-5)


@pytest.mark.parametrize("name, d_loss, g_loss", [
    ("bce", bce_discriminator_loss, minimax_generator_loss),
    ("ns", bce_discriminator_loss, non_saturating_generator_loss),
    ("hinge", hinge_discriminator_loss, hinge_generator_loss),
    ("lsgan", lsgan_discriminator_loss, lsgan_generator_loss),
    ("wgan", wgan_discriminator_loss, wgan_generator_loss),
])
def test_each_adversarial_term_computes_its_formula_on_the_discriminator_outputs(name, d_loss, g_loss):
    term = registered(name)
    D = LinearD(torch.tensor([0.5, -1.0, 2.0]))
    real, fake = torch.randn(5, 3), torch.randn(5, 3)
    step = d_step(D, real, fake)
    assert torch.equal(term.discriminator_loss(step), d_loss(D(real).logits, D(fake).logits))
    assert torch.equal(term.generator_loss(g_step(D, fake)), g_loss(None, D(fake).logits))
    term.discriminator_loss(step).backward()
    assert D.weight.grad is not None and D.weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------- gp
unit_vectors = st.lists(st.floats(-1.0, 1.0, width=32), min_size=4, max_size=4).filter(
    lambda v: sum(x * x for x in v) > 1e-2).map(lambda v: torch.tensor(v) / torch.tensor(v).norm())


@PROPERTY
@given(direction=unit_vectors, seed=st.integers(0, 2**16))
def test_gp_is_zero_for_a_linear_critic_with_unit_norm_weight(direction, seed):
    generator = torch.Generator().manual_seed(seed)
    real, fake = torch.randn(6, 1, 2, 2, generator=generator), torch.randn(6, 1, 2, 2, generator=generator)
    value = build_gp(IMAGE_SPEC).discriminator_loss(d_step(LinearD(direction), real, fake))
    assert value.item() == pytest.approx(0.0, abs=1e-10)


@PROPERTY
@given(direction=unit_vectors, scale=st.floats(1e-3, 5.0), seed=st.integers(0, 2**16))
def test_gp_equals_norm_minus_one_squared_for_a_linear_critic(direction, scale, seed):
    weight = direction * scale
    generator = torch.Generator().manual_seed(seed)
    real, fake = torch.randn(6, 1, 2, 2, generator=generator), torch.randn(6, 1, 2, 2, generator=generator)
    D = LinearD(weight)
    value = build_gp(IMAGE_SPEC).discriminator_loss(d_step(D, real, fake))
    norm = weight.double().norm().item()
    assert value.item() == pytest.approx((norm - 1.0) ** 2, rel=1e-5, abs=1e-6)
    # double back-propagation: the penalty's gradient reaches D's weight, d/dw (‖w‖ - 1)² = 2(‖w‖ - 1) w/‖w‖
    value.backward()
    expected = 2 * (norm - 1.0) * weight.double() / norm
    assert torch.allclose(D.weight.grad.double(), expected, atol=1e-4)


def test_gp_penalises_each_interpolate_by_its_own_gradient():
    x = torch.tensor([[0.2, 0.0], [3.0, 4.0], [0.0, -1.0]])
    # real = fake = x, so x̂ = x whatever a is; D(x) = ½‖x‖² has ∇D(x) = x: GP = E(‖x‖ - 1)²
    value = build_gp(SPEC).discriminator_loss(d_step(QuadraticD(), x, x.clone()))
    assert value.item() == pytest.approx(((0.2 - 1) ** 2 + (5 - 1) ** 2 + 0.0) / 3, rel=1e-6)


def test_gp_interpolates_real_and_fake_with_one_uniform_weight_per_sample():
    seen = {}

    def critic(x, y=None):
        seen["x"], seen["y"] = x.detach().clone(), y
        return DiscriminatorOutput(x.flatten(1).sum(1), x.flatten(1))

    torch.manual_seed(0)
    real, fake = torch.ones(256, 3), torch.zeros(256, 3)
    labels = torch.arange(256) % 2
    build_gp(SPEC).discriminator_loss(d_step(critic, real, fake, labels=labels, fake_labels=1 - labels))
    x_hat = seen["x"]
    a = x_hat[:, 0]
    assert torch.equal(x_hat, a[:, None].expand(-1, 3))  # one a per sample, shared by its features
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert a.std() > 0.2 and abs(a.mean().item() - 0.5) < 0.1  # U[0, 1]: std 0.29, mean 0.5
    assert torch.equal(seen["y"], labels)  # conditional critics see the interpolates with the real labels
    torch.testing.assert_close(interpolate(real, fake, torch.tensor([0.25] * 256)), torch.full((256, 3), 0.25))


def test_gp_declares_what_it_is():
    gp = build_gp(SPEC)
    assert gp.default_weight == 10.0 and gp.needs == frozenset({"input_grad"})  # the need that turns wgan's clipping off
    assert gp.generator_loss(g_step(LinearD(torch.ones(3)), torch.randn(2, 3))) is None


# --------------------------------------------------------------------------------------- r1
@PROPERTY
@given(weight=st.lists(st.floats(-5.0, 5.0, width=32), min_size=4, max_size=4).map(torch.tensor),
       seed=st.integers(0, 2**16))
def test_r1_is_half_the_squared_weight_norm_for_a_linear_critic(weight, seed):
    real = torch.randn(5, 1, 2, 2, generator=torch.Generator().manual_seed(seed))
    D = LinearD(weight)
    value = build_r1(IMAGE_SPEC).discriminator_loss(d_step(D, real, torch.randn(5, 1, 2, 2), real_grad=True))
    assert value.item() == pytest.approx(0.5 * weight.double().pow(2).sum().item(), rel=1e-5, abs=1e-6)
    value.backward()  # d/dw ½‖w‖² = w
    assert torch.allclose(D.weight.grad, weight, atol=1e-5)


def test_r1_uses_each_real_samples_own_gradient():
    real = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    value = build_r1(SPEC).discriminator_loss(d_step(QuadraticD(), real, torch.zeros(2, 2), real_grad=True))
    assert value.item() == pytest.approx(0.5 * (1.0 + 25.0) / 2)  # ½E‖x‖², ∇D(x) = x


def test_r1_options_and_declarations():
    r1 = build_r1(SPEC, every=16)
    assert r1.every == 16 and r1.options() == {"every": 16}
    assert build_r1(SPEC).every == 1
    assert r1.default_weight == 10.0 and r1.needs == frozenset({"real_grad"})
    assert r1.generator_loss(g_step(LinearD(torch.ones(3)), torch.randn(2, 3))) is None
    assert build_r1(SPEC, every="4").every == 4  # a number as a config file or script may spell it
    for bad in (0, -2, 1.5, True, "four"):
        with pytest.raises(gantk.UsageError, match="every"):
            build_r1(SPEC, every=bad)


def test_r1_without_real_gradients_is_a_clear_error():
    step = d_step(LinearD(torch.ones(3)), torch.randn(2, 3), torch.randn(2, 3), real_grad=False)
    with pytest.raises(gantk.UsageError, match="real samples"):
        build_r1(SPEC).discriminator_loss(step)


def test_lazy_r1_runs_every_k_steps_with_its_weight_scaled():
    loss = build_loss("hinge+r1", SPEC, {"r1": {"every": 4}}, gantk.get_registry())
    D = LinearD(torch.tensor([1.0, 2.0, 2.0]))
    real, fake = torch.randn(4, 3), torch.randn(4, 3)
    _, parts = loss.discriminator_loss(d_step(D, real, fake, real_grad=True, step=3))
    assert "d/r1" not in parts
    total, parts = loss.discriminator_loss(d_step(D, real, fake, real_grad=True, step=8))
    assert parts["d/r1"].item() == pytest.approx(4.5)  # ½‖w‖² = ½·9
    assert total.item() == pytest.approx(parts["d/hinge"].item() + 10 * 4 * 4.5, rel=1e-6)


# ------------------------------------------------------------------------------ wgan clipping
def small_critic() -> nn.Module:
    torch.manual_seed(1)
    critic = nn.Sequential(nn.Linear(3, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    with torch.no_grad():
        for p in critic.parameters():
            p.copy_(torch.randn_like(p))  # far outside ±0.01
    return critic


@PROPERTY
@given(bound=st.floats(1e-4, 2.0), values=st.lists(st.floats(-10.0, 10.0, width=32), min_size=1, max_size=20))
def test_clip_parameters_clamps_into_the_bound(bound, values):
    module = nn.Linear(1, 1)
    module.weight = nn.Parameter(torch.tensor(values)[:, None])
    before = module.weight.detach().clone()
    clip_parameters(module, bound)
    after = module.weight.detach()
    assert after.abs().max() <= bound + 1e-7
    inside = before.abs() <= bound
    assert torch.equal(after[inside], before[inside])  # untouched where already inside
    assert torch.allclose(after[~inside], before[~inside].sign() * bound)


def test_wgan_alone_clips_every_critic_parameter_to_one_hundredth():
    loss = build_loss("wgan", SPEC, {}, gantk.get_registry())
    critic = small_critic()
    loss.after_discriminator_update(critic)
    values = torch.cat([p.detach().flatten() for p in critic.parameters()])
    assert values.abs().max().item() == pytest.approx(0.01)
    assert loss.terms[0].clip == 0.01


def critic_d(critic: nn.Module):
    return lambda x, y=None: DiscriminatorOutput(critic(x).squeeze(1), x)


@pytest.mark.parametrize("expression, clipped", [("wgan", True), ("wgan+gp", False), ("wgan+r1", True)])
def test_wgan_auto_clips_unless_a_term_penalises_input_gradients(expression, clipped):
    loss = build_loss(expression, SPEC, {}, gantk.get_registry())
    critic = small_critic()
    before = [p.detach().clone() for p in critic.parameters()]
    phase = d_step(critic_d(critic), torch.randn(4, 3), torch.randn(4, 3), real_grad=True)
    loss.discriminator_loss(dataclasses.replace(phase, needs=loss.needs))  # the procedure passes the loss's needs
    loss.after_discriminator_update(critic)  # after D's update, as the training step does
    if clipped:
        assert max(p.abs().max().item() for p in critic.parameters()) == pytest.approx(0.01)
    else:  # gp declares "input_grad": the penalty keeps D Lipschitz, so no clipping (WGAN-GP)
        assert loss.weights == [1.0, 10.0] and loss.terms[0].clip is None
        assert all(torch.equal(b, p) for b, p in zip(before, critic.parameters()))


@pytest.mark.parametrize("clip, expected", [(None, None), (0, None), (0.0, None), (False, None), (0.05, 0.05),
                                            (1, 1.0), ("auto", 0.01)])
def test_wgan_clip_option(clip, expected):
    term = build_wgan(SPEC, clip=clip)
    assert term.clip == expected
    critic = small_critic()
    before = [p.detach().clone() for p in critic.parameters()]
    term.after_discriminator_update(critic)
    if expected is None:
        assert all(torch.equal(b, p) for b, p in zip(before, critic.parameters()))
    else:
        assert max(p.abs().max().item() for p in critic.parameters()) == pytest.approx(expected)


def test_wgan_explicit_clip_still_clips_next_to_gp():
    loss = build_loss("wgan+gp", SPEC, {"wgan": {"clip": 0.05}}, gantk.get_registry())
    assert loss.terms[0].clip == 0.05


@pytest.mark.parametrize("clip", [-0.01, "often", True])
def test_wgan_rejects_a_bad_clip(clip):
    with pytest.raises(gantk.UsageError, match="clip"):
        build_wgan(SPEC, clip=clip)


# ---------------------------------------------------------------------------------- registry
@pytest.mark.parametrize("name", BUILT_IN)
def test_each_loss_is_registered_through_the_entry_points(name):
    entry = gantk.get_registry().get("loss", name)
    assert entry.source.package == "gantk"
    assert entry.summary
    term = entry.create(SPEC)
    assert isinstance(term, LossTerm)


def test_registered_terms_declare_what_they_need():
    for name in ["bce", "ns", "hinge", "lsgan", "wgan"]:
        term = registered(name)
        assert not term.needs and term.default_weight == 1.0 and not term.auxiliary, name
    for name in ["ragan", "rahinge"]:  # relativistic: G's loss needs D(x) on real data
        assert registered(name).needs == frozenset({"real_in_generator_phase"}), name


def test_an_unknown_option_is_a_usage_error_listing_the_valid_ones():
    entry = gantk.get_registry().get("loss", "ns")
    with pytest.raises(gantk.UsageError, match=r"real_target=1\.0, fake_target=0\.0"):
        call_factory("loss", entry.name, entry.factory, SPEC, smoothing=0.9)
    with pytest.raises(gantk.UsageError, match=r"\(none\)"):
        call_factory("loss", "hinge", gantk.get_registry().get("loss", "hinge").factory, SPEC, margin=2.0)


# ------------------------------------------------------------------------------ gantk.logit_loss
def margin_d(real, fake, *, margin=1.0):
    return F.relu(margin - real).mean() + F.relu(margin + fake).mean()  # E relu(m − D(x)) + E relu(m + D(x~))


seen_by_g: list = []


def margin_g(real, fake, *, margin=1.0):
    seen_by_g.append(real)
    return -fake.mean()  # −E D(x~)


def test_logit_loss_options_are_the_keyword_only_parameters():
    factory = gantk.logit_loss(margin_d, margin_g, name="margin",
                               checks={"margin": functools.partial(gantk.options.number_in, above=0.0)})
    term = call_factory("loss", "margin", factory, SPEC, margin=2.0)
    assert term.options() == {"margin": 2.0} and not term.needs
    real, fake = torch.tensor([1.5, 3.0]), torch.tensor([-1.0, 0.0])
    D = lambda x, y=None: DiscriminatorOutput(x, x[:, None])  # noqa: E731 - logits are the inputs
    step = DiscriminatorPhase(real, fake, None, None, D(real), D(fake), D)
    assert term.discriminator_loss(step).item() == pytest.approx((0.5 + 0.0) / 2 + (1.0 + 2.0) / 2)
    assert call_factory("loss", "margin", factory, SPEC).options() == {"margin": 1.0}  # the default
    with pytest.raises(gantk.UsageError, match=r"has no option 'width'.*margin=1\.0"):
        call_factory("loss", "margin", factory, SPEC, width=3)
    with pytest.raises(gantk.UsageError, match=r"loss 'margin' option 'margin' must be a number > 0"):
        factory(SPEC, margin=-1)


def test_logit_loss_gives_g_the_real_logits_only_when_declared():
    fake, real_out = torch.tensor([0.5, -0.5]), DiscriminatorOutput(torch.tensor([2.0, 4.0]), torch.zeros(2, 1))
    phase = GeneratorPhase(fake, None, DiscriminatorOutput(fake, fake[:, None]), None, 0, torch.zeros(2, 1), None,
                           real_out)
    gantk.logit_loss(margin_d, margin_g)(SPEC).generator_loss(phase)
    assert seen_by_g[-1] is None  # not declared: no real logits, even when the phase has them
    needing = gantk.logit_loss(margin_d, margin_g, generator_needs_real=True)(SPEC)
    assert needing.needs == frozenset({"real_in_generator_phase"})
    needing.generator_loss(phase)
    assert torch.equal(seen_by_g[-1], real_out.logits)
    phase.real_out = None  # a procedure that ignores the need
    with pytest.raises(gantk.UsageError, match="real data in the generator's update"):
        needing.generator_loss(phase)


def test_logit_loss_refuses_functions_it_cannot_call():
    with pytest.raises(TypeError, match="keyword-only"):
        gantk.logit_loss(lambda real, fake, margin=1.0: fake, margin_g)  # an option must be keyword-only
    with pytest.raises(TypeError, match="one default"):
        gantk.logit_loss(margin_d, lambda real, fake, *, margin=2.0: fake)
    with pytest.raises(TypeError, match="neither function"):
        gantk.logit_loss(margin_d, margin_g, checks={"width": gantk.options.positive_int})


def test_the_old_phase_names_still_work_with_a_deprecation_warning():
    import gantk.protocols as protocols

    with pytest.warns(DeprecationWarning, match="DiscriminatorPhase"):
        assert protocols.DiscriminatorStep is DiscriminatorPhase
    with pytest.warns(DeprecationWarning, match="GeneratorPhase"):
        assert gantk.GeneratorStep is GeneratorPhase
