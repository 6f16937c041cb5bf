"""The ``gan1d`` preset: the 1-D toy GAN tutorial (Goodfellow et al. 2014's setting in one dimension).

G: 10 → 50 → 50 → 1 and D: 1 → 50 → 50 → 1 ReLU MLPs, target N(0, 1) (the ``normal1d`` data
set), 5 D steps per G step, Adam 1e-3, batch 64, 5000 iterations, a histogram of 1000 samples
against the target every 500 iterations (``samples/step_XXXXXX.png``). fp32: the networks are
too small for bf16 to pay, and bf16 would blur a 1-D density.
"""

import gantk


def gan1d_preset() -> dict:
    """1-D toy GAN: MLP 10→50→50→1 vs N(0,1), 5 D steps per G step, Adam 1e-3, histograms every 500 steps."""
    return {
        "gen": "mlp", "disc": "mlp", "loss": "ns", "dataset": "normal1d",
        "gen_options": {"z_dim": 10, "hidden": (50, 50), "activation": "relu"},
        "disc_options": {"hidden": (50, 50), "activation": "relu"},
        "n_critic": 5, "batch_size": 64, "steps": 5000, "lr": 1e-3, "betas": (0.9, 0.999),
        "ema": None, "precision": "fp32", "sample_every": 500, "num_samples": 1000,
        "checkpoint_every": 1000, "log_every": 100,
    }


@gantk.hookimpl
def register_presets(register):
    register("gan1d", gan1d_preset)
