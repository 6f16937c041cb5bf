"""The conditional loss plugins ``ac`` (ACGAN) and ``contrastive`` (ContraGAN's 2C loss).

Their maths (hypothesis properties against straightforward float64 references), their heads
(created by attach() from D's feature_dim), and their composition with an adversarial loss.
"""

from __future__ import annotations

import contextlib
import math
import types

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import gantk
from gantk.factories import call_factory
from gantk.plugins.procedures.gan import GanProcedure
from gantk.engine.loss_composition import CompositeLoss, build_loss
from gantk.plugins.losses import ac, bce, contrastive, gp, hinge, r1
from gantk.plugins.losses.ac import ac_discriminator_loss, ac_generator_loss, build_ac, classifier_cross_entropy
from gantk.plugins.losses.contrastive import build_contrastive, contrastive_2c_loss, unit_vectors
from gantk.protocols import DataSpec, DiscriminatorOutput, DiscriminatorPhase, GeneratorPhase, LossTerm
from gantk.registry import Registry

K = 3
SPEC = DataSpec((4,), num_classes=K, name="labelled-vectors")
UNLABELLED = DataSpec((4,), name="unlabelled-vectors")
PROPERTY = settings(max_examples=50, deadline=None)


# ---------------------------------------------------------------------------------- helpers
def registry() -> Registry:
    """A registry of the loss plugins this file needs, without entry points."""
    reg = Registry()
    for module in (bce, hinge, gp, r1, ac, contrastive):
        reg.add_plugin(module)
    return reg


class TinyD(nn.Module):
    """A small MLP discriminator: features φ(x) (B, F) and a linear adversarial logit."""

    def __init__(self, in_dim: int = 4, feature_dim: int = 8) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.body = nn.Sequential(nn.Linear(in_dim, feature_dim), nn.LeakyReLU(0.2))
        self.head = nn.Linear(feature_dim, 1)

    def forward(self, x, y=None):
        features = self.body(x.flatten(1))
        return DiscriminatorOutput(self.head(features).flatten(), features)


class TinyG(nn.Module):
    z_dim = 5

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(self.z_dim, 4)
        self.embedding = nn.Embedding(K, 4)

    def forward(self, z, y=None):
        return self.linear(z) + self.embedding(y)


def feature_d(feature_dim: int = 6):
    """D whose features are its input: the tests choose φ(x) directly."""
    def discriminator(x, y=None):
        return DiscriminatorOutput(x.sum(1), x)
    discriminator.feature_dim = feature_dim
    return discriminator


def d_context(D, real, fake, real_labels, fake_labels) -> DiscriminatorPhase:
    return DiscriminatorPhase(real, fake, real_labels, fake_labels, D(real, real_labels), D(fake, fake_labels), D)


def g_context(D, fake, fake_labels) -> GeneratorPhase:
    return GeneratorPhase(fake, fake_labels, D(fake, fake_labels), D)


def attached(term: LossTerm, feature_dim: int = 6) -> LossTerm:
    holder = nn.Module()
    holder.feature_dim = feature_dim
    term.attach(holder)
    return term


def reference_2c(embeddings, proxies, labels, temperature) -> float:
    """ALGORITHMS.md §2's formula, one sample at a time, in float64 with math.exp."""
    E, P, y = embeddings.double(), proxies.double(), labels.tolist()

    def s(a, b):  # cosine similarity (0 with a zero vector)
        norms = a.norm() * b.norm()
        return (a @ b / norms).item() if norms > 0 else 0.0

    total = 0.0
    for i in range(len(y)):
        to_proxy = math.exp(s(E[i], P[y[i]]) / temperature)
        numerator = to_proxy + sum(math.exp(s(E[i], E[k]) / temperature)
                                   for k in range(len(y)) if k != i and y[k] == y[i])
        denominator = to_proxy + sum(math.exp(s(E[i], E[k]) / temperature) for k in range(len(y)) if k != i)
        total += -math.log(numerator / denominator)
    return total / len(y)


@st.composite
def contrastive_inputs(draw, min_batch: int = 1, max_batch: int = 10):
    """(embeddings (B, d), proxy table (K, d), labels (B,)) from a seeded generator."""
    batch, dim, classes = draw(st.integers(min_batch, max_batch)), draw(st.integers(2, 6)), draw(st.integers(1, 4))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    embeddings = torch.randn(batch, dim, generator=generator)
    proxies = torch.randn(classes, dim, generator=generator)
    labels = torch.randint(classes, (batch,), generator=generator)
    return embeddings, proxies, labels


temperatures = st.floats(0.05, 5.0)


# ------------------------------------------------------------------------- contrastive maths
@PROPERTY
@given(inputs=contrastive_inputs(), temperature=temperatures)
def test_2c_equals_the_formula_computed_sample_by_sample(inputs, temperature):
    embeddings, proxies, labels = inputs
    value = contrastive_2c_loss(embeddings, proxies, labels, temperature)
    assert value.dtype == torch.float32 and value.dim() == 0
    expected = reference_2c(embeddings, proxies, labels, temperature)
    assert value.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert value.item() >= 0.0


def test_2c_excludes_masked_entries_instead_of_adding_exp_zero():
    # B = 3, labels (0, 0, 1); the tutorial's "multiply the similarities by a mask" would add exp(0) = 1
    # to the numerator for every other-class (and self) entry. Orthonormal-ish layout, t = 1.
    embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    proxies = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    e = math.e
    l0 = -math.log((e + e) / (e + e + 1))  # proxy s=1, positive s=1, negative s=0
    l2 = -math.log(e / (e + 1 + 1))  # proxy s=1, no positive, two negatives with s=0
    expected = (2 * l0 + l2) / 3
    assert contrastive_2c_loss(embeddings, proxies, labels, 1.0).item() == pytest.approx(expected, rel=1e-6)


@PROPERTY
@given(data=st.data(), inputs=contrastive_inputs(min_batch=2), temperature=temperatures)
def test_2c_is_invariant_to_permuting_the_batch_with_its_labels(data, inputs, temperature):
    embeddings, proxies, labels = inputs
    order = torch.tensor(data.draw(st.permutations(range(len(labels)))))
    permuted = contrastive_2c_loss(embeddings[order], proxies, labels[order], temperature)
    assert permuted.item() == pytest.approx(contrastive_2c_loss(embeddings, proxies, labels, temperature).item(),
                                            rel=1e-5, abs=1e-6)


@PROPERTY
@given(data=st.data(), inputs=contrastive_inputs(), temperature=temperatures,
       factor=st.floats(1e-6, 1e6), proxy_factor=st.floats(1e-6, 1e6))
def test_2c_is_invariant_to_rescaling_one_embedding_or_one_proxy(data, inputs, temperature, factor, proxy_factor):
    embeddings, proxies, labels = inputs
    i = data.draw(st.integers(0, len(labels) - 1))
    c = data.draw(st.integers(0, len(proxies) - 1))
    scaled_embeddings, scaled_proxies = embeddings.clone(), proxies.clone()
    scaled_embeddings[i] *= factor
    scaled_proxies[c] *= proxy_factor
    base = contrastive_2c_loss(embeddings, proxies, labels, temperature).item()
    assert contrastive_2c_loss(scaled_embeddings, proxies, labels, temperature).item() == pytest.approx(
        base, rel=1e-5, abs=1e-6)
    assert contrastive_2c_loss(embeddings, scaled_proxies, labels, temperature).item() == pytest.approx(
        base, rel=1e-5, abs=1e-6)


@PROPERTY
@given(seed=st.integers(0, 2**31 - 1), positives=st.integers(0, 4), negatives=st.integers(1, 4),
       temperature=temperatures)
def test_2c_decreases_as_a_sample_moves_toward_its_class_samples_and_proxy(seed, positives, negatives, temperature):
    # class 0's other samples and its proxy point along u = e₁ (with random positive norms); sample 0 starts
    # at v in span(e₁, e₂), at least 90° from u, and moves along (1 − α) v + α u; class 1's samples and proxy
    # live in span(e₃, e₄), orthogonal to that plane, so only the similarities that should grow change.
    generator = torch.Generator().manual_seed(seed)
    u = torch.tensor([1.0, 0.0, 0.0, 0.0])
    angle = float(torch.empty(1).uniform_(math.pi / 2, 3.0, generator=generator))  # away from u, short of −u
    v = torch.tensor([math.cos(angle), math.sin(angle), 0.0, 0.0])
    same = u * torch.empty(positives, 1).uniform_(0.1, 10.0, generator=generator)
    other = torch.cat([torch.zeros(negatives, 2), torch.rand(negatives, 2, generator=generator) + 0.1], dim=1)
    proxies = torch.stack([u * 3.0, torch.tensor([0.0, 0.0, 1.0, 1.0])])
    labels = torch.tensor([0] * (1 + positives) + [1] * negatives)

    def batch(alpha: float) -> torch.Tensor:
        return torch.cat([((1 - alpha) * v + alpha * u)[None], same, other])

    alphas = [i / 5 for i in range(6)]
    values = [contrastive_2c_loss(batch(a), proxies, labels, temperature).item() for a in alphas]
    reference = [reference_2c(batch(a), proxies, labels, temperature) for a in alphas]
    assert all(later < earlier for earlier, later in zip(reference, reference[1:]))  # the formula decreases...
    assert all(later <= earlier * (1 + 1e-6) for earlier, later in zip(values, values[1:]))  # ...so does the code
    assert values[-1] < values[0] * (1 - 1e-3)  # sample 0's own ℓ falls clearly (less so at high temperatures)


@PROPERTY
@given(inputs=contrastive_inputs(), temperature=temperatures, exponent=st.sampled_from([-30, -20, 20, 30]))
def test_2c_is_finite_for_huge_and_tiny_norms(inputs, temperature, exponent):
    embeddings, proxies, labels = inputs
    scale = 10.0 ** exponent  # ‖x‖² overflows (or underflows) float32 for these
    big = (embeddings * scale).requires_grad_(True)
    big_proxies = (proxies * scale).requires_grad_(True)
    value = contrastive_2c_loss(big, big_proxies, labels, temperature)
    assert torch.isfinite(value)
    assert value.item() == pytest.approx(contrastive_2c_loss(embeddings, proxies, labels, temperature).item(),
                                         rel=1e-5, abs=1e-6)
    value.backward()
    assert torch.isfinite(big.grad).all() and torch.isfinite(big_proxies.grad).all()


@PROPERTY
@given(inputs=contrastive_inputs(min_batch=2))
def test_2c_is_finite_and_exact_at_a_temperature_where_exp_overflows_float32(inputs):
    embeddings, proxies, labels = inputs
    embeddings = embeddings.requires_grad_(True)
    value = contrastive_2c_loss(embeddings, proxies, labels, 0.01)  # exp(1/0.01) = e¹⁰⁰ > float32's max
    assert torch.isfinite(value)
    assert value.item() == pytest.approx(reference_2c(embeddings.detach(), proxies, labels, 0.01), rel=1e-4, abs=1e-5)
    value.backward()
    assert torch.isfinite(embeddings.grad).all()


def test_2c_is_finite_for_a_zero_embedding():
    torch.manual_seed(6)
    embeddings = torch.tensor([[0.0, 0.0], [1.0, 2.0], [-1.0, 0.5]], requires_grad=True)
    proxies, labels = torch.randn(2, 2), torch.tensor([0, 0, 1])
    value = contrastive_2c_loss(embeddings, proxies, labels, 0.5)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(embeddings.grad).all()
    assert embeddings.grad[0].abs().max() < 10.0  # no 1/eps blow-up at the zero vector
    # a zero embedding is orthogonal to everything (s = 0 with its proxy and the other samples)
    assert value.item() == pytest.approx(reference_2c(embeddings.detach(), proxies, labels, 0.5), rel=1e-5)


@PROPERTY
@given(inputs=contrastive_inputs(max_batch=1), temperature=temperatures)
def test_2c_of_a_single_sample_is_zero(inputs, temperature):
    embeddings, proxies, labels = inputs  # no other sample: the numerator is the denominator
    embeddings.requires_grad_(True)
    value = contrastive_2c_loss(embeddings, proxies, labels, temperature)
    assert value.item() == 0.0
    value.backward()
    assert torch.isfinite(embeddings.grad).all()


@PROPERTY
@given(inputs=contrastive_inputs(min_batch=2), temperature=temperatures)
def test_2c_is_zero_without_other_class_samples_and_positive_with_them(inputs, temperature):
    embeddings, proxies, labels = inputs
    embeddings.requires_grad_(True)
    same = contrastive_2c_loss(embeddings, proxies, torch.zeros_like(labels), temperature)
    assert same.item() == 0.0
    same.backward()
    assert torch.isfinite(embeddings.grad).all()
    if len(set(labels.tolist())) > 1:
        assert contrastive_2c_loss(embeddings, proxies, labels, temperature).item() > 0.0


def test_unit_vectors_have_unit_norm_at_any_scale():
    x = torch.tensor([[3.0, 4.0], [3e-30, 4e-30], [3e30, 4e30], [0.0, 0.0], [1e-40, 0.0]])
    norms = unit_vectors(x).norm(dim=1)
    torch.testing.assert_close(norms, torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0]))


def test_2c_keeps_float32_similarities_when_called_under_bf16_autocast():
    torch.manual_seed(0)
    embeddings, proxies, labels = torch.randn(6, 5), torch.randn(K, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.autocast("cpu", dtype=torch.bfloat16):  # its matrix product would otherwise run in bf16
        value = contrastive_2c_loss(embeddings, proxies, labels, 0.5)
    assert value.dtype == torch.float32 and value.dim() == 0
    assert value.item() == pytest.approx(reference_2c(embeddings, proxies, labels, 0.5), rel=1e-5)


# ------------------------------------------------------------------------------ ac maths
@st.composite
def class_logits(draw, low: float = -30.0, high: float = 30.0):
    batch, classes = draw(st.integers(1, 8)), draw(st.integers(1, 5))
    floats = st.floats(low, high, allow_nan=False, width=32)
    values = draw(st.lists(floats, min_size=batch * classes, max_size=batch * classes))
    labels = draw(st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch))
    return torch.tensor(values).reshape(batch, classes), torch.tensor(labels)


def reference_ce(logits, labels) -> float:
    """−E log softmax(c)_y, written out in float64."""
    c = logits.double()
    return sum((math.log(sum(math.exp(v) for v in row.tolist())) - row[y].item())
               for row, y in zip(c, labels.tolist())) / len(labels)


@PROPERTY
@given(inputs=class_logits())
def test_ac_cross_entropy_equals_the_textbook_form(inputs):
    logits, labels = inputs
    value = classifier_cross_entropy(logits, labels)
    assert value.dtype == torch.float32 and value.item() >= 0.0
    assert value.item() == pytest.approx(reference_ce(logits, labels), rel=1e-5, abs=1e-5)
    assert ac_generator_loss(logits, labels).item() == value.item()
    assert ac_discriminator_loss(logits, labels).item() == value.item()


@PROPERTY
@given(real=class_logits(), fake=class_logits())
def test_ac_discriminator_loss_with_fakes_adds_their_cross_entropy(real, fake):
    (real_logits, real_labels), (fake_logits, fake_labels) = real, fake
    value = ac_discriminator_loss(real_logits, real_labels, fake_logits, fake_labels)
    expected = reference_ce(real_logits, real_labels) + reference_ce(fake_logits, fake_labels)
    assert value.item() == pytest.approx(expected, rel=1e-5, abs=1e-5)


@PROPERTY
@given(inputs=class_logits(), extreme=st.lists(st.sampled_from([-1e4, 0.0, 1e4]), min_size=40, max_size=40))
def test_ac_cross_entropy_is_finite_at_extreme_logits(inputs, extreme):
    shape_source, labels = inputs
    logits = torch.tensor(extreme[:shape_source.numel()]).reshape(shape_source.shape).requires_grad_(True)
    value = classifier_cross_entropy(logits, labels)
    assert torch.isfinite(value)
    (gradient,) = torch.autograd.grad(value, logits)
    assert torch.isfinite(gradient).all()
    # CE = log Σ exp(c) − c_y → max(c) − c_y + log(#maxima) when the logits are far apart
    c = logits.detach().double()
    top = c.max(dim=1).values
    expected = (top - c[torch.arange(len(labels)), labels] + (c == top[:, None]).sum(1).double().log()).mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-6, abs=1e-3)


# ------------------------------------------------------------------------------- ac term
def test_ac_attach_creates_a_k_way_linear_head_on_the_feature_dim():
    term = build_ac(DataSpec((4,), num_classes=7, name="seven"))
    assert term.classifier is None and not list(term.parameters())
    D = TinyD(feature_dim=11)
    term.attach(D)
    assert isinstance(term.classifier, nn.Linear)
    assert (term.classifier.in_features, term.classifier.out_features) == (11, 7)
    assert not any(isinstance(m, (nn.Softmax, nn.LogSoftmax)) for m in term.modules())
    state = term.state_dict()
    assert set(state) == {"classifier.weight", "classifier.bias"}
    assert state["classifier.weight"].shape == (7, 11)
    # a rebuilt term loads the saved head (checkpoints), and a second attach keeps it
    again = build_ac(DataSpec((4,), num_classes=7, name="seven"))
    again.attach(D)
    again.load_state_dict(state)
    again.attach(D)
    assert torch.equal(again.classifier.weight, term.classifier.weight)
    with pytest.raises(gantk.UsageError, match="feature_dim"):
        again.attach(TinyD(feature_dim=5))


def test_ac_declarations_and_options():
    term = build_ac(SPEC)
    assert term.needs == frozenset({"labels"}) and term.default_weight == 1.0 and term.auxiliary
    assert term.fake is False and term.options() == {"fake": False}
    for value, expected in [(True, True), ("true", True), (1, True), ("off", False), (False, False)]:
        assert build_ac(SPEC, fake=value).fake is expected
    for bad in ("sometimes", 2, None):
        with pytest.raises(gantk.UsageError, match="fake"):
            build_ac(SPEC, fake=bad)


@pytest.mark.parametrize("fake", [False, True])
def test_ac_term_is_cross_entropy_on_the_heads_logits(fake):
    torch.manual_seed(0)
    term = attached(build_ac(SPEC, fake=fake))
    D = feature_d()
    real, fake_x = torch.randn(5, 6), torch.randn(5, 6)
    real_labels, fake_labels = torch.tensor([0, 1, 2, 0, 1]), torch.tensor([2, 2, 0, 1, 0])
    real_ce = F.cross_entropy(term.classifier(real), real_labels)
    fake_ce = F.cross_entropy(term.classifier(fake_x), fake_labels)
    d_value = term.discriminator_loss(d_context(D, real, fake_x, real_labels, fake_labels))
    torch.testing.assert_close(d_value, real_ce + fake_ce if fake else real_ce)
    g_value = term.generator_loss(g_context(D, fake_x, fake_labels))
    torch.testing.assert_close(g_value, fake_ce)  # G's loss uses the labels the fakes were generated for
    assert not torch.allclose(g_value, F.cross_entropy(term.classifier(fake_x), real_labels))


def test_ac_fake_option_adds_exactly_the_fake_cross_entropy():
    torch.manual_seed(1)
    real_only, with_fakes = attached(build_ac(SPEC)), attached(build_ac(SPEC, fake=True))
    with_fakes.load_state_dict(real_only.state_dict())
    D = feature_d()
    real, fake_x = torch.randn(4, 6), torch.randn(4, 6)
    real_labels, fake_labels = torch.tensor([0, 1, 2, 1]), torch.tensor([1, 0, 0, 2])
    context = d_context(D, real, fake_x, real_labels, fake_labels)
    difference = with_fakes.discriminator_loss(context) - real_only.discriminator_loss(context)
    torch.testing.assert_close(difference, F.cross_entropy(real_only.classifier(fake_x), fake_labels))
    assert difference.item() > 0.0


def test_ac_term_is_finite_for_huge_features():
    term = attached(build_ac(SPEC, fake=True))
    D = feature_d()
    real = (torch.randn(4, 6) * 1e6).requires_grad_(True)
    value = term.discriminator_loss(d_context(D, real, torch.randn(4, 6) * 1e6, torch.tensor([0, 1, 2, 0]),
                                              torch.tensor([1, 1, 1, 1])))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(real.grad).all()


def test_ac_term_errors_are_clear():
    term = build_ac(SPEC)
    D = feature_d()
    context = d_context(D, torch.randn(2, 6), torch.randn(2, 6), torch.tensor([0, 1]), torch.tensor([1, 0]))
    with pytest.raises(gantk.UsageError, match="attach"):
        term.discriminator_loss(context)
    term.attach(D)
    with pytest.raises(gantk.UsageError, match="labels"):
        term.discriminator_loss(d_context(D, torch.randn(2, 6), torch.randn(2, 6), None, None))
    with pytest.raises(gantk.UsageError, match=r"feature_dim=6.*\(2, 4\)"):
        term.generator_loss(g_context(feature_d(), torch.randn(2, 4), torch.tensor([0, 1])))
    with pytest.raises(gantk.UsageError, match="feature_dim"):
        build_ac(SPEC).attach(nn.Linear(2, 2))
    with pytest.raises(gantk.UsageError, match="labelled"):
        build_ac(UNLABELLED).attach(D)


# ----------------------------------------------------------------------- contrastive term
def test_contrastive_attach_creates_a_projection_and_class_proxies():
    term = build_contrastive(DataSpec((4,), num_classes=5, name="five"))
    assert term.dim == 512 and term.temperature == 1.0  # StudioGAN's defaults
    assert term.options() == {"dim": 512, "temperature": 1.0}
    assert term.needs == frozenset({"labels"}) and term.default_weight == 1.0
    assert not list(term.parameters())
    term.attach(TinyD(feature_dim=9))
    assert isinstance(term.projection, nn.Linear) and isinstance(term.proxies, nn.Embedding)
    assert (term.projection.in_features, term.projection.out_features) == (9, 512)
    assert (term.proxies.num_embeddings, term.proxies.embedding_dim) == (5, 512)
    assert set(term.state_dict()) == {"projection.weight", "projection.bias", "proxies.weight"}
    small = build_contrastive(SPEC, dim=16, temperature=0.5)
    small.attach(TinyD(feature_dim=9))
    assert small.projection.out_features == 16 and small.proxies.weight.shape == (K, 16)
    assert small.temperature == 0.5


def test_contrastive_term_applies_2c_to_real_in_d_and_fake_in_g():
    torch.manual_seed(2)
    term = attached(build_contrastive(SPEC, dim=8, temperature=0.5))
    D = feature_d()
    real, fake_x = torch.randn(6, 6), torch.randn(6, 6)
    real_labels, fake_labels = torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([2, 1, 0, 2, 1, 0])
    d_value = term.discriminator_loss(d_context(D, real, fake_x, real_labels, fake_labels))
    expected_d = reference_2c(term.projection(real).detach(), term.proxies.weight.detach(), real_labels, 0.5)
    assert d_value.item() == pytest.approx(expected_d, rel=1e-5)
    g_value = term.generator_loss(g_context(D, fake_x, fake_labels))
    expected_g = reference_2c(term.projection(fake_x).detach(), term.proxies.weight.detach(), fake_labels, 0.5)
    assert g_value.item() == pytest.approx(expected_g, rel=1e-5)
    wrong_labels = reference_2c(term.projection(fake_x).detach(), term.proxies.weight.detach(), real_labels, 0.5)
    assert g_value.item() != pytest.approx(wrong_labels, rel=1e-3)


@pytest.mark.parametrize("options, match", [({"dim": 0}, "dim"), ({"dim": 2.5}, "dim"), ({"dim": True}, "dim"),
                                            ({"temperature": 0}, "temperature"), ({"temperature": -1.0}, "temperature"),
                                            ({"temperature": "warm"}, "temperature"),
                                            ({"temperature": math.inf}, "temperature")])
def test_contrastive_rejects_bad_options(options, match):
    with pytest.raises(gantk.UsageError, match=match):
        build_contrastive(SPEC, **options)


def test_contrastive_term_errors_are_clear():
    D = feature_d()
    context = d_context(D, torch.randn(2, 6), torch.randn(2, 6), torch.tensor([0, 1]), torch.tensor([1, 0]))
    with pytest.raises(gantk.UsageError, match="attach"):
        build_contrastive(SPEC).discriminator_loss(context)
    term = attached(build_contrastive(SPEC, dim=4))
    with pytest.raises(gantk.UsageError, match="fake labels"):
        term.generator_loss(g_context(D, torch.randn(2, 6), None))
    with pytest.raises(gantk.UsageError, match="labelled"):
        build_contrastive(UNLABELLED).attach(D)


# --------------------------------------------------------------------- registry and composite
@pytest.mark.parametrize("name", ["ac", "contrastive"])
def test_terms_register_and_refuse_unlabelled_data_before_training(name):
    reg = registry()
    entry = reg.get("loss", name)
    assert entry.summary and isinstance(entry.create(SPEC), LossTerm)
    with pytest.raises(gantk.UsageError, match="no labels"):
        build_loss(f"hinge+{name}", UNLABELLED, {}, reg)
    with pytest.raises(gantk.UsageError, match="has no option 'margin'"):
        call_factory("loss", name, entry.factory, SPEC, margin=1.0)


@pytest.mark.parametrize("expression", ["ac", "contrastive", "ac+contrastive", "contrastive+r1"])
def test_conditional_terms_need_an_adversarial_partner(expression):
    with pytest.raises(gantk.UsageError, match="adversarial"):
        build_loss(expression, SPEC, {}, registry())


def test_loss_options_reach_the_terms():
    loss = build_loss("hinge+0.5*contrastive+ac", SPEC, {"contrastive": {"dim": 32, "temperature": 0.5},
                                                        "ac": {"fake": True}}, registry())
    assert loss.weights == [1.0, 0.5, 1.0]
    assert loss.terms[1].options() == {"dim": 32, "temperature": 0.5}
    assert loss.terms[2].fake is True


@pytest.mark.parametrize("expression, term_name", [("hinge+contrastive", "contrastive"), ("ns+ac", "ac"),
                                                   ("hinge+0.5*contrastive", "contrastive")])
def test_composite_trains_d_and_heads_and_reaches_the_fakes(expression, term_name):
    torch.manual_seed(4)
    options = {"contrastive": {"dim": 16}} if "contrastive" in expression else {}
    loss = build_loss(expression, SPEC, options, registry())
    direct = CompositeLoss(loss.names, list(loss.terms), loss.weights)  # the same terms, composed directly
    D = TinyD()
    direct.attach(D)
    heads = list(direct.parameters())
    assert heads  # the term's heads are parameters of the composite (they train with D, saved with it)

    real, fake = torch.randn(8, 4), torch.randn(8, 4)
    real_labels, fake_labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]), torch.tensor([2, 2, 1, 1, 0, 0, 1, 2])
    total, parts = direct.discriminator_loss(d_context(D, real, fake, real_labels, fake_labels))
    weight = direct.weights[1]
    adversarial = parts[f"d/{direct.names[0]}"]
    assert total.item() == pytest.approx(adversarial.item() + weight * parts[f"d/{term_name}"].item(), rel=1e-6)
    assert parts[f"d/{term_name}"].item() > 0.0
    term_value = direct.terms[1].discriminator_loss(d_context(D, real, fake, real_labels, fake_labels))
    (body_gradient,) = torch.autograd.grad(term_value, D.body[0].weight)
    assert body_gradient.abs().sum() > 0  # the term alone trains D's features too
    total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in D.parameters())
    assert D.body[0].weight.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in heads)  # the heads learn in D's update

    # G's update: D and the heads are frozen (as the engine does); the gradient flows through them to the fakes
    for p in [*D.parameters(), *heads]:
        p.requires_grad_(False)
        p.grad = None
    fake = torch.randn(8, 4, requires_grad=True)
    total, parts = direct.generator_loss(g_context(D, fake, fake_labels))
    assert set(parts) == {f"g/{direct.names[0]}", f"g/{term_name}"}
    term_value = direct.terms[1].generator_loss(g_context(D, fake, fake_labels))
    (term_gradient,) = torch.autograd.grad(term_value, fake)
    assert torch.isfinite(term_gradient).all() and term_gradient.abs().sum() > 0  # the term alone reaches the fakes
    total.backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in [*D.parameters(), *heads])


class Batches:
    batch_size = 8

    def __init__(self) -> None:
        self.real, self.labels = torch.randn(8, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])

    def next(self):
        return self.real, self.labels


class HandBuiltSetup:
    """A gantk.TrainingSetup that hands out given networks, SGD optimizers and the batches above.

    ``dtype`` is the autocast dtype of the run (None: fp32).
    """

    spec, device = SPEC, torch.device("cpu")
    config = types.SimpleNamespace(n_critic=1, accumulate=1)

    def __init__(self, G, D, loss, dtype: torch.dtype | None = None) -> None:
        record = gantk.ComponentRecord("generator", "tiny", "tests", "0", {})
        self.networks = gantk.GanNetworks(G, D, loss, record, record)
        self.dtype = dtype

    def build_gan(self):
        return self.networks

    def batches(self):
        return Batches()

    def augmentation(self):
        return None  # no --augment

    def generator_optimizer(self, parameters):
        return torch.optim.SGD(parameters, lr=0.1)

    discriminator_optimizer = generator_optimizer

    def autocast(self):
        return torch.autocast("cpu", dtype=self.dtype) if self.dtype else contextlib.nullcontext()

    def grad_scaler(self):
        return torch.amp.GradScaler("cpu", enabled=False)


@pytest.mark.parametrize("expression", ["hinge+contrastive", "ns+ac"])
def test_one_engine_step_trains_the_heads_with_d(expression):
    torch.manual_seed(5)
    G, D = TinyG(), TinyD()
    loss = build_loss(expression, SPEC, {"contrastive": {"dim": 16}} if "contrastive" in expression else {},
                      registry())
    loss.attach(D)  # before the optimizers, as the engine does
    heads = list(loss.parameters())
    procedure = GanProcedure(HandBuiltSetup(G, D, loss))
    before_heads = [p.detach().clone() for p in heads]
    before_g = [p.detach().clone() for p in G.parameters()]
    values = procedure.run(0)
    assert all(torch.isfinite(v) for v in values.values())
    name = loss.names[1]
    assert {f"d/{name}", f"g/{name}"} <= set(values)
    assert all(not torch.equal(b, p) for b, p in zip(before_heads, heads))
    assert any(not torch.equal(b, p) for b, p in zip(before_g, G.parameters()))
    assert all(p.requires_grad for p in heads)


class PrecisionProbe(LossTerm):
    """Records the dtypes and the autocast state each phase hands a loss term."""

    auxiliary = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, tuple] = {}

    def record(self, phase: str, step) -> None:
        out = step.fake_out
        self.seen[phase] = (out.logits.dtype, out.features.dtype, torch.is_autocast_enabled("cpu"))

    def discriminator_loss(self, step: DiscriminatorPhase) -> torch.Tensor:
        self.record("d", step)
        again = step.discriminator(step.real, step.real_labels)  # an extra D pass, as the GP makes
        self.seen["d again"] = (again.logits.dtype, again.features.dtype, torch.is_autocast_enabled("cpu"))
        return again.logits.mean() * 0

    def generator_loss(self, step: GeneratorPhase) -> torch.Tensor:
        self.record("g", step)
        return step.fake_out.logits.mean() * 0


@pytest.mark.parametrize("expression", ["hinge+contrastive+probe", "ns+ac+probe"])
def test_under_bf16_autocast_loss_terms_get_float32_outputs_of_d(expression):
    torch.manual_seed(6)
    reg = registry()
    reg.add_plugin(types.SimpleNamespace(register_losses=gantk.hookimpl(lambda register: register(
        "probe", lambda spec: PrecisionProbe()))))
    loss = build_loss(expression, SPEC, {"contrastive": {"dim": 16}} if "contrastive" in expression else {}, reg)
    G, D = TinyG(), TinyD()
    loss.attach(D)
    d_output_dtypes = []
    D.register_forward_hook(lambda module, inputs, output: d_output_dtypes.append(output.logits.dtype))
    procedure = GanProcedure(HandBuiltSetup(G, D, loss, dtype=torch.bfloat16))
    values = procedure.run(0)
    assert d_output_dtypes == [torch.bfloat16] * 4  # D ran in the run's precision: real, fake, again; G's fake
    float32_in_the_region = (torch.float32, torch.float32, True)  # terms run in the phase's autocast region
    assert loss.terms[2].seen == {"d": float32_in_the_region, "d again": float32_in_the_region,
                                  "g": float32_in_the_region}
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in values.values())
