"""FastGAN's reconstruction term ``recon``: the self-supervised discriminator's decoding loss (Liu et al. 2021,
"Towards Faster and Stabilized GAN Training for High-fidelity Few-shot Image Synthesis", ICLR 2021,
arXiv:2101.04775, §3.2).

D is trained as a feature encoder: small decoders turn its intermediate maps on a *real* batch back into
images, and D minimises ``L_recons = E_{f ~ D_encode(x), x ~ I_real} ‖𝒢(f) − 𝒯(x)‖``, where 𝒢 are the decoders
and 𝒯 the matching processing of the real image (FastGAN: the whole image, downsampled, from the 8×8 map; a
random quarter of it from the 16×16 map). The term takes D's output on the real batch of D's phase
(``phase.real_out.extras``), asks the discriminator for its pairs (``reconstruct(extras)``, the
:class:`gantk.SelfSupervisedDiscriminator` contract) and returns ``Σ_pairs distance(reconstruction, target)``
in float32. It adds nothing to G's loss: only D's down-path and decoders learn from it.

Options: ``distance`` — ``l1`` (mean |r − t|, the default), ``mse`` (mean (r − t)²) or ``lpips``, the
perceptual distance the paper uses (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric", arXiv:1801.03924), LPIPS-VGG v0.1, read from a local ``.safetensors`` file named by
``lpips_weights=PATH``. gantk never downloads weights. The file holds torchvision's VGG16 convolutions up to
relu5_3 (``features.N.weight`` and ``features.N.bias`` for N in 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
and LPIPS's five non-negative linear layers (``lin0.weight`` … ``lin4.weight``, shapes (1, C, 1, 1) for
C = 64, 128, 256, 512, 512). The user makes it once, outside gantk, from the ``lpips`` package
(``pip install lpips``, which fetches torchvision's ImageNet VGG16 itself)::

    import lpips
    from safetensors.torch import save_file
    model = lpips.LPIPS(net="vgg")
    tensors = {"features." + name.split(".", 1)[1]: value for name, value in model.net.state_dict().items()}
    tensors.update({f"lin{k}.weight": getattr(model, f"lin{k}").model[-1].weight for k in range(5)})
    save_file({name: value.detach().contiguous() for name, value in tensors.items()}, "lpips_vgg.safetensors")

(``model.net`` keeps torchvision's layer numbers inside its slices: ``slice2.5.weight`` is ``features.5.weight``.)

The discriminator is kept by reference, not as a submodule of the term: its parameters are already in D's
optimizer and checkpoints. The LPIPS network is frozen and likewise not a submodule: it is read from its file
whenever the term is built (a resumed run reads it again) and is neither trained nor saved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from torch import Tensor, nn

import gantk
from gantk.errors import GantkError, UsageError
from gantk.protocols import NEEDS, DataSpec, DiscriminatorPhase, LossTerm, SelfSupervisedDiscriminator

NAME = "recon"
DISTANCES = ("l1", "mse", "lpips")

#: VGG16's convolutions (output channels) and 2×2 max-pools ("M") up to relu5_3 (Simonyan & Zisserman 2015).
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
#: Positions in torchvision's ``vgg16().features`` of relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3: LPIPS's taps.
LPIPS_TAPS = (3, 8, 15, 22, 29)
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
#: LPIPS's input scaling for images in [−1, 1]: x' = (x − shift) / scale, per RGB channel (Zhang et al. 2018).
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
#: relu5_3 is after four 2×2 pools: smaller images have no pixel left there.
LPIPS_MIN_SIZE = 16
UNIT_NORM_EPS = 1e-10

MAKE_WEIGHTS = ("make it once, outside gantk, from the lpips package (pip install lpips) with the snippet in "
                "docs/fastgan.md (it saves LPIPS-VGG's state as a .safetensors file), then pass "
                "-L recon.lpips_weights=FILE")


# --------------------------------------------------------------------------------- distances
def l1_distance(reconstruction: Tensor, target: Tensor) -> Tensor:
    return (reconstruction - target).abs().mean()  # mean |r − t| over every element


def mse_distance(reconstruction: Tensor, target: Tensor) -> Tensor:
    return (reconstruction - target).square().mean()  # mean (r − t)² over every element


def unit_normalised(features: Tensor) -> Tensor:
    """Each pixel's feature vector divided by its length over the channels: f / √(Σ_c f² + ε).

    LPIPS divides by ``√(Σ_c f²) + ε``; with ε inside the root the gradient stays finite at a pixel whose
    features are all zero (ReLU maps often have some), and the value differs by less than ε."""
    return features * torch.rsqrt(features.square().sum(dim=1, keepdim=True) + UNIT_NORM_EPS)  # f / √(Σ_c f² + ε)


class LpipsVGG(nn.Module):
    """LPIPS with VGG16 features (Zhang et al. 2018): a perceptual distance per image pair, in float32.

    ``d(a, b) = Σ_l (1/(H_l W_l)) Σ_{h,w} Σ_c w_{l,c} (f̂ᵃ_{l,hwc} − f̂ᵇ_{l,hwc})²`` over the taps l = relu1_2 …
    relu5_3, with f̂ the unit-normalised features of the scaled images and w_l ≥ 0 the learned linear layers.
    The state_dict keys are torchvision's ``features.N.*`` and ``lin0.weight`` … ``lin4.weight``.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for item in VGG16_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                in_channels = item
        self.features = nn.Sequential(*layers)  # indices as torchvision's vgg16().features[:30]
        for index, channels in enumerate(LPIPS_CHANNELS):
            self.add_module(f"lin{index}", nn.Conv2d(channels, 1, kernel_size=1, bias=False))
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()

    def linear_weights(self) -> list[Tensor]:
        return [getattr(self, f"lin{index}").weight for index in range(len(LPIPS_CHANNELS))]

    def tapped_features(self, images: Tensor) -> list[Tensor]:
        """VGG16's activations at relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3."""
        taps, x = [], images
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in LPIPS_TAPS:
                taps.append(x)
        return taps

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """LPIPS per pair, shape (B,), for two batches of images in [−1, 1] with 1 or 3 channels."""
        if min(a.shape[-2:]) < LPIPS_MIN_SIZE:
            raise UsageError(
                f"The loss term '{NAME}' with distance=lpips compares images of at least {LPIPS_MIN_SIZE}×"
                f"{LPIPS_MIN_SIZE} pixels (VGG16 pools them four times), but the discriminator's reconstructions are "
                f"{a.shape[-2]}×{a.shape[-1]}. Use distance=l1 or mse, or a larger --image-size.")
        both = torch.cat([a, b]).float()
        if both.shape[1] == 1:
            both = both.expand(-1, 3, -1, -1)  # grey images: the same value in R, G and B
        scaled = (both - self.shift) / self.scale  # x' = (x − shift) / scale
        distance = torch.zeros(a.shape[0], device=a.device)
        for features, weight in zip(self.tapped_features(scaled), self.linear_weights()):
            features_a, features_b = unit_normalised(features.float()).chunk(2)
            squared = (features_a - features_b).square()  # (f̂ᵃ − f̂ᵇ)², per pixel and channel
            weighted = (squared * weight.float().view(1, -1, 1, 1)).sum(dim=1)  # Σ_c w_c (f̂ᵃ − f̂ᵇ)²
            distance = distance + weighted.mean(dim=(1, 2))  # spatial average, summed over the taps
        return distance


# --------------------------------------------------------------------------------- weights file
def _weights_error(path: Path, problem: str) -> GantkError:
    return GantkError(f"Cannot use '{path}' as the LPIPS-VGG weights of the loss term '{NAME}': {problem}. The file "
                      f"should hold torchvision's VGG16 features.N.weight/bias and LPIPS's lin0.weight … lin4.weight; "
                      f"{MAKE_WEIGHTS}.")


def _few(names: list[str], limit: int = 4) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def resolve_lpips_weights(path: Any) -> Path:
    """The weights file named by ``lpips_weights``; a usage error if it is not given or is not a file."""
    if path is None or (isinstance(path, str) and not path.strip()):
        raise UsageError(f"The loss term '{NAME}' with distance=lpips needs LPIPS-VGG's weights as a local "
                         f".safetensors file (gantk never downloads them), but lpips_weights was not given: "
                         f"{MAKE_WEIGHTS}.")
    if not isinstance(path, (str, Path)):
        raise gantk.options.option_error(f"loss '{NAME}'", "lpips_weights", path, "a file path",
                                         "a .safetensors file (a path without commas)")
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise UsageError(f"The LPIPS-VGG weights file '{resolved}' (recon.lpips_weights) does not exist or is not a "
                         f"file. Check the path, or {MAKE_WEIGHTS}.")
    return resolved


def load_lpips_vgg(path: Any) -> LpipsVGG:
    """LPIPS-VGG (eval mode, frozen, CPU) with the weights of the safetensors file ``path``."""
    resolved = resolve_lpips_weights(path)
    try:
        tensors = load_safetensors_bytes(resolved.read_bytes())
    except OSError as error:
        raise _weights_error(resolved, f"it cannot be read ({error.strerror or error})") from error
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise _weights_error(resolved, "it is not a complete safetensors file") from error
    network = LpipsVGG()
    expected = network.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(f"{name} {tuple(tensors[name].shape)} instead of {tuple(expected[name].shape)}"
                   for name in set(expected) & set(tensors) if tensors[name].shape != expected[name].shape)
    problems = [f"{label} ({_few(names)})" for label, names in
                (("missing", missing), ("not part of LPIPS-VGG", unexpected), ("of the wrong shape", wrong)) if names]
    if problems:
        raise _weights_error(resolved, "its tensors do not match: " + "; ".join(problems))
    network.load_state_dict({name: value.float() for name, value in tensors.items()})
    negative = [f"lin{index}" for index, weight in enumerate(network.linear_weights()) if (weight < 0).any()]
    if negative:
        raise _weights_error(resolved, f"{', '.join(negative)} have negative weights, which LPIPS's learned linear "
                                       f"layers never have (they are kept ≥ 0)")
    return network


# --------------------------------------------------------------------------------- the term
class ReconstructionLoss(LossTerm):
    """FastGAN's self-supervised reconstruction loss on real images (Liu et al. 2021, §3.2), D's side only."""

    needs = frozenset({"reconstruction"})
    auxiliary = True  # a regulariser of D: composes with an adversarial loss (hinge+recon)

    def __init__(self, distance: str = "l1", lpips_weights: str | None = None,
                 perceptual: LpipsVGG | None = None) -> None:
        super().__init__()
        self.distance, self.lpips_weights = distance, lpips_weights
        # Plain attributes, not submodules (object.__setattr__ bypasses nn.Module's registration): D's parameters
        # are already D's, and the frozen LPIPS network is read from its file, not trained or checkpointed.
        object.__setattr__(self, "_perceptual", perceptual)
        object.__setattr__(self, "_discriminator", None)

    def attach(self, discriminator: nn.Module) -> None:
        if not isinstance(discriminator, SelfSupervisedDiscriminator):
            raise UsageError(f"The loss term '{NAME}' needs {NEEDS['reconstruction']}, but the discriminator "
                             f"{type(discriminator).__name__} has no decoders. Choose such a discriminator with --disc "
                             f"(fastgan), or drop '{NAME}' from --loss.")
        object.__setattr__(self, "_discriminator", discriminator)

    def _distance_function(self, device: torch.device) -> Callable[[Tensor, Tensor], Tensor]:
        if self.distance == "l1":
            return l1_distance
        if self.distance == "mse":
            return mse_distance
        if self._perceptual.shift.device != device:
            self._perceptual.to(device)  # in place, once: the frozen network follows the run's device
        return lambda reconstruction, target: self._perceptual(reconstruction, target).mean()  # E_x LPIPS(r, t)

    def discriminator_loss(self, step: DiscriminatorPhase) -> Tensor:
        discriminator = self._discriminator
        if discriminator is None:
            raise GantkError(f"The loss term '{NAME}' was used before being attached to a discriminator: the training "
                             f"procedure must call loss.attach(discriminator) first (gantk's gan procedure does).")
        extras = step.real_out.extras
        if not extras:
            raise GantkError(f"The loss term '{NAME}' needs the intermediate maps the discriminator "
                             f"{type(discriminator).__name__} returns in DiscriminatorOutput.extras on real images, but "
                             f"it returned none. Its forward must fill extras (see gantk.SelfSupervisedDiscriminator).")
        pairs = discriminator.reconstruct(extras)
        if not pairs:
            raise GantkError(f"The discriminator {type(discriminator).__name__} returned no reconstruction from "
                             f"reconstruct(extras), so the loss term '{NAME}' has nothing to compare.")
        distance = self._distance_function(step.real_out.logits.device)
        total = torch.zeros((), device=step.real_out.logits.device)
        for name, (reconstruction, target) in pairs.items():
            if reconstruction.shape != target.shape:
                raise GantkError(f"The discriminator {type(discriminator).__name__}'s reconstruction '{name}' has "
                                 f"shape {tuple(reconstruction.shape)} but its target {tuple(target.shape)}: "
                                 f"reconstruct() must return pairs of the same shape.")
            total = total + distance(reconstruction.float(), target.float())  # Σ over the pairs
        return total

    def options(self) -> dict[str, Any]:
        return {"distance": self.distance, "lpips_weights": self.lpips_weights}


def build_reconstruction(spec: DataSpec, *, distance: str = "l1", lpips_weights: Any = None) -> ReconstructionLoss:
    """FastGAN's reconstruction loss on D's decoders (Liu 2021): distance l1 (default), mse or lpips (lpips_weights)."""
    owner = f"loss '{NAME}'"
    distance = gantk.options.choice(owner, "distance", distance, DISTANCES,
                                    hint="l1 (default), mse, or lpips with lpips_weights=FILE")
    if distance != "lpips":
        if lpips_weights is not None:
            raise UsageError(f"The {owner} option lpips_weights is used only with distance=lpips, but distance is "
                             f"{distance}. Add -L {NAME}.distance=lpips, or drop lpips_weights.")
        return ReconstructionLoss(distance)
    if not spec.is_image or spec.channels not in (1, 3):
        raise UsageError(f"The {owner} with distance=lpips compares images with 1 or 3 channels, but the data set "
                         f"'{spec.name}' has samples of shape {spec.shape}. Use distance=l1 or mse.")
    weights = resolve_lpips_weights(lpips_weights).resolve()  # absolute: a resumed run finds it from anywhere
    return ReconstructionLoss(distance, str(weights), load_lpips_vgg(weights))


@gantk.hookimpl
def register_losses(register):
    register(NAME, build_reconstruction,
             summary="FastGAN's self-supervised reconstruction loss on D's decoders (Liu 2021), D only; options "
                     "distance (l1, mse or lpips) and lpips_weights (a local LPIPS-VGG .safetensors file)")
