"""Training throughput of each image architecture, fp32 against bf16 autocast on this machine.

For ``dcgan``, ``resnet`` (also at width 32, as docs/results.md trains it), ``resnet`` with
self-attention (on the maps of half the image side in G and D: ``attention=32`` at 64 px) and
``stylegan2`` (when a plugin registers it; skipped otherwise), each with its default options, on a
batch of 64 colour images of 64×64 (``--batch``, ``--size``): one training step is one D update
(hinge loss on a real and a generated batch: forward and backward through D, G forward) and one G
update (G and D forward, backward through both), as the ``gan`` procedure runs them with
``--n-critic 1``. Printed: images per second of such steps (the batch over the step's time) in
fp32 and in bf16 (``torch.autocast`` on the CPU), and bf16/fp32. As in training, image tensors and
networks are channels-last on a CPU, and the bf16 networks get gantk's bf16 CPU convolutions
(``--cpu-kernels off``: PyTorch's stock ones). Each rate is the median over ``--rounds`` timed
windows of ``--steps`` steps, after ``--warmup`` steps.

    python benchmarks/architectures.py [--batch 64] [--size 64] [--steps 5] [--warmup 2] [--rounds 3]
                                       [--precisions fp32,bf16] [--cpu-kernels auto|off] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import contextlib
import os

import torch
import torch.nn.functional as F

import gantk
from gantk.accel import enable_cpu_kernels
from gantk.protocols import DataSpec
from timing import images_per_second  # benchmarks/timing.py

#: label -> (architecture, options of G and D as a function of the image side)
ARCHITECTURES = {"dcgan": ("dcgan", lambda side: {}), "resnet": ("resnet", lambda side: {}),
                 "resnet-width32": ("resnet", lambda side: {"width": 32}),  # the results table's CPU-sized SNGAN
                 "resnet+attention": ("resnet", lambda side: {"attention": side // 2}),
                 "stylegan2": ("stylegan2", lambda side: {})}


def build(name: str, options: dict, spec: DataSpec, device: torch.device, dtype: torch.dtype | None,
          cpu_kernels: str):
    """G, D and their Adam optimizers (2e-4, (0, 0.9)), laid out as training lays them out."""
    registry = gantk.get_registry()
    generator = registry.get("generator", name).create(spec, **options).to(device)
    discriminator = registry.get("discriminator", name).create(spec, **options).to(device)
    if device.type == "cpu":
        generator, discriminator = (m.to(memory_format=torch.channels_last) for m in (generator, discriminator))
    enable_cpu_kernels([generator, discriminator], device, dtype, cpu_kernels)
    optimizers = [torch.optim.Adam(m.parameters(), 2e-4, betas=(0.0, 0.9)) for m in (generator, discriminator)]
    return generator, discriminator, optimizers


def training_step(generator, discriminator, optimizers, real: torch.Tensor, dtype: torch.dtype | None) -> None:
    """One hinge-loss D update and one G update (Lim & Ye 2017; SNGAN's loss)."""
    g_optimizer, d_optimizer = optimizers
    autocast = torch.autocast(real.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    z = torch.randn(real.shape[0], generator.z_dim, device=real.device)
    with autocast:
        fake = generator(z)
        # L_D = E relu(1 − D(x)) + E relu(1 + D(G(z)))
        d_loss = F.relu(1 - discriminator(real).logits).mean() + F.relu(1 + discriminator(fake.detach()).logits).mean()
    d_optimizer.zero_grad(set_to_none=True)
    d_loss.float().backward()
    d_optimizer.step()
    with autocast:
        g_loss = -discriminator(generator(z)).logits.mean()  # L_G = −E D(G(z))
    g_optimizer.zero_grad(set_to_none=True)
    g_loss.float().backward()
    g_optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="steps per timed window")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--cpu-kernels", default="auto", choices=("auto", "off"))
    parser.add_argument("--only", default="", help="comma-separated labels to run (default: all)")
    parser.add_argument("--width", type=int, default=None,
                        help="width of dcgan and resnet (a quick smoke run; the defaults are the papers')")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    spec = DataSpec((3, args.size, args.size), name="benchmark")
    registered = {entry.name for entry in gantk.get_registry().list("generator")}
    wanted = [label for label in ARCHITECTURES if not args.only or label in args.only.split(",")]
    print(f"{os.cpu_count()} CPUs, {torch.get_num_threads()} threads, torch {torch.__version__}, {device}; "
          f"batch {args.batch} of 3×{args.size}×{args.size}; one D and one G update per step (hinge)")
    print(f"{'architecture':<18}{'G params':>12}{'D params':>12}"
          + "".join(f"{p + ' img/s':>12}" for p in args.precisions.split(",")) + f"{'bf16/fp32':>11}")
    real = torch.rand(args.batch, *spec.shape, device=device).mul(2).sub(1)
    if device.type == "cpu":
        real = real.contiguous(memory_format=torch.channels_last)
    for label in wanted:
        name, options_for = ARCHITECTURES[label]
        options = options_for(args.size)
        if name not in registered:
            print(f"{label:<18}skipped: no '{name}' architecture is registered")
            continue
        if args.width is not None and name in ("dcgan", "resnet"):
            options = {**options, "width": args.width}
        rates, counts = {}, None
        for precision in args.precisions.split(","):
            dtype = torch.bfloat16 if precision == "bf16" else None
            torch.manual_seed(0)
            networks = build(name, options, spec, device, dtype, args.cpu_kernels)
            counts = [sum(p.numel() for p in m.parameters()) for m in networks[:2]]
            rates[precision] = images_per_second(lambda: training_step(*networks, real, dtype), args.batch,
                                                 args.steps, args.warmup, args.rounds, device)
        ratio = rates["bf16"] / rates["fp32"] if {"bf16", "fp32"} <= rates.keys() else float("nan")
        print(f"{label:<18}{counts[0]:>12,}{counts[1]:>12,}" + "".join(f"{r:>12.1f}" for r in rates.values())
              + f"{ratio:>11.2f}")


if __name__ == "__main__":
    main()
