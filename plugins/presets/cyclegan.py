"""The ``cyclegan-emoji`` preset: CycleGAN (Zhu et al. 2017, arXiv:1703.10593) between the two emoji styles,
Google's Noto (domain A) and Twitter's Twemoji (domain B), at 64 px, sized for 30 minutes on 2 CPU cores.

The paper's choices: the ``cyclegan`` procedure (cycle λ = 10, identity 0.5·λ, a pool of 50 past
fakes, D losses halved), ``resnet-translator`` G with 6 residual blocks (the paper's choice below
256 px), the 70×70 ``patchgan`` D, the ``lsgan`` loss, Adam 2e-4 (0.5, 0.999), a constant learning
rate for the first half of training then a linear decay to 0. Changed to fit a CPU: width 32
instead of 64 (a quarter of the arithmetic), batch 4 instead of 1, and no EMA (the paper has none).
2,800 steps: 24.6 minutes on 2 quiet cores (1.9 steps/s measured); ``--time-limit`` bounds a run by wall time.

The images are not embedded: ``gantk train --preset cyclegan-emoji --data-root DIR --download``
fetches both styles once.
"""

import gantk

CYCLEGAN_EMOJI = {"procedure": "cyclegan", "gen": "resnet-translator", "disc": "patchgan", "loss": "lsgan",
                  "dataset": "emoji-styles", "image_size": 64, "gen_options": {"blocks": 6, "width": 32},
                  "disc_options": {"width": 32}, "batch_size": 4, "g_opt": "adam", "d_opt": "adam", "lr": 2e-4,
                  "betas": (0.5, 0.999), "steps": 2800, "lr_schedule": "linear-decay:50%", "ema": None}


def cyclegan_emoji_preset() -> dict:
    """CycleGAN (Zhu 2017) Noto <-> Twemoji emoji, 64 px: resnet-translator (6 blocks) and patchgan, lsgan."""
    return {key: dict(value) if isinstance(value, dict) else value for key, value in CYCLEGAN_EMOJI.items()}


@gantk.hookimpl
def register_presets(register):
    register("cyclegan-emoji", cyclegan_emoji_preset)
