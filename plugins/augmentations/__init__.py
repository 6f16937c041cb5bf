"""Augmentation plugins: differentiable transforms of everything the discriminator sees (DiffAugment, ADA, flips)."""
