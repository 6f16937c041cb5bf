"""The default per-step procedure: noise → sample GAN training (Goodfellow et al. 2014).

One step is a discriminator phase (``n_critic`` updates) followed by one generator update. The
loss terms decide how each loss is computed (including extra D passes, e.g. the gradient
penalty); this object decides when. A different procedure (CycleGAN's two-generator step, say)
implements the same members (modules, optimizers, run, state, load_state) and reuses the training
loop unchanged.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn

from gantk.engine.loss_composition import CompositeLoss
from gantk.engine.precision import autocast
from gantk.protocols import DataSpec, DiscriminatorStep, GeneratorStep


def _backward(loss: Tensor, scaler: torch.amp.GradScaler) -> None:
    """Back-propagate ``loss``, scaled when fp16 loss scaling is on."""
    (scaler.scale(loss) if scaler.is_enabled() else loss).backward()


def _update(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    """One optimizer step (through the scaler, which skips steps with inf/NaN gradients, under fp16)."""
    if scaler.is_enabled():
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()


class StepProcedure(Protocol):
    """What the training loop needs from a per-step procedure."""

    def modules(self) -> dict[str, nn.Module]: ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    def run(self, step: int) -> dict[str, Tensor]: ...

    def state(self) -> dict: ...

    def load_state(self, state: dict) -> None: ...


class NoiseToSampleStep:
    """n_critic discriminator updates on real batches and fresh fakes, then one generator update."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, loss: CompositeLoss,
                 g_optimizer: torch.optim.Optimizer, d_optimizer: torch.optim.Optimizer, batches, spec: DataSpec,
                 *, n_critic: int, device: torch.device, dtype: torch.dtype | None) -> None:
        self.generator, self.discriminator, self.loss = generator, discriminator, loss
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        self.batches, self.spec, self.n_critic = batches, spec, n_critic
        self.device, self.dtype = device, dtype
        self.real_grad = "real_grad" in loss.needs
        self._d_side = [p for p in (*discriminator.parameters(), *loss.parameters()) if p.requires_grad]
        # fp16 needs loss scaling (Micikevicius et al. 2018); with bf16 or fp32 the scalers do nothing
        fp16 = dtype is torch.float16
        self.d_scaler = torch.amp.GradScaler(device.type, enabled=fp16)
        self.g_scaler = torch.amp.GradScaler(device.type, enabled=fp16)

    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator, "loss": self.loss}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.g_optimizer, "discriminator": self.d_optimizer}

    def state(self) -> dict:
        """Loss-scaler state (fp16 only), saved with the checkpoint."""
        return {"d_scaler": self.d_scaler.state_dict(), "g_scaler": self.g_scaler.state_dict()}

    def load_state(self, state: dict) -> None:
        if state.get("d_scaler"):
            self.d_scaler.load_state_dict(state["d_scaler"])
        if state.get("g_scaler"):
            self.g_scaler.load_state_dict(state["g_scaler"])

    def _noise(self, n: int) -> tuple[Tensor, Tensor | None]:
        z = torch.randn(n, self.generator.z_dim, device=self.device)
        labels = torch.randint(self.spec.num_classes, (n,), device=self.device) if self.spec.labelled else None
        return z, labels

    def _discriminator_update(self, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        real, real_labels = self.batches.next()
        z, fake_labels = self._noise(real.shape[0])
        with torch.no_grad(), autocast(self.device, self.dtype):
            fake = self.generator(z, fake_labels)
        if self.real_grad:
            real = real.detach().requires_grad_(True)
        with autocast(self.device, self.dtype):
            context = DiscriminatorStep(real, fake, real_labels, fake_labels, self.discriminator(real, real_labels),
                                        self.discriminator(fake, fake_labels), self.discriminator, step)
            total, parts = self.loss.discriminator_loss(context)
        self.d_optimizer.zero_grad(set_to_none=True)
        _backward(total, self.d_scaler)
        _update(self.d_optimizer, self.d_scaler)
        self.loss.after_discriminator_update(self.discriminator)
        return total, parts

    def _generator_update(self, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        z, fake_labels = self._noise(self.batches.batch_size)
        for parameter in self._d_side:  # D's weights get no gradient from G's loss: skip computing it
            parameter.requires_grad_(False)
        try:
            with autocast(self.device, self.dtype):
                fake = self.generator(z, fake_labels)
                context = GeneratorStep(fake, fake_labels, self.discriminator(fake, fake_labels), self.discriminator, step)
                total, parts = self.loss.generator_loss(context)
            self.g_optimizer.zero_grad(set_to_none=True)
            _backward(total, self.g_scaler)
        finally:
            for parameter in self._d_side:
                parameter.requires_grad_(True)
        _update(self.g_optimizer, self.g_scaler)
        return total, parts

    def run(self, step: int) -> dict[str, Tensor]:
        """One training step; returns the detached loss values (no host synchronisation)."""
        for _ in range(self.n_critic):
            d_total, d_parts = self._discriminator_update(step)
        g_total, g_parts = self._generator_update(step)
        # terms before totals, so that the non-finite guard names the term that failed first
        return {**d_parts, "d/total": d_total.detach(), **g_parts, "g/total": g_total.detach()}
