"""The Inception-v3 network of FID, as a feature extractor for FID, KID, IS and precision/recall.

FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium") compares the 2048-d pool3 features of Inception-v3 (Szegedy et al. 2016, "Rethinking
the Inception Architecture for Computer Vision") with the weights of the 2015-12-05 TensorFlow
graph; the Inception Score uses the same network's 1008-way softmax. Those weights, ported to
PyTorch, are ``pt_inception-2015-12-05-6726825d.pth`` from the GitHub releases of the pytorch-fid
project (https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth).

The architecture is torchvision's ``inception_v3`` (1008 classes, no auxiliary head, no input
transform) with the TF graph's pooling: the branch_pool average pooling of Mixed_5b-5d, Mixed_6b-6e
and Mixed_7b excludes the zero padding from the mean (``count_include_pad=False``), and Mixed_7c pools
with a 3x3 max instead. The state_dict keys are torchvision's, so a converted file loads strictly.

gantk never downloads, and reads the weights only from a ``.safetensors`` file that the user
converts once, themselves, with the one gantk command that reads a pickle (through
``torch.load(weights_only=True)``, and only when it is run)::

    gantk weights convert pt_inception-2015-12-05-6726825d.pth --out pt_inception-2015-12-05.safetensors

and passes with ``--inception-weights PATH`` or the ``GANTK_INCEPTION_WEIGHTS`` environment variable.
The preprocessing is pytorch-fid's, so with the same weights the features are pytorch-fid's
(``tests/test_inception_reference.py``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from torch import Tensor, nn
from torchvision.models.inception import (BasicConv2d, Inception3, InceptionA, InceptionAux, InceptionB, InceptionC,
                                          InceptionD, InceptionE)

from gantk.errors import GantkError, UsageError

INCEPTION_ENV = "GANTK_INCEPTION_WEIGHTS"
PTH_NAME = "pt_inception-2015-12-05-6726825d.pth"
SAFETENSORS_NAME = "pt_inception-2015-12-05.safetensors"
PTH_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{PTH_NAME}"
#: torch.hub, which pytorch-fid downloads with, names a file after the first hex digits of its SHA-256.
PTH_SHA256_PREFIX = "6726825d"
CONVERT_COMMAND = f"gantk weights convert {PTH_NAME} --out {SAFETENSORS_NAME}"
#: The side of the square network input (Szegedy et al. 2016, Table 1).
INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008
#: Extensions of pickled checkpoints: gantk refuses them and says how to convert.
_PICKLE_SUFFIXES = {".pth", ".pt", ".pkl", ".pickle", ".bin", ".ckpt", ".tar"}

_HOW_TO_GET = (
    f"Download {PTH_NAME} from the GitHub releases of the pytorch-fid project ({PTH_URL}), convert it once "
    f"to safetensors with: {CONVERT_COMMAND} (the one gantk command that reads a pickle, with "
    f"torch.load(weights_only=True); gantk never downloads anything), then pass --inception-weights PATH or set "
    f"the {INCEPTION_ENV} environment variable to the .safetensors file.")


# ----------------------------------------------------------------------------- the TF-graph blocks
class FIDInceptionA(InceptionA):
    """InceptionA (Mixed_5b-5d) whose branch_pool averages over the valid (unpadded) entries only."""

    def _forward(self, x: Tensor) -> list[Tensor]:
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        # pool(x)[i, j] = mean of x over the in-image part of the 3x3 window at (i, j)
        pooled = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        return [branch1x1, branch5x5, branch3x3dbl, self.branch_pool(pooled)]


class FIDInceptionC(InceptionC):
    """InceptionC (Mixed_6b-6e) whose branch_pool averages over the valid (unpadded) entries only."""

    def _forward(self, x: Tensor) -> list[Tensor]:
        branch1x1 = self.branch1x1(x)
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        branch7x7dbl = self.branch7x7dbl_3(self.branch7x7dbl_2(branch7x7dbl))
        branch7x7dbl = self.branch7x7dbl_5(self.branch7x7dbl_4(branch7x7dbl))
        # pool(x)[i, j] = mean of x over the in-image part of the 3x3 window at (i, j)
        pooled = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        return [branch1x1, branch7x7, branch7x7dbl, self.branch_pool(pooled)]


class _FIDInceptionE(InceptionE):
    """InceptionE with the branch_pool pooling left to :meth:`_pool`."""

    def _pool(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _forward(self, x: Tensor) -> list[Tensor]:
        branch1x1 = self.branch1x1(x)
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
        return [branch1x1, branch3x3, branch3x3dbl, self.branch_pool(self._pool(x))]


class FIDInceptionE1(_FIDInceptionE):
    """InceptionE of Mixed_7b ("E_1"): branch_pool averages over the valid (unpadded) entries only."""

    def _pool(self, x: Tensor) -> Tensor:
        # pool(x)[i, j] = mean of x over the in-image part of the 3x3 window at (i, j)
        return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionE2(_FIDInceptionE):
    """InceptionE of Mixed_7c ("E_2"): branch_pool takes the 3x3 maximum instead of the mean."""

    def _pool(self, x: Tensor) -> Tensor:
        # pool(x)[i, j] = max of x over the in-image part of the 3x3 window at (i, j)
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


#: The layers from the input to the last inception block, in order (torchvision's names).
_TRUNK = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
          "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
          "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")


class FIDInception3(Inception3):
    """torchvision's Inception3 with the FID blocks; ``forward`` gives the 1008 logits, ``pool3`` the features."""

    def __init__(self) -> None:
        blocks = [BasicConv2d, FIDInceptionA, InceptionB, FIDInceptionC, InceptionD, FIDInceptionE1, InceptionAux]
        super().__init__(num_classes=NUM_CLASSES, aux_logits=False, transform_input=False,
                         inception_blocks=blocks, init_weights=False)
        self.Mixed_7c = FIDInceptionE2(2048)

    def pool3(self, x: Tensor) -> Tensor:
        """The 2048-d pool3 features (N, 2048) of network inputs ``x`` (N, 3, 299, 299) in [-1, 1]."""
        for name in _TRUNK:
            x = getattr(self, name)(x)
        return torch.flatten(self.avgpool(x), 1)  # f = mean of Mixed_7c over the 8x8 positions

    def logits(self, features: Tensor) -> Tensor:
        """The 1008 class logits of pool3 ``features`` (dropout is inactive in eval mode)."""
        return self.fc(self.dropout(features))  # z = W f + b

    def forward(self, x: Tensor) -> Tensor:
        return self.logits(self.pool3(x))


def build_fid_inception() -> nn.Module:
    """The FID Inception-v3 architecture (Szegedy et al. 2016; Heusel et al. 2017) with random weights, in eval mode."""
    return FIDInception3().eval()


# ----------------------------------------------------------------------------- weights
def resolve_inception_weights(path: str | Path | None) -> Path:
    """The weights file: ``path``, else ``$GANTK_INCEPTION_WEIGHTS``; a usage error if neither names a file."""
    source = "--inception-weights"
    if path is None or str(path) == "":
        path, source = os.environ.get(INCEPTION_ENV) or None, f"${INCEPTION_ENV}"
    if path is None:
        raise UsageError(
            "This metric needs the Inception-v3 weights of FID (pt_inception-2015-12-05, the 2015-12-05 "
            f"TensorFlow graph ported to PyTorch) as a local .safetensors file, but none was given. {_HOW_TO_GET}")
    resolved = Path(path).expanduser()
    if resolved.suffix.lower() in _PICKLE_SUFFIXES:
        raise UsageError(
            f"'{resolved}' (from {source}) looks like a pickled PyTorch checkpoint, which gantk does not read here: "
            f"it reads the Inception-v3 weights only from a .safetensors file. Convert it once with: gantk weights "
            f"convert {resolved} --out {resolved.with_suffix('.safetensors')} (which reads it with "
            f"torch.load(weights_only=True)) and pass the .safetensors file with --inception-weights PATH or "
            f"{INCEPTION_ENV}.")
    if not resolved.is_file():
        raise UsageError(
            f"The Inception-v3 weights file '{resolved}' (from {source}) does not exist or is not a file. "
            f"{_HOW_TO_GET}")
    return resolved


def _weights_error(path: Path, problem: str) -> GantkError:
    return GantkError(
        f"Cannot use '{path}' as the Inception-v3 weights of FID: {problem}. It should be "
        f"{SAFETENSORS_NAME}, converted from {PTH_NAME} of the pytorch-fid project's GitHub releases "
        f"({PTH_URL}) with: {CONVERT_COMMAND}. Convert or copy it again, and check that it is the right file.")


def first_names(names: list[str], limit: int = 4) -> str:
    """The first ``limit`` names, comma-separated, and how many more there are."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _count(names: list[str]) -> str:
    return f"{len(names)} tensor is" if len(names) == 1 else f"{len(names)} tensors are"


def _expected_shapes() -> dict[str, torch.Size]:
    """The names and shapes of the network's tensors (built on the meta device: no memory, no initialisation)."""
    with torch.device("meta"):
        model = FIDInception3()
    return {name: tensor.shape for name, tensor in model.state_dict().items()}


def layout_problems(tensors: Mapping[str, Tensor]) -> list[str]:
    """What keeps ``tensors`` from loading strictly into the FID Inception-v3, a few names each: tensors missing, not
    part of the network, or of the wrong shape. Empty when they fit; BatchNorm's step counters may be absent."""
    expected = _expected_shapes()
    # BatchNorm's step counters are unused in eval mode and absent from some conversions.
    optional = {name for name in expected if name.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(tensors) - optional)
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(f"{name} {tuple(tensors[name].shape)} instead of {tuple(expected[name])}"
                   for name in set(expected) & set(tensors) if tensors[name].shape != expected[name])
    problems = []
    if missing:
        problems.append(f"{_count(missing)} missing ({first_names(missing)})")
    if unexpected:
        problems.append(f"{_count(unexpected)} not part of the network ({first_names(unexpected)})")
    if wrong:
        problems.append(f"{_count(wrong)} of the wrong shape ({first_names(wrong)})")
    return problems


def _model_from_bytes(path: Path, data: bytes) -> FIDInception3:
    """The FID Inception (eval mode, CPU) with the tensors of the safetensors file ``data`` read from ``path``."""
    try:
        tensors = load_bytes(data)
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise _weights_error(path, "it is not a complete safetensors file (truncated, corrupt, or another format"
                             + (f": {first_line}" if first_line else "") + ")") from error
    problems = layout_problems(tensors)
    if problems:
        raise _weights_error(path, "its tensors do not match the network: " + "; ".join(problems))
    model = FIDInception3()
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:  # e.g. a tensor of a type that cannot be copied into a parameter
        raise _weights_error(path, f"its tensors cannot be loaded ({str(error).strip().splitlines()[0]})") from error
    return model.eval()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise _weights_error(path, f"it cannot be read ({error.strerror or error})") from error


def load_fid_inception(path: str | Path | None) -> nn.Module:
    """The FID Inception-v3 (eval mode, CPU) with the weights of the safetensors file ``path``
    (resolved by :func:`resolve_inception_weights`); a :class:`GantkError` if the file is damaged or does not match."""
    resolved = resolve_inception_weights(path)
    return _model_from_bytes(resolved, _read(resolved))


# ----------------------------------------------------------------------------- preprocessing
def _check_images(images: Tensor) -> None:
    if images.dim() != 4 or images.shape[1] not in (1, 3) or min(images.shape[2:]) < 1:
        raise UsageError(
            f"The Inception-v3 features need images of shape (n, C, H, W) with C = 1 or 3 channels, "
            f"but got a tensor of shape {tuple(images.shape)}. Use an image data set (grayscale or RGB).")


def to_inception_input(images: Tensor) -> Tensor:
    """gantk images (n, C, H, W) in [-1, 1], C = 1 or 3, to the network input (n, 3, 299, 299) in [-1, 1], fp32.

    As pytorch-fid does: [0, 1] images resized bilinearly (align_corners=False, no antialiasing) to
    299x299, then scaled to [-1, 1]. Values are not clipped.
    """
    _check_images(images)
    x = images.to(torch.float32)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)  # grayscale: the same value in R, G and B
    x = (x + 1) / 2  # [-1, 1] -> [0, 1]
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)  # resize to 299x299
    return x * 2 - 1  # [0, 1] -> [-1, 1]


# ----------------------------------------------------------------------------- the extractor
class InceptionFeatures:
    """pool3 features and class probabilities of the FID Inception-v3 (Heusel et al. 2017) for gantk images.

    ``path`` (else ``$GANTK_INCEPTION_WEIGHTS``) names the converted ``.safetensors`` weights; see the
    module docstring. Images are processed ``batch_size`` at a time on ``device``, in fp32, without
    gradients; results come back as float32 on the CPU.
    """

    name = "inception"
    dim = FEATURE_DIM

    def __init__(self, path: str | Path | None = None, *, device: str | torch.device = "cpu",
                 batch_size: int = 50) -> None:
        if int(batch_size) < 1:
            raise UsageError(f"The Inception batch size must be at least 1, but got {batch_size}.")
        self.path = resolve_inception_weights(path)
        data = _read(self.path)
        #: SHA-256 (hex) of the weights file's bytes: record it next to a score to say which network made it.
        self.weights_sha256: str = hashlib.sha256(data).hexdigest()
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.model = _model_from_bytes(self.path, data).to(self.device)
        del data

    def _run(self, images: Tensor, head: bool) -> Tensor:
        _check_images(images)
        if len(images) == 0:
            return torch.empty(0, NUM_CLASSES if head else FEATURE_DIM, dtype=torch.float32)
        chunks = []
        with torch.no_grad(), torch.autocast(device_type=self.device.type, enabled=False):
            for start in range(0, len(images), self.batch_size):
                batch = to_inception_input(images[start:start + self.batch_size].to(self.device))
                features = self.model.pool3(batch)
                if head:
                    features = torch.softmax(self.model.logits(features), dim=1)  # p(y|x) = softmax(z)
                chunks.append(features.to("cpu", torch.float32))
        return torch.cat(chunks)

    def features(self, images: Tensor) -> Tensor:
        """The 2048-d pool3 features (n, 2048) of ``images`` (n, C, H, W) in [-1, 1], C = 1 or 3: float32, CPU."""
        return self._run(images, head=False)

    def probabilities(self, images: Tensor) -> Tensor:
        """The class probabilities p(y|x) (n, 1008), the softmax of the logits, of ``images``: float32, CPU."""
        return self._run(images, head=True)
