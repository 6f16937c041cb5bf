"""Presets for the three conditional GAN tutorials, with their known mistakes fixed (ALGORITHMS.md §3).

- ``cgan`` (Mirza & Osindero 2014): MLP G and D, both conditioned by concatenating an
  Embedding(K, K) of the label; least-squares loss (the tutorial's MSE with targets 1/0); MNIST at
  32×32; Adam 2e-4 (0.5, 0.999), batch 64. Fixed: the tutorial's BatchNorm1d(n, 0.8) set eps = 0.8.
  Added for within-class diversity: minibatch standard deviation on D's input (``-D mbstd=4``,
  Karras et al. 2018) and the learning rate decaying linearly to 0 over the second half of 10,000
  steps (``--lr-schedule linear-decay:50%``).
- ``acgan`` (Odena et al. 2017): the tutorial's 28×28 G (emb(y) ⊙ z input) and D, non-saturating
  loss plus the auxiliary classifier on real and fake (as the paper and the tutorial). Fixed: the
  class head outputs logits into cross-entropy (the tutorial put a Softmax before CrossEntropyLoss).
- ``contragan`` (Kang & Park 2020): the tutorial's 32×32 G (z ⊕ emb(y) input) and D, hinge loss plus
  the 2C contrastive loss on D's features in both D's and G's updates, batch 128. Fixed: hinge on
  logits instead of BCE on a Sigmoid; the 2C loss exactly as the paper (no masked entries leaking
  exp(0) = 1 into the numerator); G gets the 2C term too. Added: D is conditioned by projection
  (the engine's ``auto`` for a label loss), because the 2C term alone leaves the label → class
  assignment free (docs/conditional.md, "Why projection"). Changed for within-class diversity: the
  paper's temperature 1.0 instead of the tutorial's 0.5, ``-D mbstd=4``, and 2,000 steps.

Step counts reach ≥ 95 % conditional accuracy with a within-class coverage ratio ≥ 0.9 on mnist5k
(``benchmarks/conditional_accuracy.py``; figures, wall times and the runs that chose each setting in
docs/conditional.md).

All three train on the embedded ``mnist5k`` digits by default; ``--dataset cifar10 --data-root DIR``
or ``--dataset folder --data-root DIR`` switch the data.
"""

import gantk

_ADAM = {"lr": 2e-4, "betas": (0.5, 0.999)}


def cgan_preset() -> dict:
    """CGAN tutorial: MLP G/D with label embeddings concatenated, lsgan loss, MNIST at 32x32; D mbstd=4, lr decay."""
    return {"gen": "mlp", "disc": "mlp", "loss": "lsgan", "dataset": "mnist5k", "image_size": 32,
            "gen_options": {"conditioning": "concat"}, "disc_options": {"conditioning": "concat", "mbstd": 4},
            "batch_size": 64, "steps": 10_000, "lr_schedule": "linear-decay:50%", "ema": 0.999, **_ADAM}


def acgan_preset() -> dict:
    """ACGAN tutorial: 28x28 acgan G (emb(y)*z) and D (no conditioning but its class head), ns + ac on real and fake."""
    return {"gen": "acgan", "disc": "acgan", "loss": "ns+ac", "loss_options": {"ac": {"fake": True}},
            "dataset": "mnist5k", "gen_options": {"conditioning": "mul"}, "disc_options": {"conditioning": "none"},
            "batch_size": 64, "steps": 5000,
            "ema": 0.999, **_ADAM}


def contragan_preset() -> dict:
    """ContraGAN tutorial: 32x32 contragan G (z + emb(y)) and D (+ projection, mbstd=4), hinge + 2C loss (t = 1.0)."""
    return {"gen": "contragan", "disc": "contragan", "loss": "hinge+contrastive",
            "loss_options": {"contrastive": {"temperature": 1.0}}, "dataset": "mnist5k", "image_size": 32,
            "gen_options": {"conditioning": "concat"}, "disc_options": {"mbstd": 4}, "batch_size": 128, "steps": 2000,
            "ema": 0.999, **_ADAM}


@gantk.hookimpl
def register_presets(register):
    register("cgan", cgan_preset)
    register("acgan", acgan_preset)
    register("contragan", contragan_preset)
