"""Throughput of the built-in augmentations (--augment), alone and in a discriminator pass, fp32 and bf16.

For each augmentation (``none``, ``diffaugment``, ``ada`` at p = 0 and p = 0.5, ``flip``) and
precision, on a batch of 64 colour images of 64×64 (``--batch``, ``--size``):

- ``aug img/s``: the augmentation's forward and backward (the gradient reaches the images, as in
  G's update), images per second;
- ``D img/s``: the same plus the ``dcgan`` discriminator's forward and backward, the cost a
  training step pays; ``vs none`` divides it by the rate without augmentation.

When kornia is importable, its nearest equivalents are timed too (they are not the papers'
operations: see docs/training.md#augmentation); otherwise those rows are skipped. To include them
without adding kornia to the environment, install it into a throwaway folder:
``pip install --no-deps --target /tmp/kornia-only kornia kornia_rs`` and run with
``PYTHONPATH=/tmp/kornia-only``.

    python benchmarks/augment.py [--batch 64] [--size 64] [--repeats 20] [--device cpu] [--precisions fp32,bf16]
"""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import Callable

import torch

import gantk
from gantk.protocols import DataSpec
from timing import images_per_second  # benchmarks/timing.py

BUILTINS = {"diffaugment": ("diffaugment", {}), "ada p=0": ("ada", {}), "ada p=0.5": ("ada", {"p": 0.5}),
            "flip": ("flip", {})}


def kornia_equivalents() -> dict[str, Callable]:
    """kornia's nearest pipelines to each built-in, or {} when kornia is not installed."""
    try:
        import kornia.augmentation as K
    except ImportError:
        return {}
    diffaugment = K.AugmentationSequential(K.ColorJiggle(0.5, 0.5, 1.0, p=1.0),
                                           K.RandomAffine(0, translate=(0.125, 0.125), p=1.0),
                                           K.RandomErasing(scale=(0.25, 0.25), ratio=(1.0, 1.0), p=1.0))
    ada = K.AugmentationSequential(K.RandomHorizontalFlip(p=0.5),
                                   K.RandomAffine(180, translate=(0.125, 0.125), scale=(0.8, 1.25),
                                                  padding_mode="reflection", p=0.5),
                                   K.ColorJiggle(0.2, 0.5, 1.0, 0.5, p=0.5))
    flip = K.RandomHorizontalFlip(p=0.5)
    return {"kornia ~diffaugment": diffaugment, "kornia ~ada": ada, "kornia ~flip": flip}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precisions", default="fp32,bf16")
    args = parser.parse_args()
    device = torch.device(args.device)
    spec = DataSpec((3, args.size, args.size), name="benchmark")
    registry = gantk.get_registry()
    discriminator = registry.get("discriminator", "dcgan").create(spec).to(device)
    augmentations: dict[str, Callable | None] = {"none": None}
    augmentations.update({label: registry.get("augmentation", name).create(spec, **options).to(device)
                          for label, (name, options) in BUILTINS.items()})
    kornia = kornia_equivalents()
    augmentations.update({label: pipeline.to(device) for label, pipeline in kornia.items()})
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}, {device}; "
          f"batch {args.batch} of 3×{args.size}×{args.size}"
          + ("" if kornia else "; kornia not installed: its rows skipped"))
    print(f"{'augmentation':<22}{'precision':<11}{'aug img/s':>11}{'D img/s':>11}{'vs none':>9}")
    for precision in args.precisions.split(","):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if precision == "bf16" else contextlib.nullcontext
        images = torch.rand(args.batch, *spec.shape, device=device).mul(2).sub(1).to(dtype)
        baseline = None
        for label, augment in augmentations.items():
            is_kornia = label.startswith("kornia")

            def augmented(x: torch.Tensor) -> torch.Tensor:
                if augment is None:
                    return x
                if is_kornia:  # kornia works on [0, 1] float32 images
                    return augment(x.float().add(1).div(2)).mul(2).sub(1)
                return augment(x, real=True)

            def augmentation_step() -> None:
                x = images.detach().requires_grad_(True)
                with autocast():
                    out = augmented(x)
                out.float().sum().backward()

            def discriminator_step() -> None:
                x = images.detach().requires_grad_(True)
                with autocast():
                    logits = discriminator(augmented(x)).logits
                logits.float().sum().backward()

            alone = images_per_second(augmentation_step, args.batch, args.repeats, 2, 1, device) if augment is not None else float("nan")
            with_d = images_per_second(discriminator_step, args.batch, args.repeats, 2, 1, device)
            baseline = with_d if augment is None else baseline
            print(f"{label:<22}{precision:<11}{alone:>11.0f}{with_d:>11.0f}{with_d / baseline:>9.2f}")


if __name__ == "__main__":
    main()
