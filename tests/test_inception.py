"""The FID Inception-v3 feature extractor (Heusel et al. 2017), read from a local safetensors file.

The real weights are never needed: a seeded random-weights model of the same architecture is saved
with safetensors and loaded back. Inputs are small (32x32) since the network resizes to 299x299.
"""

from __future__ import annotations

import hashlib
import math

import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from torchvision.models.inception import InceptionA, InceptionC, InceptionE, inception_v3

from gantk.errors import GantkError, UsageError
from gantk.plugins.metrics import inception
from gantk.plugins.metrics.inception import (INCEPTION_ENV, FIDInceptionA, FIDInceptionC, FIDInceptionE1,
                                             FIDInceptionE2, InceptionFeatures, build_fid_inception,
                                             load_fid_inception, resolve_inception_weights, to_inception_input)

BN_EPS = 0.001  # torchvision's BasicConv2d


# ------------------------------------------------------------------------------ helpers
def _random_model(seed: int = 0) -> nn.Module:
    """The architecture with seeded weights that keep activations O(1) (He init) and non-trivial BatchNorm."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_fid_inception()
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.data.uniform_(0.8, 1.2)
                module.bias.data.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _images(n: int, channels: int = 3, side: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, channels, side, side, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """(path of a saved random-weights model, its state_dict, the model)."""
    model = _random_model()
    state = {name: t.clone() for name, t in model.state_dict().items()}
    path = tmp_path_factory.mktemp("inception") / "pt_inception-2015-12-05.safetensors"
    save_file(state, str(path))
    return path, state, model


@pytest.fixture(scope="module")
def extractor(weights):
    return InceptionFeatures(weights[0])


@pytest.fixture(scope="module")
def reference(weights, extractor):
    """Three images and their features from the extractor (batch size 50)."""
    images = _images(3)
    return images, extractor.features(images)


def _identity_pool_block(block: nn.Module) -> nn.Module:
    """Make the block's branch_pool conv copy input channel 0 to its output channel 0 (others 0); eval mode.

    With BatchNorm at its initial state (mean 0, var 1, weight 1, bias 0) and positive inputs,
    that output channel is then pool(x)[:, 0] / sqrt(1 + eps).
    """
    with torch.no_grad():
        weight = block.branch_pool.conv.weight
        weight.zero_()
        weight[0, 0, 0, 0] = 1.0
    return block.eval()


def _hand_pool(x: torch.Tensor, reduce) -> torch.Tensor:
    """3x3, stride 1, padding 1 pooling of the single map ``x`` (H, W) over the in-image entries only."""
    height, width = x.shape
    out = torch.empty(height, width)
    for i in range(height):
        for j in range(width):
            window = [float(x[a, b]) for a in range(max(i - 1, 0), min(i + 2, height))
                      for b in range(max(j - 1, 0), min(j + 2, width))]
            out[i, j] = reduce(window)
    return out


# ------------------------------------------------------------------------------ loading and outputs
def test_random_weights_load_strictly_and_give_features_and_probabilities(weights, extractor, reference):
    path, state, model = weights
    loaded = extractor.model.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[name], state[name]) for name in state)
    images, features = reference
    assert features.shape == (3, 2048) and features.dtype == torch.float32 and features.device.type == "cpu"
    assert torch.isfinite(features).all() and features.std() > 0.1
    assert (features[0] - features[1]).abs().max() > 1e-3  # different images, different features
    with torch.no_grad():  # the extractor runs the saved network on the documented preprocessing
        expected = model.pool3(to_inception_input(images[:2]))
    torch.testing.assert_close(features[:2], expected, rtol=1e-5, atol=1e-5)
    probs = extractor.probabilities(images[:2])
    assert probs.shape == (2, 1008) and probs.dtype == torch.float32 and probs.device.type == "cpu"
    assert (probs >= 0).all()
    torch.testing.assert_close(probs.sum(1), torch.ones(2))
    torch.testing.assert_close(probs, torch.softmax(model.fc(expected), 1), rtol=1e-5, atol=1e-6)
    assert InceptionFeatures.name == "inception" and InceptionFeatures.dim == 2048


def test_load_fid_inception_returns_the_saved_network_in_eval_mode(weights):
    path, state, _ = weights
    model = load_fid_inception(path)
    assert not model.training
    assert all(torch.equal(model.state_dict()[name], state[name]) for name in state)


def test_features_are_deterministic_and_independent_of_batch_size(weights, extractor, reference):
    images, features = reference
    assert torch.equal(extractor.features(images), features)
    one_at_a_time = InceptionFeatures(weights[0], batch_size=1)
    torch.testing.assert_close(one_at_a_time.features(images), features, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(extractor.features(images.to(torch.float64)), features)  # fp32 inside


def test_grayscale_equals_the_image_repeated_to_three_channels(extractor):
    gray = _images(1, channels=1, seed=5)
    torch.testing.assert_close(extractor.features(gray), extractor.features(gray.repeat(1, 3, 1, 1)),
                               rtol=1e-6, atol=1e-6)


def test_empty_and_malformed_inputs(extractor):
    assert extractor.features(torch.empty(0, 3, 32, 32)).shape == (0, 2048)
    assert extractor.probabilities(torch.empty(0, 1, 8, 8)).shape == (0, 1008)
    for bad in (torch.zeros(2, 2, 8, 8), torch.zeros(2, 8, 8), torch.zeros(2, 4, 8, 8)):
        with pytest.raises(UsageError, match="C = 1 or 3"):
            extractor.features(bad)
    with pytest.raises(UsageError, match="batch size"):
        InceptionFeatures(extractor.path, batch_size=0)


def test_weights_sha256_is_the_hash_of_the_file_bytes(weights, extractor):
    assert extractor.weights_sha256 == hashlib.sha256(weights[0].read_bytes()).hexdigest()


# ------------------------------------------------------------------------------ architecture
def test_architecture_has_torchvision_keys_and_the_fid_blocks():
    model = build_fid_inception()
    assert not model.training
    stock = inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=False, transform_input=False)
    ours, theirs = model.state_dict(), stock.state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[name].shape == theirs[name].shape for name in ours)
    assert ours["fc.weight"].shape == (1008, 2048) and "Mixed_7c.branch_pool.conv.weight" in ours
    assert all(type(getattr(model, n)) is FIDInceptionA for n in ("Mixed_5b", "Mixed_5c", "Mixed_5d"))
    assert all(type(getattr(model, n)) is FIDInceptionC for n in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"))
    assert type(model.Mixed_7b) is FIDInceptionE1 and type(model.Mixed_7c) is FIDInceptionE2
    assert model.AuxLogits is None and not model.transform_input


def test_e2_block_pools_with_max_not_mean():
    torch.manual_seed(0)
    block = _identity_pool_block(FIDInceptionE2(2))
    stock = InceptionE(2).eval()
    stock.load_state_dict(block.state_dict())
    x = torch.rand(1, 2, 5, 6) + 0.1  # positive: the ReLU passes it
    with torch.no_grad():
        out, stock_out = block(x), stock(x)
    assert out.shape == (1, 2048, 5, 6)
    pool = out[0, -192]  # branch_pool's 192 channels come last
    expected = _hand_pool(x[0, 0], max) / math.sqrt(1 + BN_EPS)
    torch.testing.assert_close(pool, expected)
    assert (pool[1:, 1:] - stock_out[0, -192, 1:, 1:]).abs().min() > 1e-4  # the stock block averages
    torch.testing.assert_close(out[:, :-192], stock_out[:, :-192])  # the other branches are unchanged


@pytest.mark.parametrize("ours, stock, pool_channels", [
    (lambda: FIDInceptionA(2, pool_features=4), lambda: InceptionA(2, pool_features=4), 4),
    (lambda: FIDInceptionC(2, channels_7x7=4), lambda: InceptionC(2, channels_7x7=4), 192),
    (lambda: FIDInceptionE1(2), lambda: InceptionE(2), 192),
], ids=["A", "C", "E_1"])
def test_average_pools_exclude_the_padding(ours, stock, pool_channels):
    torch.manual_seed(0)
    block = _identity_pool_block(ours())
    reference_block = stock().eval()
    reference_block.load_state_dict(block.state_dict())
    x = torch.rand(1, 2, 5, 6) + 0.1
    with torch.no_grad():
        out, stock_out = block(x), reference_block(x)
    pool = out[0, -pool_channels]
    scale = math.sqrt(1 + BN_EPS)
    torch.testing.assert_close(pool, _hand_pool(x[0, 0], lambda w: sum(w) / len(w)) / scale)
    # at the corner only 4 of the 9 window entries lie in the image: their mean, not their sum / 9
    torch.testing.assert_close(pool[0, 0], x[0, 0, :2, :2].mean() / scale)
    torch.testing.assert_close(stock_out[0, -pool_channels, 0, 0], x[0, 0, :2, :2].sum() / 9 / scale)
    # inside the image both agree
    torch.testing.assert_close(pool[1:-1, 1:-1], stock_out[0, -pool_channels, 1:-1, 1:-1])
    torch.testing.assert_close(out[:, :-pool_channels], stock_out[:, :-pool_channels])


# ------------------------------------------------------------------------------ preprocessing
def test_preprocessing_resizes_bilinearly_to_299_and_keeps_the_range():
    x = _images(2, side=32)
    y = to_inception_input(x)
    assert y.shape == (2, 3, 299, 299) and y.dtype == torch.float32
    assert y.min() >= -1 and y.max() <= 1
    torch.testing.assert_close(to_inception_input(torch.full((1, 3, 7, 5), 0.25)), torch.full((1, 3, 299, 299), 0.25))
    gray = to_inception_input(x[:, :1])
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 0], gray[:, 2])
    # one row of 3 pixels: output column i samples source position s = (i + 0.5) * 3 / 299 - 0.5 (half-pixel
    # centres, align_corners=False), clamped to [0, 2], and interpolates linearly between its two neighbours
    row = torch.tensor([-1.0, 0.6, -0.2])
    y = to_inception_input(row.view(1, 1, 1, 3))
    expected = []
    for i in range(299):
        s = min(max((i + 0.5) * 3 / 299 - 0.5, 0.0), 2.0)
        left = min(int(math.floor(s)), 1)
        expected.append(float(row[left]) + (s - left) * float(row[left + 1] - row[left]))
    torch.testing.assert_close(y[0, 0], torch.tensor(expected).expand(299, 299), rtol=1e-5, atol=1e-5)
    # a 2x2 image: the corners keep their values, the centre is the mean of the four
    square = torch.tensor([[-1.0, 0.5], [0.25, 1.0]]).view(1, 1, 2, 2)
    z = to_inception_input(square)[0, 0]
    torch.testing.assert_close(torch.stack([z[0, 0], z[0, -1], z[-1, 0], z[-1, -1], z[149, 149]]),
                               torch.tensor([-1.0, 0.5, 0.25, 1.0, 0.1875]))


# ------------------------------------------------------------------------------ finding the weights
def test_no_weights_given_is_a_usage_error_that_says_what_to_do(monkeypatch):
    monkeypatch.delenv(INCEPTION_ENV, raising=False)
    with pytest.raises(UsageError) as caught:
        resolve_inception_weights(None)
    message = str(caught.value)
    for needed in ("GANTK_INCEPTION_WEIGHTS", "--inception-weights", "pt_inception-2015-12-05",
                   "pt_inception-2015-12-05-6726825d.pth", "pytorch-fid", "weights_only=True", "gantk weights convert"):
        assert needed in message
    assert "\n" not in message and caught.value.exit_code == 2
    with pytest.raises(UsageError, match=INCEPTION_ENV):
        InceptionFeatures()


def test_the_environment_variable_is_used_when_no_path_is_given(tmp_path, monkeypatch):
    from_env, given = tmp_path / "env.safetensors", tmp_path / "given.safetensors"
    from_env.write_bytes(b"x")
    given.write_bytes(b"x")
    monkeypatch.setenv(INCEPTION_ENV, str(from_env))
    assert resolve_inception_weights(None) == from_env
    assert resolve_inception_weights(given) == given  # an explicit path wins
    assert resolve_inception_weights(str(given)) == given


def test_a_nonexistent_path_is_a_usage_error_naming_it(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "weights.safetensors"
    with pytest.raises(UsageError, match="nowhere") as caught:
        resolve_inception_weights(missing)
    assert str(missing) in str(caught.value)
    monkeypatch.setenv(INCEPTION_ENV, str(missing))
    with pytest.raises(UsageError) as caught:
        resolve_inception_weights(None)
    assert str(missing) in str(caught.value) and INCEPTION_ENV in str(caught.value)


def test_a_pickled_checkpoint_is_refused_with_the_conversion_command(tmp_path):
    pth = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    pth.write_bytes(b"not read")
    with pytest.raises(UsageError, match="weights_only=True") as caught:
        resolve_inception_weights(pth)
    assert f"gantk weights convert {pth} --out {pth.with_suffix('.safetensors')}" in str(caught.value)


# ------------------------------------------------------------------------------ damaged files
def _assert_readable(error: GantkError, path) -> None:
    message = str(error)
    assert str(path) in message and "\n" not in message and "Traceback" not in message
    assert type(error) is GantkError and error.exit_code == 1


def test_a_truncated_file_is_a_gantk_error(weights, tmp_path):
    truncated = tmp_path / "truncated.safetensors"
    data = weights[0].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(GantkError) as caught:
        load_fid_inception(truncated)
    _assert_readable(caught.value, truncated)
    assert "safetensors" in str(caught.value)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 5)
    with pytest.raises(GantkError) as caught:
        InceptionFeatures(garbage)
    _assert_readable(caught.value, garbage)


def test_missing_or_misshapen_tensors_are_a_gantk_error(weights, tmp_path):
    _, state, _ = weights
    lacking = tmp_path / "lacking.safetensors"
    save_file({name: t for name, t in state.items() if name != "Mixed_7c.branch_pool.conv.weight"}, str(lacking))
    with pytest.raises(GantkError) as caught:
        load_fid_inception(lacking)
    _assert_readable(caught.value, lacking)
    assert "Mixed_7c.branch_pool.conv.weight" in str(caught.value) and "missing" in str(caught.value)

    thousand = tmp_path / "thousand_classes.safetensors"
    save_file({**state, "fc.weight": state["fc.weight"][:1000].clone(), "fc.bias": state["fc.bias"][:1000].clone()},
              str(thousand))
    with pytest.raises(GantkError) as caught:
        load_fid_inception(thousand)
    _assert_readable(caught.value, thousand)
    assert "fc.weight (1000, 2048) instead of (1008, 2048)" in str(caught.value)


def test_batchnorm_step_counters_are_optional(weights, tmp_path):
    _, state, _ = weights
    trimmed = tmp_path / "no_counters.safetensors"
    save_file({name: t for name, t in state.items() if not name.endswith("num_batches_tracked")}, str(trimmed))
    model = load_fid_inception(trimmed)
    assert torch.equal(model.state_dict()["fc.weight"], state["fc.weight"])


def test_the_module_documents_the_conversion():
    assert inception.CONVERT_COMMAND in inception.__doc__
    assert "pytorch-fid" in inception.__doc__ and "Heusel" in inception.__doc__ and "Szegedy" in inception.__doc__
