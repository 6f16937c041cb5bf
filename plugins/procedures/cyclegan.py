"""The ``cyclegan`` procedure: unpaired image-to-image translation (Zhu et al. 2017, "Unpaired Image-to-Image
Translation using Cycle-Consistent Adversarial Networks", arXiv:1703.10593).

Two generators, G: A→B and F: B→A (``--gen``, built twice: an image-to-image generator such as
``resnet-translator``), and two discriminators, D_A on domain A and D_B on domain B (``--disc``,
built twice, e.g. ``patchgan``). The data set has two domains (:attr:`gantk.Dataset.domain_data`),
drawn as independently shuffled, unpaired batches a and b. One step:

- **G and F** (one optimizer over both), with D_A and D_B frozen:
  the adversarial loss of ``--loss`` (``lsgan`` in the paper) on D_B(G(a)) and D_A(F(b)),
  cycle consistency λ‖F(G(a)) − a‖₁ + λ‖G(F(b)) − b‖₁ (λ = ``cycle``, 10),
  identity λ·μ(‖G(b) − b‖₁ + ‖F(a) − a‖₁) (μ = ``identity``, 0.5; 0 turns it off);
- **D_A and D_B** (one optimizer over both): the adversarial loss on real a vs F(b) and real b vs
  G(a), the fakes drawn through a history pool of ``pool`` (50) past fakes per discriminator;
  each D's loss is halved, as in the paper, to slow D relative to G.

Every term is logged on its own: ``g_a2b/<term>``, ``g_b2a/<term>``, ``g/cycle_a``, ``g/cycle_b``,
``g/identity_a``, ``g/identity_b``, ``d_a/<term>``, ``d_b/<term>``, and the totals. Any adversarial
loss of the registry works, regularisers included (``lsgan+r1`` penalises each D on its own reals).
The paper's learning rate (constant, then linear decay to 0 over the second half) is the engine's
``--lr-schedule linear-decay:50%``; checkpoints, exact resume, precision and EMA come from the engine.

Exports a :class:`gantk.Translator` (kind ``translator``, both directions in one file) and draws its
own training pictures: per domain, rows of inputs, translations, reconstructions and, when the data
set is paired, the true counterparts.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

import gantk
from gantk.engine.build import check_self_supervised_discriminator, check_style_generator
from gantk.engine.precision import backward, optimizer_step
from gantk.errors import UsageError
from gantk.options import number_in, positive_int
from gantk.plugins.procedures._image_pool import ImagePool
from gantk.protocols import ComponentRecord, DiscriminatorOutput, DiscriminatorPhase, GeneratorPhase, TrainingSetup
from gantk.protocols import Translator, signed_unit

#: images per domain in the training pictures
PREVIEW_IMAGES = 8
TWO_DOMAIN_DATA = ("a data set with two domains: emoji-styles (Noto and Twemoji emoji), a folder with trainA/ and "
                   "trainB/ subfolders (--dataset folder --data-root DIR), or two image data sets of one shape "
                   "paired with --dataset-b NAME")


def l1(x: Tensor, target: Tensor) -> Tensor:
    """Mean absolute difference ‖x − target‖₁ / n, in float32."""
    return (x.float() - target.float()).abs().mean()


def consistency_losses(translator: Translator, real_a: Tensor, real_b: Tensor, fake_a: Tensor, fake_b: Tensor,
                       cycle: float, identity: float) -> dict[str, Tensor]:
    """The cycle-consistency and identity terms of G's loss (Zhu et al. 2017, eq. 2 and §5.2), by log name.

    ``fake_b`` = G(a) and ``fake_a`` = F(b) were made by ``translator`` (G = a2b, F = b2a); λ = ``cycle``,
    μ = ``identity`` (0: no identity terms).
    """
    terms = {"g/cycle_a": cycle * l1(translator.b2a(fake_b), real_a),  # λ‖F(G(a)) − a‖₁
             "g/cycle_b": cycle * l1(translator.a2b(fake_a), real_b)}  # λ‖G(F(b)) − b‖₁
    if identity > 0:
        terms["g/identity_a"] = cycle * identity * l1(translator.b2a(real_a), real_a)  # λμ‖F(a) − a‖₁
        terms["g/identity_b"] = cycle * identity * l1(translator.a2b(real_b), real_b)  # λμ‖G(b) − b‖₁
    return terms


class CycleGanProcedure:
    """G: A→B and F: B→A with cycle and identity losses; D_A and D_B on history pools of fakes."""

    def __init__(self, setup: TrainingSetup, *, cycle: float = 10.0, identity: float = 0.5, pool: int = 50) -> None:
        self.cycle = number_in("procedure cyclegan", "cycle", cycle, at_least=0.0)
        self.identity = number_in("procedure cyclegan", "identity", identity, at_least=0.0)
        pool = 0 if str(pool).strip() == "0" else positive_int("procedure cyclegan", "pool", pool,
                                                                hint="the number of past fakes kept; 0 turns it off")
        config, dataset = setup.config, setup.dataset
        if len(dataset.domain_data) != 2:
            raise UsageError(f"The procedure 'cyclegan' translates between two domains, but the data set "
                             f"'{config.dataset}' has one. Give {TWO_DOMAIN_DATA}.")
        for flag, value, default in (("--accumulate", config.accumulate, 1), ("--n-critic", config.n_critic, 1)):
            if value != default:
                raise UsageError(f"The procedure 'cyclegan' does not take {flag} (got {value}): it alternates one "
                                 f"G update and one D update per step. Leave {flag} at {default}.")
        if config.augment is not None:
            raise UsageError("The procedure 'cyclegan' does not apply --augment yet: drop it.")
        a2b, record = setup.build_generator()
        if int(a2b.z_dim) != 0:
            raise UsageError(f"The generator '{config.gen}' makes images from noise (z_dim {a2b.z_dim}); the "
                             "procedure 'cyclegan' needs one that maps images to images: --gen resnet-translator.")
        self.translator = Translator(a2b, setup.build_generator()[0], dataset.domains)
        self.record = ComponentRecord("translator", record.name, record.package, record.version, record.options)
        self.discriminators = {side: setup.build_discriminator()[0] for side in ("a", "b")}
        self.losses = {side: setup.build_loss() for side in ("a", "b")}
        for side, loss in self.losses.items():
            check_style_generator(loss, a2b, config.gen)
            check_self_supervised_discriminator(loss, self.discriminators[side], config.disc)
            loss.attach(self.discriminators[side])  # heads sized by D's features, one set per D
        shape = setup.spec.shape
        self.pools = {side: ImagePool(pool, shape).to(setup.device) for side in ("a", "b")}
        self.g_optimizer = setup.generator_optimizer(self.translator.parameters(), **self._lazy("generator"))
        self._d_side = [p for side in ("a", "b") for p in (*self.discriminators[side].parameters(),
                                                            *self.losses[side].parameters())]
        self.d_optimizer = setup.discriminator_optimizer(self._d_side, **self._lazy("discriminator"))
        self._d_side = [p for p in self._d_side if p.requires_grad]
        self.batches = {side: setup.batches(domain) for domain, side in enumerate(("a", "b"))}
        self.needs = self.losses["a"].needs
        self.autocast, self.device = setup.autocast, setup.device
        self.d_scaler, self.g_scaler = setup.grad_scaler(), setup.grad_scaler()
        self.paired = dataset.paired
        self.preview_images = [spread_images(part, PREVIEW_IMAGES).to(setup.device) for part in dataset.domain_data]
        self.preview_row = min(len(images) for images in self.preview_images)

    def _lazy(self, network: str) -> dict[str, int]:
        interval = self.losses["a"].lazy_interval(network)
        return {"lazy_interval": interval} if interval > 1 else {}

    # ------------------------------------------------------------------ the Procedure protocol
    def modules(self) -> dict[str, nn.Module]:
        return {"translator": self.translator, "d_a": self.discriminators["a"], "d_b": self.discriminators["b"],
                "loss_a": self.losses["a"], "loss_b": self.losses["b"], "pool_a": self.pools["a"],
                "pool_b": self.pools["b"]}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.g_optimizer, "discriminator": self.d_optimizer}

    def exports(self) -> dict[str, ComponentRecord]:
        return {"translator": self.record}

    def state(self) -> dict[str, Any]:
        """Both domains' batch order and the loss scalers (fp16 only), saved with the checkpoint."""
        return {"batches_a": self.batches["a"].state(), "batches_b": self.batches["b"].state(),
                "d_scaler": self.d_scaler.state_dict(), "g_scaler": self.g_scaler.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        for side in ("a", "b"):
            self.batches[side].load_state(state[f"batches_{side}"])
        if state.get("d_scaler"):
            self.d_scaler.load_state_dict(state["d_scaler"])
        if state.get("g_scaler"):
            self.g_scaler.load_state_dict(state["g_scaler"])

    def run(self, step: int) -> dict[str, Tensor]:
        """One G/F update, then one D_A/D_B update on the pooled fakes; the detached loss values."""
        real_a, real_b = self.batches["a"].next()[0], self.batches["b"].next()[0]
        fake_a, fake_b, g_total, g_parts = self._generator_update(step, real_a, real_b)
        d_total, d_parts = self._discriminator_update(step, real_a, real_b, fake_a, fake_b)
        return {**g_parts, "g/total": g_total, **d_parts, "d/total": d_total}

    # ------------------------------------------------------------------ the training pictures
    def preview(self, translator: nn.Module) -> Tensor:
        """Per domain: the inputs, their translations, the translations translated back, and (paired data) the
        true counterparts, a row of each."""
        rows = []
        for source, target, there, back in ((0, 1, "a2b", "b2a"), (1, 0, "b2a", "a2b")):
            inputs = self.preview_images[source][:self.preview_row]
            translated = translator(inputs, there)
            rows += [inputs, translated, translator(translated, back)]
            if self.paired:
                rows.append(self.preview_images[target][:self.preview_row])
        return torch.cat([row.float() for row in rows])

    # ------------------------------------------------------------------ the two phases
    def _judge(self, side: str, x: Tensor, labels: Tensor | None = None) -> DiscriminatorOutput:
        """D_side(x) with float32 outputs (called under the phase's autocast)."""
        return self.discriminators[side](x, labels).to_float32()

    def _real_for_generator_phase(self, side: str, real: Tensor) -> tuple[Tensor | None, None, DiscriminatorOutput | None]:
        """The real batch of D_side's domain and D_side's output on it, for terms that need
        ``"real_in_generator_phase"`` (relativistic losses); Nones otherwise."""
        if "real_in_generator_phase" not in self.needs:
            return None, None, None
        with torch.no_grad():
            return real, None, self._judge(side, real)

    def _adversarial_g(self, step: int, side: str, fake: Tensor, real: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The generator's adversarial loss against D_side, whose domain ``fake`` is translated into."""
        context = GeneratorPhase(fake, None, self._judge(side, fake), lambda x, y=None: self._judge(side, x, y), step,
                                 *self._real_for_generator_phase(side, real))
        return self.losses[side].generator_loss(context)

    def _generator_update(self, step: int, real_a: Tensor, real_b: Tensor
                          ) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        for parameter in self._d_side:  # D's weights get no gradient from G's loss: skip computing it
            parameter.requires_grad_(False)
        self.g_optimizer.zero_grad(set_to_none=True)
        translator = self.translator
        try:
            with self.autocast():
                fake_b, fake_a = translator.a2b(real_a), translator.b2a(real_b)  # G(a), F(b)
                adv_a2b, parts_a2b = self._adversarial_g(step, "b", fake_b, real_b)
                adv_b2a, parts_b2a = self._adversarial_g(step, "a", fake_a, real_a)
                terms = consistency_losses(translator, real_a, real_b, fake_a, fake_b, self.cycle, self.identity)
                total = adv_a2b + adv_b2a + sum(terms.values())
            backward(total, self.g_scaler)
        finally:
            for parameter in self._d_side:
                parameter.requires_grad_(True)
        optimizer_step(self.g_optimizer, self.g_scaler)  # under torchrun: gradients averaged over the ranks first
        parts = {**renamed(parts_a2b, "g", "g_a2b"), **renamed(parts_b2a, "g", "g_b2a"),
                 **{name: value.detach() for name, value in terms.items()}}
        return fake_a.detach(), fake_b.detach(), total.detach(), parts

    def _discriminator_loss(self, step: int, side: str, real: Tensor, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """D_side's loss on its domain's real batch and a pooled batch of fakes translated into that domain."""
        fake = self.pools[side](fake)
        if "real_grad" in self.needs:
            real = real.detach().requires_grad_(True)
        context = DiscriminatorPhase(real, fake, None, None, self._judge(side, real), self._judge(side, fake),
                                     lambda x, y=None: self._judge(side, x, y), step, needs=self.needs)
        total, parts = self.losses[side].discriminator_loss(context)
        return 0.5 * total, renamed(parts, "d", f"d_{side}")  # D's loss halved (Zhu et al. 2017, §7.1)

    def _discriminator_update(self, step: int, real_a: Tensor, real_b: Tensor, fake_a: Tensor, fake_b: Tensor
                              ) -> tuple[Tensor, dict[str, Tensor]]:
        self.d_optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            total_a, parts_a = self._discriminator_loss(step, "a", real_a, fake_a)
            total_b, parts_b = self._discriminator_loss(step, "b", real_b, fake_b)
            total = total_a + total_b
        backward(total, self.d_scaler)
        optimizer_step(self.d_optimizer, self.d_scaler)
        for side in ("a", "b"):
            self.losses[side].after_discriminator_update(self.discriminators[side])
        return total.detach(), {**parts_a, "d_a/total": total_a.detach(), **parts_b, "d_b/total": total_b.detach()}


def renamed(parts: dict[str, Tensor], prefix: str, new_prefix: str) -> dict[str, Tensor]:
    """``{"d/lsgan": v}`` as ``{"d_a/lsgan": v}``: a composite loss's terms under the name of the network they train."""
    return {new_prefix + name[len(prefix):]: value for name, value in parts.items()}


def spread_images(data: gantk.Dataset, count: int) -> Tensor:
    """``count`` images spread evenly over one domain (index-aligned across paired domains), as floats in [-1, 1]."""
    indices = torch.linspace(0, len(data) - 1, min(count, len(data))).round().long().tolist()
    if data.samples is not None:
        return signed_unit(data.samples[indices])
    return torch.stack([signed_unit(torch.as_tensor(data.stream[index][0])) for index in indices])


@gantk.hookimpl
def register_procedures(register):
    register("cyclegan", CycleGanProcedure,
             summary="Unpaired translation between two domains (Zhu 2017): G, F, D_A, D_B, cycle and identity losses")
