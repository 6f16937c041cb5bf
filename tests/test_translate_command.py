"""``gantk translate``: one PNG per input image, the translator's own output, and clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import gantk
from gantk.engine.trainer import Trainer
from gantk.plugins.tools.translate_command import read_image

from engine_helpers import tiny_config

#: A narrow CycleGAN for 16-px colour images (the data set, a folder with trainA/ and trainB/, is set per test).
COLOUR_CYCLEGAN = {"procedure": "cyclegan", "gen": "resnet-translator", "disc": "patchgan", "loss": "lsgan",
                   "gen_options": {"blocks": 1, "width": 4}, "disc_options": {"width": 4,
                   "layers": 2}, "batch_size": 2, "ema": None}


@pytest.fixture(scope="module")
def translator_file(tmp_path_factory):
    """A translator trained for one step between two folders of 16-px colour images."""
    root = tmp_path_factory.mktemp("two-domains")
    generator = np.random.default_rng(0)
    for domain in ("trainA", "trainB"):
        (root / domain).mkdir()
        for index in range(4):
            pixels = generator.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / domain / f"{index}.png")
    config = tiny_config(**{**COLOUR_CYCLEGAN, "dataset": "folder", "data_root": str(root), "steps": 1})
    result = Trainer(config, tmp_path_factory.mktemp("runs") / "cg", show_progress=False).train()
    return result.exported


def write_inputs(folder, count=3):
    folder.mkdir()
    for index in range(count):
        rgba = np.full((20, 20, 4), 255, dtype=np.uint8)
        rgba[..., 0] = 40 * index
        rgba[:10, :, 3] = 0  # a transparent top half: composited on the background
        Image.fromarray(rgba, "RGBA").save(folder / f"emoji_{index}.png")
    return sorted(folder.iterdir())


def test_translate_writes_one_png_per_input_equal_to_the_translators_output(translator_file, tmp_path, cli):
    inputs = write_inputs(tmp_path / "in")
    result = cli("translate", str(translator_file), "--direction", "b2a", "--input", str(tmp_path / "in"),
                 "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    written = sorted((tmp_path / "out").iterdir())
    assert [path.name for path in written] == [path.name for path in inputs]
    translator = gantk.load_translator(translator_file)
    for source, target in zip(inputs, written):
        image = np.asarray(Image.open(target))
        assert image.shape == (16, 16, 3)  # resized to the translator's size
        x = torch.nn.functional.interpolate(read_image(source, 3, 255)[None], size=(16, 16), mode="bilinear",
                                            align_corners=False, antialias=True)
        with torch.no_grad():
            expected = ((translator.b2a(x)[0].clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()
        assert np.abs(image.astype(np.float64) - expected).max() <= 1  # the translator's output, 8-bit rounded


def test_transparent_pixels_are_composited_on_the_background(tmp_path):
    [path] = write_inputs(tmp_path / "in", count=1)
    white, black = read_image(path, 3, 255), read_image(path, 3, 0)
    assert torch.all(white[:, :10] == 1.0) and torch.all(black[:, :10] == -1.0)
    assert torch.equal(white[:, 10:], black[:, 10:])  # opaque pixels do not depend on it


def test_existing_outputs_are_kept_unless_overwrite(translator_file, tmp_path, cli):
    write_inputs(tmp_path / "in", count=1)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "emoji_0.png").write_bytes(b"keep me")
    args = ["translate", str(translator_file), "--direction", "a2b", "--input", str(tmp_path / "in"), "--out",
            str(tmp_path / "out")]
    refused = cli(*args)
    assert refused.exit_code == 2 and "--overwrite" in refused.output
    assert (tmp_path / "out" / "emoji_0.png").read_bytes() == b"keep me"
    assert cli(*args, "--overwrite").exit_code == 0
    assert Image.open(tmp_path / "out" / "emoji_0.png").size == (16, 16)


def test_bad_inputs_get_one_paragraph_not_a_traceback(translator_file, tmp_path, cli):
    write_inputs(tmp_path / "in", count=1)
    wrong_direction = cli("translate", str(translator_file), "--direction", "ab", "--input", str(tmp_path / "in"),
                          "--out", str(tmp_path / "out"))
    assert wrong_direction.exit_code == 2 and "a2b or b2a" in wrong_direction.output
    missing = cli("translate", str(translator_file), "--direction", "a2b", "--input", str(tmp_path / "nothing"),
                  "--out", str(tmp_path / "out"))
    assert missing.exit_code == 2 and "does not exist" in missing.output
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    broken = cli("translate", str(translator_file), "--direction", "a2b", "--input", str(tmp_path / "in"), "--out",
                 str(tmp_path / "out2"))
    assert broken.exit_code == 1 and "broken.png" in broken.output and "Traceback" not in broken.output
