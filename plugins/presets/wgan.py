"""The ``wgan`` and ``wgan-gp`` presets.

- ``wgan`` (Arjovsky et al. 2017, "Wasserstein GAN"): critic loss E D(x~) − E D(x), every critic
  weight clipped to [−0.01, 0.01] (the ``wgan`` term's default when no gradient penalty is
  composed with it), RMSprop 5e-5, 5 critic steps per G step.
- ``wgan-gp`` (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs"): the same loss
  plus 10·E(‖∇D(x̂)‖₂ − 1)², no clipping, no BatchNorm in the critic, Adam 1e-4 with β = (0, 0.9),
  5 critic steps per G step.
"""

import gantk

_COMMON = {"gen": "dcgan", "disc": "dcgan", "dataset": "mnist5k", "n_critic": 5, "batch_size": 64,
           "steps": 2000, "ema": 0.999}


def wgan_preset() -> dict:
    """WGAN: weight clipping 0.01, RMSprop 5e-5, 5 critic steps per G step."""
    return {**_COMMON, "loss": "wgan", "lr": 5e-5, "g_opt": "rmsprop",
            "d_opt": "rmsprop"}


def wgan_gp_preset() -> dict:
    """WGAN-GP: gradient penalty λ=10, critic without BatchNorm, Adam 1e-4 (0, 0.9), 5 critic steps."""
    return {**_COMMON, "loss": "wgan+10*gp", "disc_options": {"norm": "none"}, "lr": 1e-4, "betas": (0.0, 0.9)}


@gantk.hookimpl
def register_presets(register):
    register("wgan", wgan_preset)
    register("wgan-gp", wgan_gp_preset)
