"""The ``sngan`` preset: SNGAN (Miyato et al. 2018, "Spectral Normalization for Generative Adversarial
Networks", arXiv:1802.05957) with its ResNets, on the emoji data set.

The ``resnet`` G and D (D spectrally normalised, its default), the hinge loss, Adam 2e-4 with
β = (0, 0.9) for both networks, 5 D updates per G update (``n_critic``), batch 64: the paper's
ResNet setting (ALGORITHMS.md §3). Unconditional, as the paper's headline runs; add
``-G conditioning=cbn -D conditioning=projection`` for its class-conditional version.

Data: ``emoji`` (Google's Noto style, 64×64, the 64-px layout) rather than the paper's CIFAR-10,
because the emoji images are what gantk's results compare ``dcgan``, ``sngan`` and ``stylegan2``
on; ``--dataset cifar10 --data-root DIR`` trains the paper's 32-px CIFAR-10 network instead
(``--dataset`` drops the preset's image size and data options). The images are not embedded:
``gantk train --preset sngan --data-root DIR --download`` fetches them once.

20,000 steps (100,000 D updates), EMA 0.999 as the other image presets; on a CPU, ``--time-limit``
bounds a run by wall time instead.
"""

import gantk

SNGAN = {"gen": "resnet", "disc": "resnet", "loss": "hinge", "dataset": "emoji", "image_size": 64,
         "dataset_options": {"style": "google"}, "n_critic": 5, "batch_size": 64,
         "g_opt": "adam", "d_opt": "adam", "lr": 2e-4, "betas": (0.0, 0.9), "steps": 20000, "ema": 0.999}


def sngan_preset() -> dict:
    """SNGAN (Miyato 2018): ResNet G/D, spectral norm in D, hinge, Adam 2e-4 (0, 0.9), 5 D steps; emoji 64x64."""
    return dict(SNGAN, dataset_options=dict(SNGAN["dataset_options"]))


@gantk.hookimpl
def register_presets(register):
    register("sngan", sngan_preset)
