"""The ``gan`` procedure: noise → sample GAN training (Goodfellow et al. 2014), gantk's default step.

One step is a discriminator phase (``--n-critic`` updates on real batches and fresh fakes)
followed by one generator update. With ``--accumulate K`` each update runs its batch as K
micro-batches, one after another, back-propagating each one's loss / K before the single
optimizer step; under torchrun each process runs its rows of the global batch
(:mod:`gantk.distributed`) and the engine averages the gradients before every step. The loss terms decide how each loss is computed (including
extra D passes, e.g. the gradient penalty); this procedure decides which networks and phases; the
training loop decides when to log, sample, evaluate and save.

Precision: each phase runs in one autocast region of the run's precision: G, D and the loss
terms. Every D output is cast to float32 once, in :meth:`GanProcedure._discriminate`, so the
terms receive float32 logits and features (their elementwise maths stays float32 under autocast).
When a term needs ``"real_in_generator_phase"`` (relativistic losses), G's phase runs D again on
the latest real batch, with D's current weights.

Augmentation: with ``--augment``, every D input (real and fake, in both phases, and the passes
loss terms make themselves) goes through the augmentation in :meth:`GanProcedure._discriminate`,
which then observes D's logits on each D update's real batch (ADA adjusts its probability there).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

import gantk
from gantk.distributed import local_rows, local_size, world_size
from gantk.errors import UsageError
from gantk.engine.precision import backward, optimizer_step
from gantk.protocols import ComponentRecord, DiscriminatorOutput, DiscriminatorPhase, GeneratorPhase, TrainingSetup


class GanProcedure:
    """n_critic discriminator updates on real batches and fresh fakes, then one generator update."""

    def __init__(self, setup: TrainingSetup) -> None:
        networks = setup.build_gan()
        self.generator, self.discriminator, self.loss = networks.generator, networks.discriminator, networks.loss
        self.records = {"generator": networks.generator_record, "discriminator": networks.discriminator_record}
        # lazy regularisers (every=k) give their network's Adam the paper's adjustment (Karras et al. 2020)
        self.g_optimizer = setup.generator_optimizer(self.generator.parameters(), **self._lazy("generator"))
        self.d_optimizer = setup.discriminator_optimizer([*self.discriminator.parameters(), *self.loss.parameters()],
                                                         **self._lazy("discriminator"))
        self.batches = setup.batches()
        self.spec, self.n_critic, self.device = setup.spec, setup.config.n_critic, setup.device
        self.accumulate = setup.config.accumulate
        if local_size(self.batches.batch_size) % self.accumulate:
            raise UsageError(f"Each process's {local_size(self.batches.batch_size)} rows of the batch cannot be cut "
                             f"into --accumulate {self.accumulate} equal micro-batches: use a --batch-size that is a "
                             f"multiple of {world_size() * self.accumulate} (processes × micro-batches).")
        self.autocast = setup.autocast
        self.loss_needs = self.loss.needs  # every term's needs; D's phase hands them to each term
        self.real_grad = "real_grad" in self.loss_needs
        self.real_in_generator_phase = "real_in_generator_phase" in self.loss_needs
        self._latest_real: list[tuple[Tensor, Tensor | None]] = []  # the last D update's micro-batches, for G's phase
        self._d_side = [p for p in (*self.discriminator.parameters(), *self.loss.parameters()) if p.requires_grad]
        self.d_scaler, self.g_scaler = setup.grad_scaler(), setup.grad_scaler()
        self.augment = setup.augmentation()  # --augment, applied to every D input; None without one

    def _lazy(self, network: str) -> dict[str, int]:
        """``lazy_interval`` for the optimizer of ``network`` when its regularisers run lazily; nothing otherwise (so
        that a setup written before the argument existed still works)."""
        interval = self.loss.lazy_interval(network)
        return {"lazy_interval": interval} if interval > 1 else {}

    # ------------------------------------------------------------------ the Procedure protocol
    def modules(self) -> dict[str, nn.Module]:
        modules = {"generator": self.generator, "discriminator": self.discriminator, "loss": self.loss}
        if self.augment is not None:  # its state (ADA's p) is saved in checkpoints
            modules["augment"] = self.augment
        return modules

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.g_optimizer, "discriminator": self.d_optimizer}

    def exports(self) -> dict[str, ComponentRecord]:
        return dict(self.records)

    def state(self) -> dict[str, Any]:
        """The batch order and the loss scalers (fp16 only), saved with the checkpoint."""
        return {"batches": self.batches.state(), "d_scaler": self.d_scaler.state_dict(),
                "g_scaler": self.g_scaler.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.batches.load_state(state["batches"])
        if state.get("d_scaler"):
            self.d_scaler.load_state_dict(state["d_scaler"])
        if state.get("g_scaler"):
            self.g_scaler.load_state_dict(state["g_scaler"])

    def run(self, step: int) -> dict[str, Tensor]:
        """One training step; returns the detached loss values (no host synchronisation)."""
        for _ in range(self.n_critic):
            d_total, d_parts = self._discriminator_update(step)
        g_total, g_parts = self._generator_update(step)
        logged = self.augment.logged() if self.augment is not None else {}  # ADA's p, for metrics.jsonl
        augment = {f"aug/{key}": value for key, value in logged.items()}
        # terms before totals, so that the non-finite guard names the term that failed first
        return {**d_parts, "d/total": d_total.detach(), **g_parts, "g/total": g_total.detach(), **augment}

    # ------------------------------------------------------------------ batches
    def _noise(self) -> tuple[Tensor, Tensor | None]:
        """This rank's rows of one draw of latents (and fake labels) for the whole global batch
        (the rule of :mod:`gantk.distributed`: every rank draws alike and keeps its rows)."""
        z = torch.randn(self.batches.batch_size, self.generator.z_dim, device=self.device)
        if not self.spec.labelled:
            return local_rows(z), None
        labels = torch.randint(self.spec.num_classes, (self.batches.batch_size,), device=self.device)
        return local_rows(z), local_rows(labels)

    def _micro_batches(self, *tensors: Tensor | None) -> list[tuple[Tensor | None, ...]]:
        """The tensors (this rank's rows of a batch) cut into ``--accumulate`` micro-batches, in order."""
        cut = [t.chunk(self.accumulate) if t is not None else (None,) * self.accumulate for t in tensors]
        return list(zip(*cut))

    def _averaged(self, values: list[tuple[Tensor, dict[str, Tensor]]]) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss total and terms of a phase: the mean over its micro-batches (detached)."""
        if len(values) == 1:
            total, parts = values[0]
            return total.detach(), parts
        totals = torch.stack([total.detach() for total, _ in values]).mean()
        return totals, {key: torch.stack([parts[key] for _, parts in values]).mean() for key in values[0][1]}

    # ------------------------------------------------------------------ the two phases
    def _discriminate(self, x: Tensor, labels: Tensor | None, *, real: bool = False) -> DiscriminatorOutput:
        """D(augment(x), y) cast to float32 (called under the phase's autocast): every D output the loss terms see.

        Every D input goes through ``--augment``, the passes terms make themselves too (``phase.discriminator``:
        the gradient penalty's interpolates, as fakes); R1's gradient is taken with respect to the un-augmented
        real batch, through the augmentation (as in StyleGAN2-ADA)."""
        if self.augment is not None:
            x = self.augment(x, real=real)
        return self.discriminator(x, labels).to_float32()

    def _discriminator_update(self, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        real, real_labels = self.batches.next()
        z, fake_labels = self._noise()
        self.d_optimizer.zero_grad(set_to_none=True)
        values, latest_real, real_logits = [], [], []
        for real, real_labels, z, fake_labels in self._micro_batches(real, real_labels, z, fake_labels):
            total, parts, logits = self._discriminator_loss(step, real, real_labels, z, fake_labels)
            backward(total / self.accumulate, self.d_scaler)  # Σ over micro-batches of (their mean) / K
            values.append((total, parts))
            latest_real.append((real.detach(), real_labels))
            real_logits.append(logits.detach())
        if self.real_in_generator_phase:
            self._latest_real = latest_real
        optimizer_step(self.d_optimizer, self.d_scaler)  # under torchrun: gradients averaged over the ranks first
        self.loss.after_discriminator_update(self.discriminator)
        if self.augment is not None:  # ADA's overfitting heuristic reads D's signs on the real batch
            self.augment.observe(torch.cat(real_logits))
        return self._averaged(values)

    def _discriminator_loss(self, step: int, real: Tensor, real_labels: Tensor | None, z: Tensor,
                            fake_labels: Tensor | None) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """The loss total and terms of one micro-batch, and D's float32 logits on its real samples."""
        with torch.no_grad(), self.autocast():
            fake = self.generator(z, fake_labels)
        if self.real_grad:
            real = real.detach().requires_grad_(True)
        with self.autocast():  # D's passes and the terms share one region (and so autocast's cached weight casts)
            context = DiscriminatorPhase(real, fake, real_labels, fake_labels,
                                         self._discriminate(real, real_labels, real=True),
                                         self._discriminate(fake, fake_labels), self._discriminate, step,
                                         needs=self.loss_needs)
            return *self.loss.discriminator_loss(context), context.real_out.logits

    def _real_for_generator_phase(self, micro_batch: int
                                  ) -> tuple[Tensor | None, Tensor | None, DiscriminatorOutput | None]:
        """The latest real micro-batch, its labels and D's output on it now (D's weights after its update), for
        the terms that need ``"real_in_generator_phase"``; three Nones otherwise (no extra D pass)."""
        if not self.real_in_generator_phase:
            return None, None, None
        real, labels = self._latest_real[micro_batch]
        with torch.no_grad():  # D is frozen in G's phase: its output on real data is a constant for G's loss
            return real, labels, self._discriminate(real, labels, real=True)

    def _generator_update(self, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        z, fake_labels = self._noise()
        for parameter in self._d_side:  # D's weights get no gradient from G's loss: skip computing it
            parameter.requires_grad_(False)
        self.g_optimizer.zero_grad(set_to_none=True)
        values = []
        try:
            for index, (z, fake_labels) in enumerate(self._micro_batches(z, fake_labels)):
                with self.autocast():
                    fake = self.generator(z, fake_labels)
                    context = GeneratorPhase(fake, fake_labels, self._discriminate(fake, fake_labels),
                                             self._discriminate, step, *self._real_for_generator_phase(index),
                                             generator=self.generator, z=z)
                    total, parts = self.loss.generator_loss(context)
                backward(total / self.accumulate, self.g_scaler)
                values.append((total, parts))
        finally:
            for parameter in self._d_side:
                parameter.requires_grad_(True)
        optimizer_step(self.g_optimizer, self.g_scaler)
        return self._averaged(values)


@gantk.hookimpl
def register_procedures(register):
    register("gan", GanProcedure, summary="Noise to sample: n_critic D updates, then one G update (the default)")
