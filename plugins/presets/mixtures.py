"""Presets ``ring8`` and ``grid25``: a plain GAN on PacGAN's 2-D mode benchmarks (Lin et al. 2018, §5.1).

The networks follow PacGAN's (and VEEGAN's) 2-D experiments as far as ``mlp`` can: G maps a 2-d
Gaussian latent through four hidden layers of 400 ReLU units with BatchNorm (on all but the first)
to a point; D has three hidden layers of 200 units, ReLU instead of the paper's 5-piece maxout
(gantk's ``mlp`` has no maxout layer; recorded in docs/results.md). Non-saturating loss, Adam
1e-4 (0.5, 0.999), batch 100, fp32 (the networks are too small for bf16 to pay), no EMA (the
benchmark scores the generator itself). Score a run with the ``modes`` metric
(``gantk eval RUN --metrics modes`` or ``--eval-every N --eval-metrics modes``).
"""

import gantk


def _mixture_preset(dataset: str) -> dict:
    return {
        "gen": "mlp", "disc": "mlp", "loss": "ns", "dataset": dataset,
        "gen_options": {"z_dim": 2, "hidden": (400, 400, 400, 400), "activation": "relu", "batchnorm": True},
        "disc_options": {"hidden": (200, 200, 200), "activation": "relu"},
        "batch_size": 100, "steps": 4000, "lr": 1e-4, "betas": (0.5, 0.999), "ema": None, "precision": "fp32",
        "sample_every": 1000, "num_samples": 2500, "checkpoint_every": 1000, "log_every": 100,
    }


def ring8_preset() -> dict:
    """Plain GAN on 8 Gaussians on a circle (PacGAN's ring): MLP G 4×400 + BN, D 3×200, ns, Adam 1e-4, batch 100."""
    return _mixture_preset("ring8")


def grid25_preset() -> dict:
    """Plain GAN on 25 Gaussians on a grid (PacGAN's grid): MLP G 4×400 + BN, D 3×200, ns, Adam 1e-4, batch 100."""
    return _mixture_preset("grid25")


@gantk.hookimpl
def register_presets(register):
    register("ring8", ring8_preset)
    register("grid25", grid25_preset)
