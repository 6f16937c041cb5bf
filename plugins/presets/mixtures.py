"""Presets on PacGAN's 2-D mode benchmarks (Lin et al. 2018, §5.1): ``ring8``, ``grid25`` (a plain GAN),
``pacgan4-ring8``, ``pacgan4-grid25`` (the same with packing, M = 4), and ``ring8-best``, ``grid25-best``
(the paper's networks with R1 and a decaying learning rate, which do better in 20,000 steps).

The networks, loss and optimiser are the paper's (its released 2-D configuration): G maps a 2-d
Gaussian latent through four hidden layers of 400 ReLU units, each with BatchNorm, to a point; D has
three hidden layers of 200 maxout units with 5 pieces and one logit; weights N(0, 0.02), biases 0;
non-saturating loss; Adam 1e-4, β = (0.8, 0.999); 100 D inputs per step (PacGAN4: 100 packed inputs
of 4 samples, so 400 samples of each kind). fp32 (the networks are too small for bf16 to pay) and no
EMA (the benchmark scores the generator itself). The paper trains 400,000 steps; these presets train
20,000 (see docs/results.md for what the step count costs). Score a run with the ``modes`` metric
(``gantk eval RUN --metrics modes``).
"""

import gantk

STEPS = 20_000  # the paper: 400 epochs of 100,000 samples at batch 100 = 400,000 steps
PAPER_GENERATOR = {"z_dim": 2, "hidden": (400, 400, 400, 400), "activation": "relu", "batchnorm": "all",
                   "init": "normal"}
PAPER_DISCRIMINATOR = {"hidden": (200, 200, 200), "activation": "maxout", "maxout_pieces": 5, "dropout": 0,
                       "init": "normal"}


def paper_preset(dataset: str, pack: int = 1) -> dict:
    """PacGAN's 2-D setup on ``dataset`` with ``pack`` samples per D input (1: the plain GAN)."""
    return {
        "gen": "mlp", "disc": "mlp", "loss": "ns", "dataset": dataset,
        "gen_options": dict(PAPER_GENERATOR),
        "disc_options": {**PAPER_DISCRIMINATOR, **({"pack": pack} if pack > 1 else {})},
        "batch_size": 100 * pack, "steps": STEPS, "lr": 1e-4, "betas": (0.8, 0.999), "ema": None,
        "precision": "fp32", "sample_every": 5000, "num_samples": 2500, "checkpoint_every": 5000, "log_every": 500,
    }


def best_preset(dataset: str, r1_weight: float) -> dict:
    """The plain preset plus what measured better (docs/results.md): R1 on D (Mescheder et al. 2018), which makes
    the dynamics locally convergent, so G stops circling the modes, and the learning rate decaying linearly to 0
    over the second half, which settles the last oscillation. γ is per data set (measured: 0.1 on the ring's
    σ = 0.01 modes left 6 of 8 after 10,000 steps; 0.01 on the grid covered 23 of 25 where 0.1 covered all)."""
    return {**paper_preset(dataset), "loss": f"ns+{r1_weight:g}*r1", "lr_schedule": "linear-decay:50%"}


def ring8_preset() -> dict:
    """Plain GAN on 8 Gaussians on a circle, PacGAN's networks and optimiser (maxout D, Adam 1e-4 β₁ 0.8)."""
    return paper_preset("ring8")


def grid25_preset() -> dict:
    """Plain GAN on 25 Gaussians on a grid, PacGAN's networks and optimiser (maxout D, Adam 1e-4 β₁ 0.8)."""
    return paper_preset("grid25")


def pacgan4_ring8_preset() -> dict:
    """PacGAN4 on 8 Gaussians on a circle: the ring8 preset with -D pack=4 and 100 packed inputs per step."""
    return paper_preset("ring8", pack=4)


def pacgan4_grid25_preset() -> dict:
    """PacGAN4 on 25 Gaussians on a grid: the grid25 preset with -D pack=4 and 100 packed inputs per step."""
    return paper_preset("grid25", pack=4)


def ring8_best_preset() -> dict:
    """8 Gaussians on a circle, best measured: the ring8 preset with ns+0.001*r1 and linear-decay:50%."""
    return best_preset("ring8", 0.001)


def grid25_best_preset() -> dict:
    """25 Gaussians on a grid, best measured: the grid25 preset with ns+0.1*r1 and linear-decay:50%."""
    return best_preset("grid25", 0.1)


@gantk.hookimpl
def register_presets(register):
    register("ring8", ring8_preset)
    register("grid25", grid25_preset)
    register("pacgan4-ring8", pacgan4_ring8_preset)
    register("pacgan4-grid25", pacgan4_grid25_preset)
    register("ring8-best", ring8_best_preset)
    register("grid25-best", grid25_best_preset)
