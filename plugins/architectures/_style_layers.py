"""The layers of StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN",
arXiv:1912.04958): equalised learning rate, modulated and demodulated convolutions, noise inputs,
the [1, 3, 3, 1] resampling filter and the minibatch standard deviation.

Private to ``gantk.plugins.architectures``; :mod:`gantk.plugins.architectures.stylegan2` builds the
networks from them.

**Equalised learning rate** (Karras et al. 2018, §4.1). A weight is stored as N(0, 1)/lr_mul and
scaled at run time by lr_mul/√fan_in, so every layer's output starts with the variance of its
input, and Adam (whose steps do not depend on the gradient's scale) moves each layer's effective
weights by the same relative amount. ``lr_mul`` < 1 slows a layer down (0.01 in the mapping
network). The layers are ``nn.Linear``/``nn.Conv2d`` subclasses with their own ``forward``, so
spectral normalisation (``spectral_normalise_``) finds them; gantk's bf16 kernels leave them alone.

**Resampling**, with the paper's FIR filter [1, 3, 3, 1] throughout. A synthesis layer that
upsamples does as the paper's code: a transposed convolution with stride 2, then the filter (zero
padding). The skip image is upsampled bilinearly (``F.interpolate``, half-pixel centres), which is
the same filter inside the image and repeats the edge pixel at the border. Downsampling applies
[1, 3, 3, 1]/8 per axis with stride 2, repeating the edge. All are native operations that run in
bf16 on a CPU.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantk.engine.discriminator_input import minibatch_stddev  # shared with -D mbstd (every discriminator)

#: LeakyReLU's slope and the gain that restores unit variance after it (√2, as in StyleGAN).
LRELU_SLOPE, LRELU_GAIN = 0.2, math.sqrt(2.0)
#: ε of the second-moment normalisation and of the demodulation.
EPSILON = 1e-8


def scaled_lrelu(x: Tensor) -> Tensor:
    """LeakyReLU(0.2) · √2."""
    return F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN


class ScaledLeakyReLU(nn.Module):
    """:func:`scaled_lrelu` as a layer."""

    def forward(self, x: Tensor) -> Tensor:
        return scaled_lrelu(x)


def normalise_second_moment(x: Tensor, dim: int = 1) -> Tensor:
    """x / √(E[x²] + ε) along ``dim`` (StyleGAN's normalisation of z, the 'pixel norm')."""
    return x * (x.square().mean(dim=dim, keepdim=True) + EPSILON).rsqrt()  # x / √(mean(x²) + ε)


@contextlib.contextmanager
def float32_maths(device: torch.device):
    """Turn autocast off for small computations that need float32 (the demodulation coefficients)."""
    if device.type in ("cpu", "cuda") and torch.is_autocast_enabled(device.type):
        with torch.autocast(device.type, enabled=False):
            yield
    else:
        yield


# --------------------------------------------------------------------------- equalised layers
class EqualLinear(nn.Linear):
    """A linear layer with equalised learning rate: y = x (W·lr_mul/√in)ᵀ + b·lr_mul, W ~ N(0, 1/lr_mul²).
    ``equalised=False`` keeps the weight's gain at lr_mul: for layers that spectral normalisation scales instead."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, equalised: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.weight_gain = lr_mul / math.sqrt(in_features) if equalised else lr_mul  # lr_mul/√fan_in
        self.bias_gain = lr_mul
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0 / lr_mul)  # N(0, 1)/lr_mul
            if self.bias is not None:
                self.bias.fill_(bias_init / lr_mul)

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias * self.bias_gain if self.bias is not None else None
        return F.linear(x, self.weight * self.weight_gain, bias)


class EqualConv2d(nn.Conv2d):
    """A square convolution ('same' padding, stride 1) with equalised learning rate (weights N(0, 1), run-time gain
    1/√(in·k·k)). ``equalised=False`` keeps gain 1: for layers that spectral normalisation scales instead."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True,
                 equalised: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size) if equalised else 1.0
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0)
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)


# --------------------------------------------------------------------------- resampling
def upsample(x: Tensor) -> Tensor:
    """×2 with the [1, 3, 3, 1] filter (bilinear, half-pixel centres)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def _downsample_axis(x: Tensor, dim: int) -> Tensor:
    """Filter [1, 3, 3, 1]/8 along ``dim`` and keep every other sample (the edge repeated once each side)."""
    size = x.shape[dim]
    padded = torch.cat([x.narrow(dim, 0, 1), x, x.narrow(dim, size - 1, 1)], dim=dim)
    before = (slice(None),) * dim
    taps = [padded[(*before, slice(offset, offset + size, 2))] for offset in range(4)]  # x₂ᵢ₋₁₊ₒ, o = 0…3
    return (taps[0] + 3 * taps[1] + 3 * taps[2] + taps[3]) * 0.125  # (x₂ᵢ₋₁ + 3x₂ᵢ + 3x₂ᵢ₊₁ + x₂ᵢ₊₂)/8


def downsample(x: Tensor) -> Tensor:
    """÷2 with the [1, 3, 3, 1] filter in both directions."""
    return _downsample_axis(_downsample_axis(x, 2), 3)


def _blur_axis(x: Tensor, dim: int) -> Tensor:
    """Filter [1, 3, 3, 1]/4 along ``dim`` (the ×2 upsampling filter's gain), zero padding 2 before and 1 after."""
    size = x.shape[dim]
    pad = [0, 0] * (x.dim() - 1 - dim) + [2, 1]  # F.pad lists the last dimension first
    padded = F.pad(x, pad)
    before = (slice(None),) * dim
    taps = [padded[(*before, slice(offset, offset + size))] for offset in range(4)]
    return (taps[0] + 3 * taps[1] + 3 * taps[2] + taps[3]) * 0.25  # (t₋₂ + 3t₋₁ + 3t₀ + t₁)/4


def upsample_conv2d(x: Tensor, weight: Tensor) -> Tensor:
    """A k×k convolution of x upsampled ×2 with the [1, 3, 3, 1] filter, computed as the paper's code does: a
    transposed convolution with stride 2 (the convolution of the zero-interleaved x, skipping the zeros: a
    quarter of the work), then the filter on its output. Filter and convolution commute, so inside the image
    this is conv(upsample(x)); at the border the filter pads with zeros."""
    k = weight.shape[-1]
    # conv_transpose2d(x, W, stride 2)[m] = Σ_κ W[κ] x[(m − κ + p)/2]: with W the flipped kernel and p = k//2, the
    # 'same' convolution of the zero-interleaved x; output_padding 1 makes the side 2H
    out = F.conv_transpose2d(x, weight.transpose(0, 1).flip(2, 3), stride=2, padding=k // 2, output_padding=1)
    return _blur_axis(_blur_axis(out, 2), 3)


# --------------------------------------------------------------------------- modulated convolution
def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool = True, up: bool = False) -> Tensor:
    """Weight modulation and demodulation (Karras et al. 2020, §2.2) without per-sample weights.

    With styles s (B, I) and the effective weight w (O, I, k, k): w'_{jik} = s_i·w_{jik} and
    w''_{jik} = w'_{jik}/√(Σ_{i,k} w'_{jik}² + ε). Convolving x with w'' per sample (the paper's grouped
    convolution) equals scaling x's channels by s, convolving with the shared w, and scaling each output
    channel j by its demodulation coefficient d_j = 1/√(Σ_i s_i² Σ_k w_{jik}² + ε): one ordinary
    convolution for the whole batch, much faster on a CPU. ``up``: on x upsampled ×2 (:func:`upsample_conv2d`).
    """
    batch, in_channels = styles.shape
    scaled = x * styles.reshape(batch, in_channels, 1, 1).to(x.dtype)  # x·s
    weight = weight.to(x.dtype)
    out = upsample_conv2d(scaled, weight) if up else F.conv2d(scaled, weight, padding=weight.shape[-1] // 2)
    if not demodulate:
        return out
    with float32_maths(x.device):
        energy = weight.float().square().sum(dim=(2, 3))  # Σ_k w_{jik}², (O, I)
        coefficients = (styles.float().square() @ energy.t() + EPSILON).rsqrt()  # d_j = 1/√(Σ_i s_i² Σ_k w² + ε)
    return out * coefficients.reshape(batch, -1, 1, 1).to(out.dtype)


class ModulatedConv2d(nn.Module):
    """A k×k convolution modulated by per-sample styles s (B, in_channels) and demodulated unless
    ``demodulate=False`` (toRGB); weights N(0, 1) with the equalised gain 1/√(in·k·k)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, demodulate: bool = True,
                 up: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))  # N(0, 1)
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)  # equalised: 1/√fan_in
        self.demodulate, self.up = demodulate, up

    def forward(self, x: Tensor, styles: Tensor) -> Tensor:
        return modulated_conv2d(x, self.weight * self.weight_gain, styles, self.demodulate, self.up)


class NoiseBiasActivation(nn.Module):
    """Per-pixel noise with a learned strength (initialised 0), a bias, then LeakyReLU·√2.

    Noise: random per call (``"random"``), the fixed map drawn at construction and saved with the weights
    (``"const"``), or none (``"none"``).
    """

    def __init__(self, channels: int, resolution: int) -> None:
        super().__init__()
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, noise_mode: str) -> Tensor:
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_strength.to(x.dtype)  # + strength · N(0, 1), one channel per pixel
        elif noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength.to(x.dtype)
        return scaled_lrelu(x + self.bias.reshape(1, -1, 1, 1).to(x.dtype))


class SynthesisLayer(nn.Module):
    """One conv of the synthesis network at ``resolution``: a 3×3 conv [of the input upsampled ×2] modulated by s = A(w) (A: an
    equalised affine map, bias initialised to 1) and demodulated, then noise, bias and LeakyReLU·√2."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *, up: bool = False) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)  # s = A(w), s ≈ 1 at the start
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, up=up)
        self.noise = NoiseBiasActivation(out_channels, resolution)

    def forward(self, x: Tensor, w: Tensor, noise_mode: str) -> Tensor:
        return self.noise(self.conv(x, self.affine(w)), noise_mode)


class ToRGB(nn.Module):
    """A 1×1 conv to the image's channels modulated by s = A(w), without demodulation, plus a bias."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.conv = ModulatedConv2d(in_channels, out_channels, 1, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, self.affine(w)) + self.bias.reshape(1, -1, 1, 1).to(x.dtype)


# --------------------------------------------------------------------------- minibatch standard deviation
# minibatch_stddev lives in gantk.engine.discriminator_input (imported above), which also offers it to every
# discriminator as -D mbstd=G.


class MinibatchStdDev(nn.Module):
    """:func:`minibatch_stddev` as a layer."""

    def __init__(self, group_size: int = 4, features: int = 1) -> None:
        super().__init__()
        self.group_size, self.features = group_size, features

    def forward(self, x: Tensor) -> Tensor:
        return minibatch_stddev(x, self.group_size, self.features)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, features={self.features}"
