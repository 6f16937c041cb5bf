"""The relativistic-average losses ``ragan`` and ``rahinge`` (Jolicoeur-Martineau 2018), and the fresh real
logits the ``gan`` procedure gives G's phase when a term needs them.

The properties are checked against the textbook forms of ALGORITHMS.md §1, written out naively in
plain Python floats: Δr = C(x) − E C(x~), Δf = C(x~) − E C(x);
ragan D −E log σ(Δr) − E log(1 − σ(Δf)), G −E log σ(Δf) − E log(1 − σ(Δr));
rahinge D E max(0, 1 − Δr) + E max(0, 1 + Δf), G E max(0, 1 + Δr) + E max(0, 1 − Δf).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from test_conditional_losses import HandBuiltSetup, TinyD, TinyG

import gantk
from gantk.engine.loss_composition import CompositeLoss
from gantk.plugins.procedures.gan import GanProcedure
from gantk.protocols import DiscriminatorOutput, DiscriminatorPhase, GeneratorPhase, LossTerm
from engine_helpers import loss_records, tiny_cli_args

PROPERTY = settings(max_examples=60, deadline=None)
NAMES = ["ragan", "rahinge"]


def logit_lists(low: float = -10.0, high: float = 10.0):
    return st.lists(st.floats(low, high, allow_nan=False, width=32), min_size=1, max_size=16)


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def log_sigmoid(t: float) -> float:
    return math.log(1.0 / (1.0 + math.exp(-t)))  # log σ(t), naive


def log_one_minus_sigmoid(t: float) -> float:
    return math.log(1.0 - 1.0 / (1.0 + math.exp(-t)))  # log(1 − σ(t)), naive


def textbook(name: str, real: list[float], fake: list[float]) -> tuple[float, float]:
    """(D's loss, G's loss) of ``name`` from ALGORITHMS.md §1, one sample at a time."""
    delta_r = [r - mean(fake) for r in real]  # Δr = C(x) − E C(x~)
    delta_f = [f - mean(real) for f in fake]  # Δf = C(x~) − E C(x)
    if name == "ragan":
        d = -mean([log_sigmoid(t) for t in delta_r]) - mean([log_one_minus_sigmoid(t) for t in delta_f])
        g = -mean([log_sigmoid(t) for t in delta_f]) - mean([log_one_minus_sigmoid(t) for t in delta_r])
    else:
        d = mean([max(0.0, 1 - t) for t in delta_r]) + mean([max(0.0, 1 + t) for t in delta_f])
        g = mean([max(0.0, 1 + t) for t in delta_r]) + mean([max(0.0, 1 - t) for t in delta_f])
    return d, g


def term(name: str) -> LossTerm:
    return gantk.get_registry().create("loss", name, gantk.DataSpec((1,)))


def identity_d(x, y=None):
    """D whose logits are its (B,) inputs: the tests choose the logits directly."""
    return DiscriminatorOutput(x, x[:, None])


def losses(name: str, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(D's loss, G's loss) of the registered term, through the phases the training step builds."""
    loss = term(name)
    d = loss.discriminator_loss(DiscriminatorPhase(real, fake, None, None, identity_d(real), identity_d(fake),
                                                   identity_d))
    g = loss.generator_loss(GeneratorPhase(fake, None, identity_d(fake), identity_d, 0, real, None, identity_d(real)))
    return d, g


# ----------------------------------------------------------------------------------- maths
@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(real=logit_lists(), fake=logit_lists())
def test_equals_the_textbook_form(name, real, fake):
    d, g = losses(name, torch.tensor(real), torch.tensor(fake))
    expected_d, expected_g = textbook(name, real, fake)
    assert d.item() == pytest.approx(expected_d, rel=1e-5, abs=1e-5)
    assert g.item() == pytest.approx(expected_g, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(real=logit_lists(-20, 20), fake=logit_lists(-20, 20), shift=st.floats(-1e3, 1e3, width=32))
def test_adding_a_constant_to_every_logit_changes_nothing(name, real, fake, shift):
    real_t, fake_t = torch.tensor(real), torch.tensor(fake)
    before, after = losses(name, real_t, fake_t), losses(name, real_t + shift, fake_t + shift)
    for b, a in zip(before, after):  # the shifted logits are rounded to float32 (steps of 6e-5 at 1e3)
        assert a.item() == pytest.approx(b.item(), rel=1e-3, abs=1e-3)


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(real=logit_lists(-20, 20), fake=logit_lists(-20, 20))
def test_g_loss_is_d_loss_with_real_and_fake_swapped(name, real, fake):
    real_t, fake_t = torch.tensor(real), torch.tensor(fake)
    _, g = losses(name, real_t, fake_t)
    d_swapped, _ = losses(name, fake_t, real_t)
    assert torch.equal(g, d_swapped)


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(data=st.data(), real=logit_lists(-20, 20), fake=logit_lists(-20, 20))
def test_the_order_of_a_batch_does_not_matter(name, data, real, fake):
    real_order = data.draw(st.permutations(range(len(real))))
    fake_order = data.draw(st.permutations(range(len(fake))))
    shuffled = losses(name, torch.tensor([real[i] for i in real_order]), torch.tensor([fake[i] for i in fake_order]))
    for s, o in zip(shuffled, losses(name, torch.tensor(real), torch.tensor(fake))):
        assert s.item() == pytest.approx(o.item(), rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(real=st.lists(st.sampled_from([-1e4, 0.0, 1e4]), min_size=1, max_size=8),
       fake=st.lists(st.sampled_from([-1e4, 0.0, 1e4]), min_size=1, max_size=8))
def test_finite_with_finite_gradients_at_logits_of_1e4(name, real, fake):
    real_t, fake_t = torch.tensor(real, requires_grad=True), torch.tensor(fake, requires_grad=True)
    for value in losses(name, real_t, fake_t):
        assert torch.isfinite(value)
        gradients = torch.autograd.grad(value, (real_t, fake_t), allow_unused=True, materialize_grads=True)
        assert all(torch.isfinite(g).all() for g in gradients)
    if name == "ragan":  # sp(t) = max(t, 0) + log(1 + e^−|t|): the exact value, not a clamped log(0)
        r, f = torch.tensor(real, dtype=torch.float64), torch.tensor(fake, dtype=torch.float64)
        expected = F.softplus(-(r - f.mean())).mean() + F.softplus(f - r.mean()).mean()
        assert losses(name, real_t, fake_t)[0].item() == pytest.approx(expected.item(), rel=1e-6)


# -------------------------------------------------------------------------- the training step
class GeneratorPhaseRecorder(LossTerm):
    """An auxiliary term that keeps the G phase it was given (and optionally declares the real-logits need)."""

    auxiliary = True

    def __init__(self, needs: frozenset[str]) -> None:
        super().__init__()
        self.needs = needs
        self.phase: GeneratorPhase | None = None

    def generator_loss(self, step: GeneratorPhase) -> torch.Tensor:
        self.phase = step
        return step.fake_out.logits.mean() * 0


def one_step(needs: frozenset[str]) -> tuple[GeneratorPhaseRecorder, GanProcedure, TinyD, int]:
    """One ``gan`` step with hinge + a recorder; returns the recorder, the procedure, D before it and D's calls."""
    torch.manual_seed(7)
    G, D = TinyG(), TinyD()
    recorder = GeneratorPhaseRecorder(needs)
    loss = CompositeLoss(["hinge", "recorder"], [term("hinge"), recorder], [1.0, 1.0])
    calls = []
    D.register_forward_hook(lambda *_: calls.append(1))
    procedure = GanProcedure(HandBuiltSetup(G, D, loss))
    before = copy.deepcopy(D)
    procedure.run(0)
    return recorder, procedure, before, len(calls)


def test_g_phase_gets_d_on_the_latest_real_batch_with_the_weights_after_the_d_update():
    recorder, procedure, before, calls = one_step(frozenset({"real_in_generator_phase"}))
    phase = recorder.phase
    real, labels = procedure.batches.next()  # the test's batches give the same batch every time
    assert torch.equal(phase.real, real) and torch.equal(phase.real_labels, labels)
    with torch.no_grad():
        now, stale = procedure.discriminator(real, labels).logits, before(real, labels).logits
    assert torch.equal(phase.real_out.logits, now)  # D's current weights: computed afresh in G's phase
    assert not torch.allclose(phase.real_out.logits, stale)  # not the value from before D's update
    assert not phase.real_out.logits.requires_grad  # no gradient reaches D through it
    assert calls == 4  # D on real and fake in D's phase; on fake and again on real in G's phase


def test_no_extra_d_pass_unless_a_term_needs_it():
    recorder, _, _, calls = one_step(frozenset())
    assert recorder.phase.real is None and recorder.phase.real_out is None
    assert calls == 3


def test_gantk_train_with_rahinge_logs_its_terms(tmp_path, cli):
    result = cli(*tiny_cli_args("--loss", "rahinge", "--steps", "3", "--runs-dir", str(tmp_path), "--name", "r"))
    assert result.exit_code == 0, result.output
    lines = loss_records(tmp_path / "r")
    assert [line["step"] for line in lines] == [1, 2, 3]
    assert all(math.isfinite(line["g/rahinge"]) and math.isfinite(line["d/rahinge"]) for line in lines)

