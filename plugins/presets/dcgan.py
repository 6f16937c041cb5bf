"""The ``dcgan`` preset: the MNIST DCGAN tutorial (Radford et al. 2016, "Unsupervised
Representation Learning with Deep Convolutional GANs"), fixed to use logits (no Sigmoid in D).

MNIST variant of the DCGAN generator (ConvT 7×7 → 14 → 28) and its mirrored discriminator,
non-saturating loss, Adam 2e-4 with β₁ = 0.5, batch 64. It trains on the embedded ``mnist5k``
digits by default; it is also what ``gantk train`` with no options runs.
"""

import gantk

DCGAN = {
    "gen": "dcgan", "disc": "dcgan", "loss": "ns", "dataset": "mnist5k",
    "batch_size": 64, "g_opt": "adam", "g_lr": 2e-4, "g_betas": (0.5, 0.999),
    "d_opt": "adam", "d_lr": 2e-4, "d_betas": (0.5, 0.999), "steps": 3500, "ema": 0.999,
}


def dcgan_preset() -> dict:
    """MNIST DCGAN tutorial: dcgan G/D, non-saturating loss, Adam 2e-4 (0.5, 0.999), batch 64."""
    return dict(DCGAN)


@gantk.hookimpl
def register_presets(register):
    register("dcgan", dcgan_preset)
