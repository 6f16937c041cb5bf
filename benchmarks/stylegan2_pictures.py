"""StyleGAN2 pictures for the docs: truncated samples at several ψ, and a style-mixing grid.

From a trained style-based generator (a ``stylegan2`` run or its ``generator.safetensors``):

- ``stylegan2_psi_<ψ>.png``: the same seeds at each ψ (default 1.0, 0.7, 0.5), drawn as
  ``gantk sample --truncation ψ`` draws them;
- ``stylegan2_mixing.png``: the style-mixing grid of Karras et al. 2019 (fig. 3). The first row holds
  the B sources, the first column the A sources; the cell (A, B) takes A's styles for the layers
  before ``--crossover`` (the coarse ones) and B's from it on.

    python benchmarks/stylegan2_pictures.py runs/stylegan2 [--out docs/images] [--psi 1.0,0.7,0.5] [--n 16]
        [--sources 5] [--crossover 4] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import gantk
from gantk.engine.sampling import draw, resolve_model
from gantk.plugins.architectures.stylegan2 import mix_styles
from gantk.plugins.tools.pictures import write_samples


@torch.no_grad()
def mixing_grid(generator, sources: int, crossover: int, seed: int) -> torch.Tensor:
    """(sources + 1)² images, row-major: a blank corner, the B row, then per A row its image and the mixes."""
    latents = torch.randn(2 * sources, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    styles = generator.mapping(latents)
    a, b = styles[:sources], styles[sources:]
    images = generator.synthesis(styles)
    rows = [torch.cat([torch.full_like(images[:1], 1.0), images[sources:]])]  # white corner, then the B sources
    for i in range(sources):
        mixed = generator.synthesis(mix_styles(a[i:i + 1].expand_as(b), b, crossover))
        rows.append(torch.cat([images[i:i + 1], mixed]))
    return torch.cat(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a stylegan2 run directory or generator.safetensors")
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--psi", default="1.0,0.7,0.5")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--sources", type=int, default=5)
    parser.add_argument("--crossover", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    args = parser.parse_args()
    generator = gantk.load_generator(resolve_model(args.model, args.runs_dir))
    args.out.mkdir(parents=True, exist_ok=True)
    for psi in (float(value) for value in args.psi.split(",")):
        samples = draw(generator, args.n, seed=args.seed, truncation=psi)
        print(write_samples(samples, None, generator.spec, args.out / f"stylegan2_psi_{psi:g}.png"))
    grid = mixing_grid(generator, args.sources, args.crossover, args.seed)
    print(write_samples(grid, None, generator.spec, args.out / "stylegan2_mixing.png", nrow=args.sources + 1))


if __name__ == "__main__":
    main()
