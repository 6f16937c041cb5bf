"""The DCGAN presets (Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with
Deep Convolutional GANs", arXiv:1511.06434), fixed to use logits (no Sigmoid in D).

- ``dcgan``: the MNIST DCGAN tutorial. MNIST variant of the generator (ConvT 7×7 → 14 → 28) and its
  mirrored discriminator, non-saturating loss, Adam 2e-4 with β₁ = 0.5, batch 64. It trains on the
  embedded ``mnist5k`` digits by default; it is also what ``gantk train`` with no options runs.
- ``dcgan64``: the paper's 64×64 network (G: 4×4×512 → 8×8×256 → 16×16×128 → 32×32×64 → 64×64×C;
  D mirrors it) on an image folder: ``gantk train --preset dcgan64 --data-root DIR`` (or
  ``--dataset prepared --data-root DATA.safetensors``). Non-saturating loss, Adam 2e-4 with
  β = (0.5, 0.999) as in the paper; batch 64 (the paper used 128; 64 halves the memory, and
  ``--batch-size 128`` restores it).
"""

import gantk

_ADAM = {"g_opt": "adam", "g_lr": 2e-4, "g_betas": (0.5, 0.999), "d_opt": "adam", "d_lr": 2e-4, "d_betas": (0.5, 0.999)}
DCGAN = {"gen": "dcgan", "disc": "dcgan", "loss": "ns", "dataset": "mnist5k", "batch_size": 64, **_ADAM,
         "steps": 3500, "ema": 0.999}
DCGAN64 = {**DCGAN, "dataset": "folder", "image_size": 64, "steps": 20000}

def dcgan_preset() -> dict:
    """MNIST DCGAN tutorial: dcgan G/D, non-saturating loss, Adam 2e-4 (0.5, 0.999), batch 64."""
    return dict(DCGAN)


def dcgan64_preset() -> dict:
    """The paper's 64x64 DCGAN on an image folder (--data-root DIR): ns loss, Adam 2e-4 (0.5, 0.999), batch 64."""
    return dict(DCGAN64)


@gantk.hookimpl
def register_presets(register):
    register("dcgan", dcgan_preset)
    register("dcgan64", dcgan64_preset)
