"""Generation output: folders of numbered PNGs (``gantk sample --out DIR/``), GIF interpolations, sample grids in
TensorBoard, and ``gantk eval`` results in the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

import gantk
from gantk.engine.config import TrainConfig
from gantk.engine.sampling import draw, draw_blocks, image_pixels
from gantk.engine.trainer import Trainer
from gantk.engine.model_dir import names_a_directory
from gantk.plugins.tools.image_files import sample_file_name
from gantk.plugins.tools.report import build_report
from gantk.protocols import DataSpec

from engine_helpers import tiny_config

SIDE = 8  # the digits are 8×8; grids put 2 pixels between and around them
CELL = SIDE + 2


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Finished tiny runs: unconditional digits, conditional digits (ns+ac), ring8 points."""
    root = tmp_path_factory.mktemp("runs")
    ring8 = TrainConfig.from_options({
        "gen": "mlp", "dataset": "ring8", "gen_options": {"z_dim": 2, "hidden": (16,)},
        "disc_options": {"hidden": (16,)}, "batch_size": 32, "steps": 2, "precision": "fp32", "ema": None,
        "log_every": 1, "sample_every": 1000, "checkpoint_every": 1000, "num_samples": 16})
    configs = {"image": tiny_config(steps=2), "conditional": tiny_config(steps=2, loss="ns+ac"), "ring8": ring8}
    for name, config in configs.items():
        Trainer(config, root / name, show_progress=False).train()
    return root


def grey(path: Path) -> np.ndarray:
    """A picture's pixels as a grey (H, W) array (the grids of grey digits are RGB with equal channels)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


def grid_cell(grid: np.ndarray, index: int, per_row: int) -> np.ndarray:
    row, column = divmod(index, per_row)
    return grid[2 + row * CELL:2 + row * CELL + SIDE, 2 + column * CELL:2 + column * CELL + SIDE]


def sample(cli, runs: Path, *args: str):
    return cli("sample", *args, "--runs-dir", str(runs))


# ------------------------------------------------------------------ gantk sample --out DIR/
def test_a_folder_holds_n_numbered_pngs_whose_first_64_are_the_grid(runs, cli, tmp_path):
    result = sample(cli, runs, "image", "--out", f"{tmp_path}/folder/", "--n", "70", "--seed", "3")
    assert result.exit_code == 0, result.output
    names = sorted(path.name for path in (tmp_path / "folder").iterdir())
    assert names == [f"{i:06d}.png" for i in range(70)]
    assert sample(cli, runs, "image", "--out", str(tmp_path / "grid.png"), "--seed", "3").exit_code == 0  # 64: 8×8
    grid = grey(tmp_path / "grid.png")
    for i in range(64):
        with Image.open(tmp_path / "folder" / names[i]) as picture:
            assert picture.mode == "L" and picture.size == (SIDE, SIDE)  # one grey digit per file
        assert np.array_equal(grey(tmp_path / "folder" / names[i]), grid_cell(grid, i, 8)), i


def test_the_files_do_not_depend_on_the_batch_size_or_n(runs, cli, tmp_path):
    for name, *options in (("default", "--n", "70"), ("b100", "--n", "70", "--batch-size", "100"),
                           ("long", "--n", "130", "--batch-size", "256")):
        result = sample(cli, runs, "image", "--out", str(tmp_path / name), "--seed", "5", *options)
        assert result.exit_code == 0, result.output
    for i in range(70):
        reference = (tmp_path / "default" / sample_file_name(i, 70)).read_bytes()
        assert (tmp_path / "b100" / sample_file_name(i, 70)).read_bytes() == reference, i
        assert (tmp_path / "long" / sample_file_name(i, 130)).read_bytes() == reference, i


def test_every_call_of_the_generator_makes_64_samples():
    # stylegan2's convolutions round differently in the last bits for another number of samples per call
    generator = gantk.get_registry().create("generator", "stylegan2", DataSpec((3, 32, 32), 0, "colour"), z_dim=64,
                                            w_dim=64, map_layers=2, channel_max=64)
    blocks = list(draw_blocks(generator, 66, seed=5))
    assert [(start, len(images)) for start, images in blocks] == [(0, 64), (64, 2)]
    short = torch.cat([images for _, images in blocks])
    long = torch.cat([images for _, images in draw_blocks(generator, 130, seed=5)])
    assert torch.equal(short, long[:66])  # bit for bit, the two samples of the last block included
    assert torch.equal(short[:64], draw(generator, 64, seed=5))  # the samples of the default grid
    fewer = torch.cat([images for _, images in draw_blocks(generator, 66, seed=5, block=16)])  # --batch-size 16
    assert (image_pixels(fewer).int() - image_pixels(short).int()).abs().max() <= 1  # float rounding at most


def test_conditional_folders_name_the_class_of_each_sample(runs, cli, tmp_path):
    assert sample(cli, runs, "conditional", "--out", str(tmp_path / "turns"), "--n", "25").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "turns").iterdir()) == [f"{i:06d}_class{i % 10}.png" for i in range(25)]
    assert sample(cli, runs, "conditional", "--out", str(tmp_path / "sevens"), "--n", "4", "--label", "7").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "sevens").iterdir()) == [f"{i:06d}_class7.png" for i in range(4)]
    result = sample(cli, runs, "conditional", "--out", str(tmp_path / "rows"), "--n", "20", "--labels", "all")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "rows").iterdir()) == [f"{i:06d}_class{i // 2}.png" for i in range(20)]
    # the same pictures as the --labels all grid (two per class row)
    assert sample(cli, runs, "conditional", "--out", str(tmp_path / "rows.png"), "--n", "20", "--labels", "all"
                  ).exit_code == 0
    grid = grey(tmp_path / "rows.png")
    for i in range(20):
        assert np.array_equal(grey(tmp_path / "rows" / f"{i:06d}_class{i // 2}.png"), grid_cell(grid, i, 2)), i


def test_a_folder_that_holds_files_is_refused_unless_overwrite(runs, cli, tmp_path):
    folder = tmp_path / "samples"
    assert sample(cli, runs, "image", "--out", str(folder), "--n", "5").exit_code == 0
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    refused = sample(cli, runs, "image", "--out", str(folder), "--n", "5", "--seed", "1")
    assert refused.exit_code == 2 and "already holds 5 file(s)" in refused.stderr and "--overwrite" in refused.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # untouched
    (folder / "notes.txt").write_text("mine")
    replaced = sample(cli, runs, "image", "--out", str(folder), "--n", "3", "--seed", "1", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert sorted(p.name for p in folder.iterdir()) == ["000000.png", "000001.png", "000002.png", "notes.txt"]
    assert (folder / "000000.png").read_bytes() != before["000000.png"]  # seed 1's samples, not seed 0's


def test_vector_generators_are_refused_a_folder_and_pointed_to_npz(runs, cli, tmp_path):
    result = sample(cli, runs, "ring8", "--out", f"{tmp_path}/points/", "--n", "10")
    assert result.exit_code == 2 and "not pictures" in result.stderr and ".npz" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "points").exists()


def test_what_out_names_a_folder(tmp_path):
    (tmp_path / "run.v2").mkdir()
    assert all(names_a_directory(out) for out in ("samples/", "samples", tmp_path / "run.v2"))
    assert not any(names_a_directory(out) for out in ("grid.png", "raw.npz", tmp_path / "x.v2"))
    assert sample_file_name(3, 10) == "000003.png" and sample_file_name(3, 2_000_000, 4) == "0000003_class4.png"


# ------------------------------------------------------------------ gantk interpolate --out x.gif
@pytest.mark.parametrize("run, rows", [("image", 1), ("conditional", 10)])
def test_a_gif_holds_the_columns_of_the_strip(runs, cli, tmp_path, run, rows):
    common = ["interpolate", run, "--runs-dir", str(runs), "--steps", "6", "--seed", "2"]
    result = cli(*common, "--out", str(tmp_path / "walk.gif"), "--frame-ms", "80")
    assert result.exit_code == 0, result.output
    assert cli(*common, "--out", str(tmp_path / "walk.png")).exit_code == 0
    strip = grey(tmp_path / "walk.png")
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames == 6 and gif.info["loop"] == 0 and gif.info["duration"] == 80
        frames = [np.asarray(frame.convert("L")) for frame in ImageSequence.Iterator(gif)]
    for t, frame in enumerate(frames):
        if rows == 1:  # one image per frame
            assert np.array_equal(frame, grid_cell(strip, t, 6)), t
        else:  # frame t: column t of the strip, one class per row
            assert frame.shape == (rows * CELL + 2, CELL + 2)
            assert np.array_equal(frame, strip[:, t * CELL:t * CELL + CELL + 2]), t


def test_a_gif_of_vector_samples_is_refused(runs, cli, tmp_path):
    result = cli("interpolate", "ring8", "--runs-dir", str(runs), "--out", str(tmp_path / "walk.gif"))
    assert result.exit_code == 2 and "not pictures" in result.stderr and not (tmp_path / "walk.gif").exists()


# ------------------------------------------------------------------ TensorBoard
def test_tensorboard_gets_each_sample_grid_as_an_image(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = Trainer(tiny_config(steps=4, sample_every=2, tensorboard=True), tmp_path / "run",
                  show_progress=False).train().run_dir
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert "samples" in events.Tags()["images"]
    images = events.Images("samples")
    assert [image.step for image in images] == [2, 4]
    import io

    with Image.open(io.BytesIO(images[-1].encoded_image_string)) as logged:
        assert np.array_equal(np.asarray(logged.convert("RGB")),
                              np.asarray(Image.open(run / "samples" / "step_000004.png").convert("RGB")))


# ------------------------------------------------------------------ gantk report lists gantk eval results
def test_the_report_lists_the_gantk_eval_results_of_the_run(runs, cli, tmp_path):
    run = tmp_path / "run"
    import shutil

    shutil.copytree(runs / "image", run)
    result = cli("eval", str(run), "--metrics", "fid,kid", "--features", "raw", "--n", "100",
                 "--metric-option", "kid.subset_size=50")
    assert result.exit_code == 0, result.output
    (saved,) = (run / "eval").glob("*.json")
    recorded = json.loads(saved.read_text())
    (run / "eval" / "broken.json").write_text("{not json")
    text = build_report(run).read_text(encoding="utf-8")
    table = text[text.index("<table class='evals'>"):]
    table = table[:table.index("</table>")]
    assert saved.name in table and "generator.safetensors" in table and "EMA weights, step 2" in table
    assert f"fid {recorded['values']['fid']:.4g}" in table and f"kid {recorded['values']['kid']:.4g}" in table
    assert "extractor=raw" in table and "generated_samples=100" in table and "real_samples=100" in table
    assert "1 file(s) in eval/ could not be read" in text
