"""A history of generated images for the discriminator (Shrivastava et al. 2017, used by CycleGAN, Zhu et al. 2017).

D is trained on a mix of the newest fakes and fakes from earlier steps, so that it does not chase the
generator's latest output alone. Per image of a batch: while the pool holds fewer than ``capacity``
images, the new image is stored and returned; once it is full, with probability ½ a random stored
image is returned and the new one takes its place, otherwise the new image is returned.

The stored images and their count are buffers, so checkpoints save the pool and a resumed run
continues with the same history; the random choices come from torch's generator of the pool's
device, whose state checkpoints keep too.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ImagePool(nn.Module):
    """Up to ``capacity`` past fakes of ``shape`` (C, H, W); ``pool(fakes)`` is the batch D sees (capacity 0: the
    fakes as they are)."""

    def __init__(self, capacity: int, shape: tuple[int, ...], swap_probability: float = 0.5) -> None:
        super().__init__()
        self.capacity, self.swap_probability = int(capacity), float(swap_probability)
        self.register_buffer("images", torch.zeros(self.capacity, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def forward(self, fakes: Tensor) -> Tensor:
        fakes = fakes.detach().to(self.images.dtype)
        if self.capacity == 0:
            return fakes
        returned, stored = [], int(self.count)
        # one draw per image (the swap coin and the slot), whatever the pool's fill, so that the random stream
        # advances alike on every step
        coins = torch.rand(len(fakes), device=self.images.device)
        slots = torch.randint(self.capacity, (len(fakes),), device=self.images.device)
        for fake, coin, slot in zip(fakes, coins.tolist(), slots.tolist()):
            if stored < self.capacity:  # filling up: keep it, and show it
                self.images[stored] = fake
                stored += 1
                returned.append(fake)
            elif coin < self.swap_probability:  # show an old fake, keep the new one in its place
                returned.append(self.images[slot].clone())
                self.images[slot] = fake
            else:
                returned.append(fake)
        self.count.fill_(stored)
        return torch.stack(returned)

    def extra_repr(self) -> str:
        return f"capacity={self.capacity}, swap_probability={self.swap_probability}"
