"""Training throughput: the gantk engine against a plain PyTorch loop of the same model and data.

The model is the ContraGAN tutorial's unconditional backbone (ALGORITHMS.md §3: 32×32×3, G from
a 100-d latent through Linear → 128×8×8 → two ConvT up-blocks → Conv 3×3 → tanh; D three stride-2
convs → 256·4·4 → Linear), trained with the non-saturating loss, Adam 2e-4 (0.5, 0.999), batch
128, on 4,096 fixed random images in [-1, 1]. Both loops are defined here; the gantk run gets the
same networks through a plugin registered on the fly, exactly as a third-party package would.

Printed: steps/s of the plain fp32 loop, gantk fp32 and gantk ``auto`` (bf16 where the hardware
does it fast), and their ratios to the plain fp32 loop, measured in one run. Then the same for the
``gan1d`` preset (tiny MLPs, 5 D steps per G step) against a bare loop: per-step overhead.

Each loop runs in its own fresh process (the engine tunes process-wide settings that a plain loop
would not have), in interleaved rounds. Within a process a rate is the median over windows of a few
steps after a warm-up (gantk's own per-window steps/s from metrics.jsonl, which include its loss
read-back); a ratio is taken within each round and the median over rounds is reported, which keeps
the bursts and drifts of a shared machine out of the ratios.

    python benchmarks/throughput.py [--steps 40] [--window 5] [--warmup 5] [--gan1d-steps 1500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import gantk
from gantk.engine.config import TrainConfig
from gantk.protocols import DataSpec, Dataset, DiscriminatorOutput
from gantk.registry import PluginSource, Registry
from gantk.engine.trainer import Trainer

Z_DIM, BATCH, IMAGES = 100, 128, 4096
GAN1D_WINDOW = 100  # gan1d steps per timed window


class TutorialGenerator(nn.Module):
    """ContraGAN tutorial G without the label embedding: z → 128×8×8 → 16 → 32 → 3 channels."""

    conditional, num_classes, options = False, 0, {}  # gantk.Generator's attributes: unconditional, no options

    def __init__(self, z_dim: int = Z_DIM) -> None:
        super().__init__()
        self.z_dim, self.spec = z_dim, DataSpec((3, 32, 32))
        self.project = nn.Sequential(nn.Linear(z_dim, 128 * 8 * 8), nn.BatchNorm1d(128 * 8 * 8), nn.LeakyReLU(0.2))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(128, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),  # 8 → 16
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),  # 16 → 32
            nn.Conv2d(64, 3, 3, 1, 1), nn.Tanh())

    def forward(self, z, y=None):
        return self.up(self.project(z).view(-1, 128, 8, 8))


class TutorialDiscriminator(nn.Module):
    """ContraGAN tutorial D backbone and adversarial head: 32 → 16 → 8 → 4, 256·4·4 features."""

    feature_dim, options = 256 * 4 * 4, {}

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 64, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
            nn.Conv2d(128, 256, 4, 2, 1), nn.BatchNorm2d(256), nn.LeakyReLU(0.2), nn.Flatten())
        self.adversarial = nn.Linear(self.feature_dim, 1)

    def forward(self, x, y=None):
        features = self.body(x)
        return DiscriminatorOutput(self.adversarial(features).squeeze(1), features)


def benchmark_images() -> torch.Tensor:
    return torch.rand(IMAGES, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1


def tutorial_plugin(images: torch.Tensor) -> Registry:
    """A registry with the built-ins plus the tutorial networks and the benchmark data as plugins."""
    plugin = types.ModuleType("throughput_benchmark_plugin")

    def register_generators(register):
        register("tutorial32", lambda spec: TutorialGenerator())

    def register_discriminators(register):
        register("tutorial32", lambda spec: TutorialDiscriminator())

    def register_datasets(register):
        register("bench32", lambda *, data_root=None, image_size=None, download=False:
                 Dataset(DataSpec((3, 32, 32), 0, "bench32"), images))

    for hook in (register_generators, register_discriminators, register_datasets):
        setattr(plugin, hook.__name__, gantk.hookimpl(hook))
    registry = Registry.discover()
    registry.add_plugin(plugin, PluginSource("throughput-benchmark", "0", plugin.__name__, "bench"))
    return registry


def plain_loop_rate(images: torch.Tensor, steps: int, warmup: int, window: int) -> float:
    """The reference: the same networks, data, loss and optimizers in a hand-written fp32 loop."""
    torch.manual_seed(0)
    generator, discriminator = TutorialGenerator(), TutorialDiscriminator()
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step() -> None:
        real = images[torch.randint(0, images.shape[0], (BATCH,))]
        with torch.no_grad():
            fake = generator(torch.randn(BATCH, Z_DIM))
        d_loss = F.softplus(-discriminator(real).logits).mean() + F.softplus(discriminator(fake).logits).mean()
        d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        d_optimizer.step()
        g_loss = F.softplus(-discriminator(generator(torch.randn(BATCH, Z_DIM))).logits).mean()
        g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        g_optimizer.step()

    return timed(step, steps, warmup, window)


def timed(step, steps: int, warmup: int, window: int) -> float:
    """Median steps/s over windows of ``window`` steps, after ``warmup`` steps (as gantk logs them)."""
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(max(1, steps // window)):
        started = time.perf_counter()
        for _ in range(window):
            step()
        rates.append(window / (time.perf_counter() - started))
    return statistics.median(rates)


def gantk_rate(registry: Registry, options: dict, steps: int, warmup: int, window: int) -> float:
    """Median steps/s of the gantk training loop over its log windows, after ``warmup`` steps.

    The engine reads its losses back every ``log_every`` steps and writes each window's steps/s
    into metrics.jsonl (the read-back and the write are inside the window); no checkpoint or
    sample picture falls inside a window, so the median window is the loop's steady state.
    """
    total = warmup + window * max(1, steps // window)
    # the measurement's settings win over a preset's (gan1d's samples, checkpoints and 5,000 steps)
    config = TrainConfig.from_options({**options, "ema": None, "log_every": window, "sample_every": 10**9,
                                       "checkpoint_every": 10**9, "steps": total})
    with tempfile.TemporaryDirectory() as run_dir:
        Trainer(config, Path(run_dir), registry=registry, show_progress=False).train()
        lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
        records = [record for record in map(json.loads, lines) if "steps_per_s" in record]
        return statistics.median(record["steps_per_s"] for record in records if record["step"] > warmup)


def gan1d_bare_rate(steps: int, warmup: int, window: int) -> float:
    """A bare loop of the gan1d preset: MLPs 10→50→50→1 and 1→50→50→1, 5 D steps per G step, Adam 1e-3."""
    torch.manual_seed(0)
    data = torch.randn(64000, 1)

    def mlp(n_in: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(n_in, 50), nn.ReLU(), nn.Linear(50, 50), nn.ReLU(), nn.Linear(50, 1))

    generator, discriminator = mlp(10), mlp(1)
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-3)

    def step() -> None:
        for _ in range(5):
            real = data[torch.randint(0, data.shape[0], (64,))]
            with torch.no_grad():
                fake = generator(torch.randn(64, 10))
            d_loss = F.softplus(-discriminator(real)).mean() + F.softplus(discriminator(fake)).mean()
            d_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            d_optimizer.step()
        g_loss = F.softplus(-discriminator(generator(torch.randn(64, 10)))).mean()
        g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        g_optimizer.step()

    return timed(step, steps, warmup, window)


def cpu_model() -> str:
    """The CPU's model name and its bf16 features: the auto ratio depends on them (AMX or not)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "CPU model unknown"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    features = [flag for flag in ("avx512_bf16", "amx_bf16") if flag in info]
    return f"{name} ({', '.join(features) or 'no bf16 instructions'})"


LOOPS = ("plain", "gantk-fp32", "gantk-auto", "gan1d-bare", "gan1d-gantk")


def measure(loop: str, args: argparse.Namespace) -> float:
    """Steps/s of one loop, measured in this process."""
    if loop == "plain":
        return plain_loop_rate(benchmark_images(), args.steps, args.warmup, args.window)
    if loop == "gan1d-bare":
        return gan1d_bare_rate(args.gan1d_steps, GAN1D_WINDOW, GAN1D_WINDOW)
    registry = tutorial_plugin(benchmark_images())
    if loop.startswith("gan1d"):
        preset = gantk.get_registry().create("preset", "gan1d")
        return gantk_rate(registry, {**preset, "precision": "fp32"}, args.gan1d_steps, GAN1D_WINDOW, GAN1D_WINDOW)
    model = {"gen": "tutorial32", "disc": "tutorial32", "dataset": "bench32", "loss": "ns", "batch_size": BATCH,
             "lr": 2e-4, "betas": (0.5, 0.999)}
    return gantk_rate(registry, {**model, "precision": loop.removeprefix("gantk-")}, args.steps, args.warmup, args.window)


def measure_in_fresh_process(loop: str, args: argparse.Namespace) -> float:
    """Run ``measure`` in a new interpreter, so that no loop inherits another's process-wide state.

    The gantk engine tunes the process (malloc keeps freed memory; docs/training.md); the plain
    loops must run as a user would run them, in a process that gantk has not touched.
    """
    command = [sys.executable, __file__, "--measure", loop, "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--window", str(args.window),
               "--gan1d-steps", str(args.gan1d_steps)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"measuring {loop} failed:\n{result.stderr}")
    return float(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--window", type=int, default=5, help="steps per timed window (the median window counts)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--gan1d-steps", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of all loops, interleaved; ratios are taken within a round, then the median")
    parser.add_argument("--measure", choices=LOOPS, help=argparse.SUPPRESS)  # internal: one loop, print its rate
    args = parser.parse_args(argv)
    if args.measure:
        print(measure(args.measure, args))
        return 0

    rates: dict[str, list[float]] = {loop: [] for loop in LOOPS}
    for round_number in range(1, args.rounds + 1):
        for loop in LOOPS:
            rates[loop].append(measure_in_fresh_process(loop, args))
        print(f"round {round_number}: " + ", ".join(f"{loop} {rates[loop][-1]:.2f}" for loop in LOOPS), flush=True)

    def ratio(loop: str, reference: str) -> float:
        return statistics.median(a / b for a, b in zip(rates[loop], rates[reference]))

    rows = [
        ("plain PyTorch loop, fp32 (reference)", "plain", 1.0, ""),
        ("gantk engine, fp32", "gantk-fp32", ratio("gantk-fp32", "plain"), ">= 0.95"),
        ("gantk engine, auto", "gantk-auto", ratio("gantk-auto", "plain"), ">= 3.0"),
        ("gan1d bare loop, fp32 (reference)", "gan1d-bare", 1.0, ""),
        ("gan1d preset in gantk, fp32", "gan1d-gantk", ratio("gan1d-gantk", "gan1d-bare"), ">= 0.9"),
    ]
    print(f"{cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads, ContraGAN-tutorial shapes, batch {BATCH}, "
          f"32x32x3, ns loss; {args.rounds} interleaved rounds, each loop in a fresh process")
    print(f"{'loop':<40} {'steps/s':>9} {'ratio':>7}  floor   (steps/s: median of rounds; ratio: median of per-round ratios)")
    for name, loop, value, floor in rows:
        print(f"{name:<40} {statistics.median(rates[loop]):>9.2f} {value:>7.2f}  {floor}")
    print(f"gantk auto against gantk fp32 (the bf16 part alone): {ratio('gantk-auto', 'gantk-fp32'):.2f}")
    failed = (rows[1][2] < 0.95) or (rows[2][2] < 3.0) or (rows[4][2] < 0.9)
    print("floors:", "not all met" if failed else "all met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
