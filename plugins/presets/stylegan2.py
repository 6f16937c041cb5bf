"""The StyleGAN2 presets (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN",
arXiv:1912.04958), sized for a CPU, on the ``emoji`` data set (``--data-root DIR``, ``--download`` once).

- ``stylegan2``: 64×64 emoji (Noto). Non-saturating loss, lazy R1 every 16 steps, path-length
  regularisation (weight 2, every 4 steps, half the batch), style mixing 0.9; Adam lr 0.002,
  betas (0, 0.99), ε 1e-8 (PyTorch's default), which the lazy regularisation adjusts per network
  (lr·c, β^c, c = k/(k+1)); batch 32; G EMA with a half-life of 10,000 images, as a decay per step
  at this batch: β = 0.5^(32/10,000) ≈ 0.99778.
- ``stylegan2-32``: the same at 32×32 (``--image-size 32``).

R1's γ follows the heuristic of stylegan2-ada-pytorch's automatic configuration (``train.py``,
``--cfg auto``), γ = 0.0002·S²/B for side S and batch B: 0.0256 at 64 px and 0.0064 at 32 px for
batch 32. From the same configuration: 2 mapping layers (the paper's 8 are the architecture's
default) and the batch of 32. Widths: the architecture's defaults (channel_base 4096,
channel_max 128, z = w = 256), small enough to train on a few CPU cores.
"""

import gantk

BATCH = 32
HALF_LIFE_IMAGES = 10_000


def r1_gamma(side: int, batch: int = BATCH) -> float:
    """γ = 0.0002·S²/B, the automatic configuration's heuristic (stylegan2-ada-pytorch)."""
    return 0.0002 * side ** 2 / batch  # 0.0002 · S² / B


def ema_decay(batch: int = BATCH, half_life: int = HALF_LIFE_IMAGES) -> float:
    """The EMA decay per step whose weight halves every ``half_life`` images: β = 0.5^(B / half_life)."""
    return 0.5 ** (batch / half_life)  # 0.5^(B/h)


def _stylegan2(side: int) -> dict:
    return {"gen": "stylegan2", "disc": "stylegan2", "dataset": "emoji",
            "loss": f"ns+{r1_gamma(side):g}*r1+pl", "loss_options": {"r1": {"every": 16}, "pl": {"every": 4}},
            "gen_options": {"map_layers": 2, "mixing": 0.9},
            "g_opt": "adam", "g_lr": 0.002, "g_betas": (0.0, 0.99), "d_opt": "adam", "d_lr": 0.002,
            "d_betas": (0.0, 0.99), "batch_size": BATCH, "ema": round(ema_decay(), 6), "steps": 20000}


def stylegan2_preset() -> dict:
    """StyleGAN2 on 64x64 emoji: ns + lazy R1 (every 16) + path length (every 4), mixing 0.9, Adam 0.002 (0, 0.99)."""
    return _stylegan2(64)


def stylegan2_32_preset() -> dict:
    """StyleGAN2 on 32x32 emoji (--image-size 32): as the stylegan2 preset, R1 γ for 32 px."""
    return {**_stylegan2(32), "image_size": 32}


@gantk.hookimpl
def register_presets(register):
    register("stylegan2", stylegan2_preset)
    register("stylegan2-32", stylegan2_32_preset)
