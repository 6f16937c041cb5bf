"""gantk's Inception FID against the references most published FIDs use: pytorch-fid and torchmetrics.

1. Features: pytorch-fid's ``InceptionV3`` (2048-d block, ``use_fid_inception=True``) is built with its
   download patched to return a seeded random state dict in the release file's layout; that state is
   saved as the ``.pth``, converted with ``gantk weights convert`` (through the CLI), and gantk's
   extractor must give pytorch-fid's features, to 1e-5, on the same images of other sizes than
   299x299 (so both resize them). pytorch-fid takes [0, 1] images, gantk [-1, 1] ones.
2. The Fréchet distance (Heusel et al. 2017): gantk's against pytorch-fid's
   ``calculate_frechet_distance`` and torchmetrics' ``FrechetInceptionDistance`` on the same features.

Nothing is downloaded. ``-s`` prints the measured differences.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
from pytorch_fid import inception as pytorch_fid_inception
from pytorch_fid.fid_score import calculate_frechet_distance
from safetensors.torch import load, load_file
from torchmetrics.image.fid import FrechetInceptionDistance
from torchvision.models import inception_v3
from typer.testing import CliRunner

from gantk.plugins.metrics.formulas import frechet_distance, gaussian_statistics
from gantk.plugins.metrics.inception import INCEPTION_ENV, PTH_NAME, PTH_URL, InceptionFeatures

SEED = 17
FEATURE_TOLERANCE = 1e-5


# ------------------------------------------------------------------------------ pytorch-fid's network, random weights
def _random_release_state(seed: int = SEED) -> dict[str, torch.Tensor]:
    """A seeded random state dict with the release file's names and shapes.

    pytorch-fid loads the release file strictly into torchvision's Inception3 (1008 classes, no
    auxiliary head), so that network's state_dict gives the layout (BatchNorm step counters left
    out). Values keep activations O(1): He-normal convolutions, BatchNorm scale in [0.5, 1.5],
    running variance in [0.5, 2] (positive), small shifts.
    """
    template = inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=False).state_dict()
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, tensor in template.items():
        if name.endswith("num_batches_tracked"):
            continue
        shape = tensor.shape
        if tensor.dim() >= 2:  # convolution (out, in, kh, kw) or fc (out, in) weights: N(0, 2 / fan_in)
            fan_in = math.prod(shape[1:])
            value = torch.randn(shape, generator=generator) * math.sqrt(2.0 / fan_in)
        elif name.endswith("running_var"):
            value = torch.rand(shape, generator=generator) * 1.5 + 0.5
        elif name.endswith("bn.weight"):
            value = torch.rand(shape, generator=generator) + 0.5
        else:  # BatchNorm shifts and running means, the fc bias
            value = torch.randn(shape, generator=generator) * 0.1
        state[name] = value
    return state


@pytest.fixture(scope="module")
def pytorch_fid_reference(tmp_path_factory):
    """(pytorch-fid's 2048-d InceptionV3, its full Inception for the fc layer, the random state saved as the .pth)."""
    requested: list[str] = []
    state = _random_release_state()

    def download(url, *args, **kwargs):  # stands in for torch.hub's load_state_dict_from_url
        requested.append(url)
        return {name: tensor.clone() for name, tensor in state.items()}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pytorch_fid_inception, "load_state_dict_from_url", download)
        block = pytorch_fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]
        network = pytorch_fid_inception.InceptionV3([block], use_fid_inception=True).eval()
        whole = pytorch_fid_inception.fid_inception_v3().eval()
    # the file gantk's docs point at is the one pytorch-fid downloads
    assert requested == [PTH_URL, PTH_URL] and PTH_URL.endswith("/" + PTH_NAME)
    pth = tmp_path_factory.mktemp("pytorch-fid") / PTH_NAME
    torch.save(state, pth)
    return network, whole, pth


@pytest.fixture(scope="module")
def converted(pytorch_fid_reference):
    """The .pth converted by ``gantk weights convert``: (path, the command's result)."""
    from gantk.cli.app import build_app

    pth = pytorch_fid_reference[2]
    out = pth.parent / "pt_inception-2015-12-05.safetensors"
    result = CliRunner().invoke(build_app(), ["weights", "convert", str(pth), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result


@pytest.fixture(scope="module")
def extractor(converted):
    return InceptionFeatures(converted[0])


def _pytorch_fid_features(network, unit_images: torch.Tensor) -> torch.Tensor:
    """pytorch-fid's pool3 features of [0, 1] RGB images (it resizes to 299 and scales to [-1, 1] itself)."""
    with torch.no_grad():
        return network(unit_images)[0].flatten(1)


# (channels, height, width): every size is resized to 299x299 by both, up or (360x360: where antialiasing would
# change the features by 0.85) down; a grayscale image is RGB with equal channels
IMAGE_SIZES = [(3, 64, 64), (3, 32, 32), (1, 28, 28), (3, 360, 360)]


@pytest.mark.parametrize("channels,height,width", IMAGE_SIZES)
def test_gantk_features_equal_pytorch_fids_on_resized_images(pytorch_fid_reference, extractor, channels, height,
                                                             width):
    network = pytorch_fid_reference[0]
    generator = torch.Generator().manual_seed(height)
    unit = torch.rand(2, channels, height, width, generator=generator)  # pytorch-fid's input: [0, 1]
    expected = _pytorch_fid_features(network, unit.expand(-1, 3, -1, -1))
    actual = extractor.features(unit * 2 - 1)  # gantk's images are in [-1, 1]
    difference = float((actual - expected).abs().max())
    print(f"\n{channels}x{height}x{width}: max |gantk - pytorch-fid| = {difference:.3g} "
          f"(features: mean |f| = {float(expected.abs().mean()):.3g}, max |f| = {float(expected.abs().max()):.3g})")
    assert actual.shape == expected.shape == (2, 2048)
    # the comparison means something: features of O(0.1..1) that differ between images
    assert float(expected.abs().mean()) > 1e-2 and float((expected[0] - expected[1]).abs().max()) > 1e-2
    assert difference <= FEATURE_TOLERANCE


def test_gantk_class_probabilities_use_the_converted_fc_layer(pytorch_fid_reference, extractor):
    network, whole, _ = pytorch_fid_reference
    unit = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = torch.softmax(whole.fc(_pytorch_fid_features(network, unit)), dim=1)
    actual = extractor.probabilities(unit * 2 - 1)
    print(f"\nmax |p_gantk - p_pytorch-fid| = {float((actual - expected).abs().max()):.3g}")
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-7)


# ------------------------------------------------------------------------------ the conversion command
def test_the_conversion_prints_the_hash_and_how_to_use_the_file(converted):
    out, result = converted
    sha256 = hashlib.sha256(out.read_bytes()).hexdigest()
    assert f"SHA-256 {sha256}" in result.stdout
    assert f"--inception-weights {out}" in result.stdout and f"{INCEPTION_ENV}={out.resolve()}" in result.stdout
    # random weights are not the release file: the command says so (on stderr), without failing
    assert "6726825d" in result.stderr and "not pytorch-fid's release file" in result.stderr


def test_the_converted_file_keeps_every_tensor_as_float32(pytorch_fid_reference, converted):
    state = torch.load(pytorch_fid_reference[2], weights_only=True)
    tensors = load_file(converted[0])
    assert tensors.keys() == state.keys()
    for name, tensor in tensors.items():
        assert tensor.dtype == torch.float32 and torch.equal(tensor, state[name]), name


def test_the_same_tensors_give_the_same_bytes():
    """Same source, same file, same SHA-256 in every score's protocol (safetensors' own metadata order varies)."""
    from gantk.plugins.tools.weights_command import _serialise

    tensors = {"fc.weight": torch.arange(6.0).view(2, 3), "fc.bias": torch.ones(2)}
    written = {_serialise(tensors, "ab" * 32, "pytorch-fid") for _ in range(8)}
    assert len(written) == 1
    loaded = load(written.pop())
    assert loaded.keys() == tensors.keys() and all(torch.equal(loaded[name], tensors[name]) for name in tensors)


def test_old_saves_with_step_counters_convert_to_the_same_tensors(pytorch_fid_reference, converted, cli, tmp_path):
    # the legacy (non-zip) torch.save format, with BatchNorm step counters, as older saves have them
    pth = pytorch_fid_reference[2]
    with_counters = {**torch.load(pth, weights_only=True), "Conv2d_1a_3x3.bn.num_batches_tracked": torch.tensor(7)}
    legacy = tmp_path / "legacy.pth"
    torch.save(with_counters, legacy, _use_new_zipfile_serialization=False)
    legacy_out = tmp_path / "legacy.safetensors"
    result = cli("weights", "convert", str(legacy), "--out", str(legacy_out), "--format", "pytorch-fid")
    assert result.exit_code == 0, result.output
    legacy_tensors, tensors = load_file(legacy_out), load_file(converted[0])
    assert legacy_tensors.keys() == tensors.keys()
    assert all(torch.equal(legacy_tensors[name], tensors[name]) for name in tensors)


def _save(value):
    return lambda path: torch.save(value, path)


def _write(data: bytes):
    return lambda path: path.write_bytes(data)


# (case, SRC's name, how to make it (None: leave it missing), extra arguments, exit code, words the message must hold)
BAD_INPUTS = [
    ("missing", "w.pth", None, [], 2, ["does not exist", PTH_URL]),
    ("folder", "w.pth", lambda path: path.mkdir(), [], 2, ["is a folder", PTH_NAME]),
    ("already safetensors", "src.safetensors", _write(b"{}"), [], 2,
     ["already a safetensors file", "--inception-weights"]),
    ("text file", "w.pth", _write(b"hello, not weights\n"), [], 1, ["not a file written by torch.save", PTH_URL]),
    ("truncated", "w.pth", _write(b"PK\x03\x04" + b"\x00" * 60), [], 1, ["Cannot read", "truncated", PTH_URL]),
    ("a pickled module", "w.pth", _save(torch.nn.Linear(2, 2)), [], 1, ["weights_only=True", "state_dict()"]),
    ("a tensor", "w.pth", _save(torch.zeros(3)), [], 1, ["holds a Tensor, not a state dict"]),
    ("a checkpoint", "w.pth", _save({"model": {"fc.weight": torch.zeros(2)}, "step": 3}), [], 1,
     ["not a state dict", "'model'", "torch.save(checkpoint['model']"]),
    ("wrong keys", "w.pth", _save({"layer.weight": torch.zeros(2, 2)}), [], 1,
     ["tensors are missing (Conv2d_1a_3x3.", "layer.weight", "not part of the network", PTH_URL]),
    ("pytorch-fid's wrapper", "w.pth", _save({"blocks.0.0.conv.weight": torch.zeros(32, 3, 3, 3)}), [], 1,
     ["InceptionV3 wrapper", "(fc)", PTH_NAME]),
    ("torchvision's ImageNet weights", "w.pth", _save({"AuxLogits.fc.weight": torch.zeros(1000, 768),
                                                       "fc.weight": torch.zeros(1000, 2048)}), [], 1,
     ["fc.weight (1000, 2048) instead of (1008, 2048)", "AuxLogits.fc.weight", "torchvision's ImageNet"]),
    ("out not safetensors", "w.pth", _save({}), ["--out", "{tmp}/w.pth2"], 2, ["ending in .safetensors"]),
    ("out exists", "w.pth", _save({}), ["--out", "{tmp}/exists.safetensors"], 2, ["already exists", "--force"]),
    ("unknown format", "w.pth", _save({}), ["--format", "clean-fid"], 2, ["--format", "pytorch-fid", "clean-fid"]),
]


@pytest.mark.parametrize("case,name,make,extra,exit_code,words", BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_inputs_get_one_paragraph_that_says_what_to_do(cli, tmp_path, case, name, make, extra, exit_code, words):
    source = tmp_path / name
    if make is not None:
        make(source)
    (tmp_path / "exists.safetensors").write_bytes(b"keep me")
    extra = [argument.format(tmp=tmp_path) for argument in extra]
    if "--out" not in extra:
        extra += ["--out", str(tmp_path / "w.safetensors")]
    result = cli("weights", "convert", str(source), *extra)
    message = result.stderr
    assert result.exit_code == exit_code, result.output
    assert message.startswith("Error: ") and len(message.strip().splitlines()) == 1 and "Traceback" not in message
    for word in words:
        assert word in message, (word, message)
    assert not (tmp_path / "w.safetensors").exists()
    assert (tmp_path / "exists.safetensors").read_bytes() == b"keep me"


# ------------------------------------------------------------------------------ the Fréchet distance
class _GivenFeatures(torch.nn.Module):
    """A torchmetrics "feature extractor" whose input rows already are the features: its own FID code then runs on them.

    torchmetrics learns the feature size from ``num_features``, or (some versions) by probing the
    extractor with a uint8 image; that probe gets zero features of the right size.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        if rows.dtype == torch.uint8:
            return torch.zeros(len(rows), self.num_features, dtype=torch.float64)
        return rows


def _feature_sets(n: int, dim: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian feature sets (float64) with different means and covariances."""
    generator = np.random.default_rng(seed)
    first = generator.standard_normal((n, dim)) * generator.uniform(0.5, 2.0, dim) + generator.normal(0, 1, dim)
    mixing = np.eye(dim) + generator.normal(0, 0.5 / math.sqrt(dim), (dim, dim))
    second = generator.standard_normal((n, dim)) @ mixing + generator.normal(0, 1, dim)
    return first, second


def _fids(first: np.ndarray, second: np.ndarray) -> dict[str, float]:
    """FID of the two feature sets by gantk, pytorch-fid and torchmetrics, each from the features."""
    ours = frechet_distance(gaussian_statistics(torch.from_numpy(first)), gaussian_statistics(torch.from_numpy(second)))
    # pytorch-fid's statistics, as its calculate_activation_statistics takes them
    theirs = calculate_frechet_distance(first.mean(axis=0), np.cov(first, rowvar=False),
                                        second.mean(axis=0), np.cov(second, rowvar=False))
    metric = FrechetInceptionDistance(feature=_GivenFeatures(first.shape[1]))
    metric.update(torch.from_numpy(first), real=True)
    metric.update(torch.from_numpy(second), real=False)
    return {"gantk": ours, "pytorch-fid": float(theirs), "torchmetrics": float(metric.compute())}


@pytest.mark.parametrize("n,dim", [(500, 8), (1000, 64),
                                   pytest.param(2500, 2048, marks=pytest.mark.slow, id="2500-2048")])
def test_gantk_fid_equals_pytorch_fid_and_torchmetrics(n, dim):
    fids = _fids(*_feature_sets(n, dim))
    differences = {name: abs(fids["gantk"] - value) / abs(value) for name, value in fids.items() if name != "gantk"}
    print(f"\nn={n}, d={dim}: FID {fids}; relative differences {differences}")
    assert fids["gantk"] > 1  # distinct sets: a distance far from rounding noise
    for name, difference in differences.items():
        assert difference < 1e-12, (name, fids)  # measured: up to 3e-15
