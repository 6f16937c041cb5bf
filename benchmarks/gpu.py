"""GPU throughput of gantk: img/s and peak memory of DCGAN-64 and the ContraGAN tutorial model, in
fp32, bf16 and bf16 + ``--compile``, as one table (run through ``benchmarks/gpu.sh``).

- DCGAN-64: the ``dcgan64`` preset's networks (the paper's 64×64 DCGAN, batch 64) on 4,096 random
  64×64 RGB images held as uint8 on the GPU;
- the ContraGAN tutorial model: benchmarks/throughput.py's 32×32 networks, batch 128.

Each (model, mode) runs in a fresh process (so peak memory and compiled code start from nothing);
img/s = batch × the median steps/s of gantk's log windows after a warm-up (compilation included
in the warm-up). Without CUDA it says so and exits 0.

    bash benchmarks/gpu.sh [--steps 200] [--warmup 60] [--window 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from throughput import gantk_rate, tutorial_plugin  # noqa: E402  (the tutorial networks and the rate method)

import gantk  # noqa: E402
from gantk.protocols import DataSpec, Dataset  # noqa: E402
from gantk.registry import PluginSource  # noqa: E402

MODES = {"fp32": {"precision": "fp32"}, "bf16": {"precision": "bf16"},
         "bf16+compile": {"precision": "bf16", "compile": True}}
MODELS = {
    "DCGAN-64": ({"gen": "dcgan", "disc": "dcgan", "dataset": "bench64", "loss": "ns", "batch_size": 64}, 64),
    "ContraGAN tutorial": ({"gen": "tutorial32", "disc": "tutorial32", "dataset": "bench32", "loss": "ns",
                            "batch_size": 128}, 128),
}


def registry_with_benchmark_data():
    """The tutorial plugin's registry plus ``bench64``: 4,096 random 64×64 RGB uint8 images."""
    registry = tutorial_plugin(torch.rand(4096, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    pixels = torch.randint(0, 256, (4096, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    plugin = types.ModuleType("gpu_benchmark_plugin")

    def register_datasets(register):
        register("bench64", lambda *, data_root=None, image_size=None, download=False:
                 Dataset(DataSpec((3, 64, 64), 0, "bench64"), pixels))

    plugin.register_datasets = gantk.hookimpl(register_datasets)
    registry.add_plugin(plugin, PluginSource("gpu-benchmark", "0", plugin.__name__, "bench"))
    return registry


def measure_one(model: str, mode: str, steps: int, warmup: int, window: int) -> dict:
    options, batch = MODELS[model]
    torch.cuda.reset_peak_memory_stats()
    rate = gantk_rate(registry_with_benchmark_data(), {**options, **MODES[mode], "device": "cuda"}, steps, warmup,
                      window)
    return {"img_per_s": rate * batch, "peak_gib": torch.cuda.max_memory_allocated() / 2**30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("No CUDA GPU here: benchmarks/gpu.sh measures GPUs only, so there is nothing to measure. "
              "On a CPU, run benchmarks/throughput.py.")
        return
    if args.one:
        print(json.dumps(measure_one(*args.one, args.steps, args.warmup, args.window)))
        return
    print(f"GPU: {torch.cuda.get_device_name()}, PyTorch {torch.__version__}")
    print("| model | mode | img/s | vs fp32 | peak memory (GiB) |\n|---|---|---:|---:|---:|")
    for model in MODELS:
        base = None
        for mode in MODES:
            child = subprocess.run([sys.executable, __file__, "--one", model, mode, "--steps", str(args.steps),
                                    "--warmup", str(args.warmup), "--window", str(args.window)],
                                   capture_output=True, text=True)
            if child.returncode != 0:
                print(f"| {model} | {mode} | failed: {child.stderr.strip().splitlines()[-1:]} | | |")
                continue
            result = json.loads(child.stdout.strip().splitlines()[-1])
            base = base or result["img_per_s"]
            print(f"| {model} | {mode} | {result['img_per_s']:,.0f} | {result['img_per_s'] / base:.2f} | "
                  f"{result['peak_gib']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
