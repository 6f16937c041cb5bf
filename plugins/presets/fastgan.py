"""The ``fastgan`` preset: FastGAN (Liu et al. 2021, "Towards Faster and Stabilized GAN Training for
High-fidelity Few-shot Image Synthesis", ICLR 2021, arXiv:2101.04775) on a folder of 100–1,000 images.

The ``fastgan`` G (skip-layer excitation, GLU up-blocks) and D (spectrally normalised, with decoders), the
hinge loss plus D's self-supervised reconstruction term (``hinge+recon``; L1 by default, the paper's LPIPS
with ``-L recon.distance=lpips -L recon.lpips_weights=FILE``), DiffAugment's colour and translation on
real and fake, Adam 2e-4 with β = (0.5, 0.999) for both networks, batch 8, EMA of G 0.999: the paper's
setting (ALGORITHMS.md §3).

Data: ``folder`` (``--data-root DIR``), the user's own few-shot set. Image size 256 px, not the paper's
1024: the paper trains 1024 px on a GPU, and 256 px is what a CPU can show progress on in a session;
``--image-size 1024`` trains the paper's resolution. See docs/fastgan.md.
"""

import gantk

FASTGAN = {"gen": "fastgan", "disc": "fastgan", "loss": "hinge+recon",
           "augment": "diffaugment:policy=color+translation", "dataset": "folder", "image_size": 256,
           "batch_size": 8, "g_opt": "adam", "d_opt": "adam", "lr": 2e-4, "betas": (0.5, 0.999), "ema": 0.999}


def fastgan_preset() -> dict:
    """FastGAN (Liu 2021): SLE G, self-supervised D, hinge+recon, DiffAugment color+translation, Adam 2e-4
    (0.5, 0.999), batch 8, EMA 0.999; a folder of images at 256x256."""
    return dict(FASTGAN)


@gantk.hookimpl
def register_presets(register):
    register("fastgan", fastgan_preset)
