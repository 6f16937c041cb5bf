"""A small CNN classifier of a labelled image data set, trained once per data set and cached.

The conditional-accuracy metric (and FID on the small digit sets) needs a classifier trained on
the real data. :func:`load_or_train_classifier` trains one in seconds on a CPU, deterministically
for a seed, on a seeded 90 % of the samples, and measures its accuracy on the other 10 %. The
weights are cached as safetensors (never pickle) under a name made from the data set's name, a
SHA-256 of its samples and labels, and the seed; the metadata header records what they were
trained on. A cache file that is unreadable, or that was made for other data, another seed or
another recipe, is retrained and replaced, never an error. Training shows its progress (steps, rate,
ETA), then says where the file is cached; a cache hit names the file once per process
(:mod:`gantk.engine.progress`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import gantk
from gantk.errors import GantkError, UsageError
from gantk.protocols import Dataset, signed_unit
from gantk.engine.progress import notice, one_time_work
from gantk.engine.safetensors_io import read_safetensors, write_safetensors
from gantk.engine.sampling import evaluating

#: Bump when the architecture or the training recipe changes: older cache files are then retrained.
RECIPE_VERSION = 1
HOLDOUT_SHARE = 0.1
#: The smallest image side the classifier accepts (one 2x pooling must leave at least 4x4).
MIN_SIDE = 8
CACHE_ENV = "GANTK_CACHE_DIR"
#: Cache files this process has named ("Using the cached classifier at ..." comes once per file).
_announced: set[Path] = set()


class ImageClassifier(nn.Module):
    """conv-BN-ReLU stages, each after the first halving the image (2x max-pool) and doubling the
    width, while the smaller side stays >= 4 (at most ``max_down`` times); then global average
    pooling (the features) and a linear layer (the class logits).

    8x8 gives 8->4 (one halving), 28x28 gives 28->14->7, 32x32 gives 32->16->8->4.
    """

    def __init__(self, shape: tuple[int, int, int], num_classes: int, width: int = 16, max_down: int = 3) -> None:
        super().__init__()
        channels, height, width_px = shape
        self.options = {"shape": list(shape), "num_classes": num_classes, "width": width, "max_down": max_down}
        side, downs = min(height, width_px), 0
        while downs < max_down and side // 2 >= 4:
            side, downs = side // 2, downs + 1
        layers: list[nn.Module] = [_conv_bn_relu(channels, width)]
        current = width
        for _ in range(downs):
            layers += [nn.MaxPool2d(2), _conv_bn_relu(current, 2 * current), _conv_bn_relu(2 * current, 2 * current)]
            current *= 2
        self.body = nn.Sequential(*layers)
        self.feature_dim = current
        self.head = nn.Linear(current, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """The penultimate features (B, feature_dim): the body's output averaged over space."""
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (B, num_classes)."""
        return self.head(self.features(x))


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


@dataclass(frozen=True)
class ClassifierInfo:
    """What :func:`load_or_train_classifier` did: the held-out accuracy, the cache file, whether it was loaded."""

    heldout_accuracy: float
    cache_path: Path
    loaded: bool
    data_sha256: str
    seed: int
    train_seconds: float = 0.0
    #: why an existing cache file was not used (empty when there was none, or it was loaded).
    retrain_reason: str = ""


# ----------------------------------------------------------------------------- checks
def require_labelled_images(dataset: Dataset, purpose: str = "This metric") -> None:
    """A usage error unless ``dataset`` holds labelled images (C, H, W) with H, W >= 8, in memory."""
    spec, name = dataset.spec, dataset.spec.name or "this data set"
    if dataset.labels is None or spec.num_classes < 2:
        raise UsageError(
            f"{purpose} needs a labelled data set (images with class labels, such as mnist5k or digits), "
            f"but '{name}' has no class labels. A classifier trained on the real images labels the "
            "generated ones, so pick a labelled data set (e.g. --dataset mnist5k), or use a metric that "
            "needs no labels.")
    if not spec.is_image or min(spec.shape[1:]) < MIN_SIDE:
        raise UsageError(
            f"{purpose} classifies images of at least {MIN_SIDE}x{MIN_SIDE} pixels (C, H, W), but '{name}' "
            f"holds samples of shape {spec.shape}. Use an image data set such as mnist5k or digits "
            "(or --image-size to enlarge small images).")
    if dataset.samples is None:
        raise UsageError(
            f"{purpose} trains its classifier on data held in memory, but '{name}' is streamed from disk. "
            "Use a data set that fits in memory (e.g. a smaller --image-size) or an embedded one (mnist5k, digits).")
    if len(dataset.labels) != len(dataset.samples):
        raise UsageError(f"'{name}' has {len(dataset.samples)} samples but {len(dataset.labels)} labels.")
    if len(dataset.labels) and (int(dataset.labels.min()) < 0 or int(dataset.labels.max()) >= spec.num_classes):
        raise UsageError(f"'{name}' has labels outside 0..{spec.num_classes - 1} (its number of classes).")


# ----------------------------------------------------------------------------- training
def classify(model: nn.Module, samples: Tensor, *, batch_size: int = 1000, device: str | torch.device = "cpu") -> Tensor:
    """The predicted class (N,) int64 on the CPU for each sample, in eval mode and without gradients."""
    with evaluating(model), torch.no_grad():
        chunks = [model(signed_unit(samples[i:i + batch_size].to(device))).argmax(1).cpu()
                  for i in range(0, len(samples), batch_size)]
    return torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.int64)


def split_indices(n: int, seed: int) -> tuple[Tensor, Tensor]:
    """A seeded permutation of ``range(n)`` cut into (train, held-out); the held-out part is 10 %."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_hold = max(1, round(HOLDOUT_SHARE * n))
    return order[n_hold:], order[:n_hold]


def train_classifier(samples: Tensor, labels: Tensor, num_classes: int, *, seed: int = 0,
                     device: str | torch.device = "cpu", epochs: int = 6, min_steps: int = 300,
                     max_steps: int = 3000, batch_size: int = 128, lr: float = 3e-3,
                     on_step: Callable[[int, int], None] | None = None) -> tuple[ImageClassifier, float]:
    """Train an :class:`ImageClassifier` with Adam and a cosine learning-rate decay; return it and its held-out accuracy.

    ``epochs`` passes over the 90 % training split, but at least ``min_steps`` and at most
    ``max_steps`` updates. Deterministic for a seed on the CPU; the global RNG is left untouched.
    ``on_step(done, total)`` is called after each update (progress).
    """
    train, held_out = split_indices(len(samples), seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ImageClassifier(tuple(samples.shape[1:]), num_classes)
    model.to(device).train()
    x = signed_unit(samples[train].to(device))  # uint8 pixels → [-1, 1], x/255·2 − 1
    y = labels[train].to(device)
    batch = max(2, min(batch_size, len(train)))
    per_epoch = max(1, len(train) // batch)  # full batches only: BatchNorm needs more than one sample
    steps = min(max_steps, max(min_steps, epochs * per_epoch))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    shuffle = torch.Generator().manual_seed(seed + 1)
    order = torch.empty(0, dtype=torch.int64)
    with torch.enable_grad():  # also when called under no_grad (from an evaluation, say)
        for step in range(steps):
            if step % per_epoch == 0:
                order = torch.randperm(len(train), generator=shuffle).to(device)
            index = order[(step % per_epoch) * batch:(step % per_epoch + 1) * batch]
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if on_step is not None:
                on_step(step + 1, steps)
    model.eval()
    predicted = classify(model, samples[held_out], device=device)
    return model, float((predicted == labels[held_out]).float().mean())


# ----------------------------------------------------------------------------- caching
def default_cache_dir() -> Path:
    """``$GANTK_CACHE_DIR/classifiers``, else ``$XDG_CACHE_HOME/gantk/classifiers``, else ``~/.cache/gantk/classifiers``."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser() / "classifiers"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "gantk" / "classifiers"


def data_sha256(dataset: Dataset) -> str:
    """SHA-256 of the samples' shape and float32 bytes followed by the labels' int64 bytes (if labelled).

    uint8 pixels are hashed as the float32 values the classifier sees (:func:`gantk.protocols.signed_unit`),
    so a data set's hash did not change when it began to keep uint8 samples.
    """
    digest = hashlib.sha256()
    samples = signed_unit(dataset.samples.detach().to("cpu")).contiguous()
    digest.update(repr(tuple(samples.shape)).encode())
    digest.update(samples.numpy().tobytes())
    if dataset.labels is not None:
        digest.update(dataset.labels.detach().to("cpu", torch.int64).contiguous().numpy().tobytes())
    return digest.hexdigest()


def cache_file(cache_dir: Path, name: str, digest: str, seed: int) -> Path:
    """``<name>-<first 16 hex digits of the hash>-seed<seed>.safetensors`` (name reduced to safe characters)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "dataset"
    return Path(cache_dir) / f"{safe}-{digest[:16]}-seed{seed}.safetensors"


def _expected_metadata(dataset: Dataset, digest: str, seed: int, options: dict[str, Any]) -> dict[str, str]:
    return {
        "format": "pt",
        "gantk.kind": "classifier",
        "gantk.version": gantk.__version__,
        "gantk.recipe": str(RECIPE_VERSION),
        "gantk.dataset": dataset.spec.name,
        "gantk.data_sha256": digest,
        "gantk.seed": str(seed),
        "gantk.architecture": json.dumps(options, sort_keys=True),
    }


#: Metadata keys that must match for a cache file to be used (gantk.version and gantk.dataset may differ).
_MATCHING = ("gantk.kind", "gantk.recipe", "gantk.data_sha256", "gantk.seed", "gantk.architecture")


def _load_cached(path: Path, expected: dict[str, str], model: ImageClassifier) -> tuple[float | None, str]:
    """Load ``path`` into ``model``: (held-out accuracy, "") on success, (None, why not) otherwise."""
    if not path.is_file():
        return None, ""
    try:
        tensors, metadata = read_safetensors(path)
    except GantkError as error:
        return None, f"unreadable: {error}"
    stale = [key for key in _MATCHING if metadata.get(key) != expected[key]]
    if stale:
        return None, f"made for other data or options ({', '.join(stale)} differ)"
    expected_keys = set(model.state_dict())
    if set(tensors) != expected_keys:  # strict loading forgives a missing BatchNorm num_batches_tracked
        missing, extra = sorted(expected_keys - set(tensors)), sorted(set(tensors) - expected_keys)
        return None, f"incomplete: missing {missing or 'nothing'}, unexpected {extra or 'nothing'}"
    try:
        accuracy = float(metadata["gantk.heldout_accuracy"])
        model.load_state_dict(tensors, strict=True)
    except (KeyError, ValueError, RuntimeError) as error:
        return None, f"incomplete: {type(error).__name__}: {error}"
    return accuracy, ""


def load_or_train_classifier(dataset: Dataset, *, cache_dir: Path | str | None = None, seed: int = 0,
                             device: str | torch.device = "cpu") -> tuple[ImageClassifier, ClassifierInfo]:
    """The classifier of ``dataset`` (in eval mode, on ``device``) and a :class:`ClassifierInfo`.

    Loaded from ``cache_dir`` (default :func:`default_cache_dir`) when a matching file is there
    (named once per process), else trained with its progress shown (see :func:`train_classifier`) and
    written there atomically.
    """
    require_labelled_images(dataset, "The conditional-accuracy metric")
    digest = data_sha256(dataset)
    path = cache_file(Path(cache_dir) if cache_dir is not None else default_cache_dir(),
                      dataset.spec.name, digest, seed)
    model = ImageClassifier(dataset.spec.shape, dataset.spec.num_classes)
    expected = _expected_metadata(dataset, digest, seed, model.options)
    accuracy, reason = _load_cached(path, expected, model)
    if accuracy is not None:
        if path not in _announced:
            notice(f"Using the cached classifier at {path} (held-out accuracy {accuracy:.3f}).")
        _announced.add(path)
        return model.to(device).eval(), ClassifierInfo(accuracy, path, True, digest, seed)
    why = f"; the cached file is {reason}" if reason else ""
    start = time.perf_counter()
    with one_time_work(f"Training a classifier of {dataset.spec.name} for the metrics (first use{why})") as advance:
        model, accuracy = train_classifier(dataset.samples, dataset.labels, dataset.spec.num_classes,
                                           seed=seed, device=device, on_step=advance)
    seconds = time.perf_counter() - start
    write_safetensors(path, model.state_dict(), {**expected, "gantk.heldout_accuracy": repr(accuracy),
                                                 "gantk.train_seconds": f"{seconds:.3f}"})
    notice(f"Classifier cached at {path} (held-out accuracy {accuracy:.3f}); the next run reuses it.")
    _announced.add(path)
    return model, ClassifierInfo(accuracy, path, False, digest, seed, seconds, reason)
