"""The ``lsgan`` preset (Mao et al. 2017, "Least Squares Generative Adversarial Networks").

D: ½E(D(x)−1)² + ½E D(x~)², G: ½E(D(x~)−1)², on the DCGAN networks, Adam 2e-4 (0.5, 0.999).
"""

import gantk


def lsgan_preset() -> dict:
    """LSGAN: least-squares loss with targets 1/0 on the DCGAN networks, Adam 2e-4 (0.5, 0.999)."""
    return {"gen": "dcgan", "disc": "dcgan", "loss": "lsgan", "dataset": "mnist5k", "batch_size": 64,
            "lr": 2e-4, "betas": (0.5, 0.999), "steps": 2000, "ema": 0.999}


@gantk.hookimpl
def register_presets(register):
    register("lsgan", lsgan_preset)
