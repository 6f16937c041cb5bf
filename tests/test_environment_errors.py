"""Errors of the machine, not of gantk: one paragraph naming the path and the fix, exit 1, no traceback.

Tests may run as root, where chmod does not block: the read-only, full-disk and permission cases
make the operating-system call raise the error it would raise (``OSError(errno.EROFS, ...)``).
"""

from __future__ import annotations

import errno
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import typer.testing
from PIL import Image

import gantk.plugins.tools.eval_result
from gantk.cli.app import build_app
from gantk.cli.errors import environment_message
from gantk.engine.config import TrainConfig
from gantk.engine.trainer import Trainer
from gantk.errors import GantkError
from gantk.plugins.datasets.folder import load_folder

from engine_helpers import tiny_cli_args


def os_error(code: int, filename: str | None = None, filename2: str | None = None) -> OSError:
    return OSError(code, os.strerror(code), filename, None, filename2)


def assert_one_paragraph(result, code: int, *words: str) -> str:
    """The CLI result failed with ``code`` and one ``Error:`` paragraph holding ``words`` (in any case)."""
    assert result.exit_code == code, result.output
    stderr = result.stderr.strip()
    assert stderr.startswith("Error: ") and "\n" not in stderr, stderr
    assert "Traceback" not in result.output and "internal error" not in stderr and "bug" not in stderr
    for word in words:
        assert word.lower() in stderr.lower(), (word, stderr)
    return stderr


# ----------------------------------------------------------------------------- the messages
@pytest.mark.parametrize("code, words", [
    (errno.EROFS, ["read-only file system", "remount"]),
    (errno.ENOSPC, ["is full", "Free some space"]),
    (errno.EDQUOT, ["quota", "Free some space"]),
    (errno.EACCES, ["permission was denied", "chmod"]),
    (errno.EPERM, ["permission was denied", "chmod"]),
    (errno.EISDIR, ["is a folder where a file was expected", "file"]),
    (errno.ENOTDIR, ["is a file where a folder was expected"]),
    (errno.ELOOP, ["symbolic-link loop", "Fix or remove the link"]),
    (errno.ENAMETOOLONG, ["too long"]),
    (errno.EMFILE, ["too many files are open", "ulimit -n"]),
    (errno.ENOENT, ["does not exist"]),
    (errno.EEXIST, ["already exists", "another path"]),
])
def test_each_environment_error_names_the_path_and_the_fix(code, words):
    message = environment_message(os_error(code, "/data/runs/x/config.json"))
    assert message is not None and "'/data/runs/x/config.json'" in message
    assert os.strerror(code) in message
    for word in words:
        assert word.lower() in message.lower()


def test_the_destination_of_a_rename_and_the_folder_of_a_temporary_file_are_named():
    renamed = environment_message(os_error(errno.EISDIR, "/out/.samples.png.1a2b3c4d.tmp", "/out/samples.png"))
    assert "'/out/samples.png' is a folder" in renamed
    temporary = environment_message(os_error(errno.EROFS, "/mnt/ro/.config.json.1a2b3c4d.tmp"))
    assert temporary.startswith("'/mnt/ro' is on a read-only file system")


def test_an_error_without_a_path_still_says_what_to_do():
    message = environment_message(os_error(errno.ENOSPC))
    assert message.startswith("The disk holding a file gantk was using is full") and "Free some space" in message


def test_an_error_raised_from_an_environment_error_is_one_too():
    try:
        try:
            raise os_error(errno.EROFS, "/ro/f")
        except OSError as cause:
            raise RuntimeError("writing failed") from cause
    except RuntimeError as error:
        assert "'/ro/f' is on a read-only file system" in environment_message(error)
    assert environment_message(ValueError("x")) is None
    assert environment_message(OSError("no errno")) is None


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES, errno.ELOOP])
def test_the_cli_reports_an_environment_error_in_any_command(code, tmp_path):
    def touch() -> None:
        raise os_error(code, str(tmp_path / "file"))

    app = build_app()
    app.command("touch")(touch)
    result = typer.testing.CliRunner().invoke(app, ["touch"])
    assert_one_paragraph(result, 1, str(tmp_path / "file"))


# ----------------------------------------------------------------------------- training on a bad disk
def test_a_read_only_runs_dir_is_named(cli, tmp_path, monkeypatch):
    read_only = tmp_path / "ro"
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if str(path).startswith(str(read_only)):
            raise os_error(errno.EROFS, str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    result = cli(*tiny_cli_args("--steps", "1", "--runs-dir", str(read_only), "--name", "r"))
    assert_one_paragraph(result, 1, str(read_only), "read-only file system")


def test_a_full_disk_while_writing_is_reported_with_what_to_do(cli, tmp_path, monkeypatch):
    def fsync(fd):
        raise os_error(errno.ENOSPC)

    monkeypatch.setattr(os, "fsync", fsync)
    result = cli(*tiny_cli_args("--steps", "1", "--runs-dir", str(tmp_path), "--name", "r"))
    assert_one_paragraph(result, 1, "is full", "Free some space")


# ----------------------------------------------------------------------------- gantk eval keeps its result
@pytest.fixture(scope="module")
def ring_generator(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "ring"
    config = TrainConfig.from_options({
        "gen": "mlp", "dataset": "ring8", "gen_options": {"z_dim": 2, "hidden": (8,)}, "disc_options": {"hidden": (8,)},
        "batch_size": 16, "steps": 2, "precision": "fp32", "ema": None, "log_every": 1, "sample_every": 1000,
        "checkpoint_every": 1000, "num_samples": 16})
    Trainer(config, run, show_progress=False).train()
    return run / "generator.safetensors"


def eval_args(generator: Path, out: Path) -> list[str]:
    return ["eval", str(generator), "--metrics", "modes", "--n", "64", "--out", str(out)]


def test_eval_with_out_naming_a_folder_prints_the_json_then_the_error(cli, ring_generator, tmp_path):
    result = cli(*eval_args(ring_generator, tmp_path))
    assert_one_paragraph(result, 1, f"'{tmp_path}'", "printed above on standard output", "--out")
    printed = json.loads(result.stdout)
    assert "modes" in printed["values"] and printed["generator"] == str(ring_generator)


def test_eval_on_a_read_only_disk_prints_the_json_then_the_error(cli, ring_generator, tmp_path, monkeypatch):
    def read_only(result, path):
        raise os_error(errno.EROFS, str(path))

    monkeypatch.setattr(gantk.plugins.tools.eval_result, "write_result", read_only)
    out = tmp_path / "result.json"
    result = cli(*eval_args(ring_generator, out))
    assert_one_paragraph(result, 1, str(out), "Read-only file system")
    assert "modes" in json.loads(result.stdout)["values"] and not out.exists()


def test_eval_writes_its_result_atomically_where_it_can(cli, ring_generator, tmp_path):
    out = tmp_path / "deep" / "result.json"
    result = cli(*eval_args(ring_generator, out))
    assert result.exit_code == 0, result.output
    assert "modes" in json.loads(out.read_text())["values"] and list(out.parent.glob(".*.tmp")) == []


# ----------------------------------------------------------------------------- images and data folders
def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` grayscale pixels, with one tiny IDAT chunk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def image_folder(root: Path, count: int = 3) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.fromarray(np.full((8, 8), index * 40, dtype=np.uint8)).save(root / f"{index}.png")
    return root


def test_a_forged_decompression_bomb_is_named(tmp_path):
    root = image_folder(tmp_path / "images")
    (root / "bomb.png").write_bytes(png_claiming(100_000, 100_000))  # 10¹⁰ pixels in 60 bytes
    with pytest.raises(GantkError, match="decompression bomb") as error:
        load_folder(data_root=root)
    assert str(root / "bomb.png") in str(error.value)


def test_an_image_over_a_lowered_pixel_limit_is_named_through_the_cli(cli, tmp_path, monkeypatch):
    root = image_folder(tmp_path / "images")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)  # 8x8 = 64 pixels > 2 x 20: a bomb by this limit
    result = cli("train", "--dataset", "folder", "--data-root", str(root), "--steps", "1", "--quiet",
                 "--runs-dir", str(tmp_path / "runs"))
    assert_one_paragraph(result, 1, str(root / "0.png"), "decompression bomb")


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    root = image_folder(tmp_path / "images")
    (root / "broken.png").write_bytes(b"not an image at all")
    with pytest.raises(GantkError, match="Could not read the image") as error:
        load_folder(data_root=root)
    assert str(root / "broken.png") in str(error.value)


def refuse_listing(monkeypatch, folder: Path) -> None:
    """Listing ``folder`` fails as a folder without read permission does (os.listdir and os.scandir)."""
    for name in ("listdir", "scandir"):
        real = getattr(os, name)

        def refusing(path=".", real=real):
            if Path(path) == folder:
                raise os_error(errno.EACCES, str(path))
            return real(path)

        monkeypatch.setattr(os, name, refusing)


def test_an_unreadable_data_root_names_the_folder(cli, tmp_path, monkeypatch):
    root = image_folder(tmp_path / "locked")
    refuse_listing(monkeypatch, root)
    result = cli("train", "--dataset", "folder", "--data-root", str(root), "--steps", "1", "--quiet",
                 "--runs-dir", str(tmp_path / "runs"))
    assert_one_paragraph(result, 1, f"'{root}'", "permission was denied")


def test_an_unreadable_class_folder_is_not_skipped_silently(tmp_path, monkeypatch):
    root = tmp_path / "classes"
    image_folder(root / "cats")
    locked = image_folder(root / "dogs")
    refuse_listing(monkeypatch, locked)
    with pytest.raises(PermissionError) as error:
        load_folder(data_root=root)
    assert error.value.filename == str(locked)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any folder")
def test_a_folder_without_read_permission_names_the_folder(cli, tmp_path):
    root = image_folder(tmp_path / "locked")
    root.chmod(0)
    try:
        result = cli("train", "--dataset", "folder", "--data-root", str(root), "--steps", "1", "--quiet",
                     "--runs-dir", str(tmp_path / "runs"))
    finally:
        root.chmod(0o755)
    assert_one_paragraph(result, 1, f"'{root}'", "permission was denied")


def test_a_symbolic_link_loop_as_data_root_is_not_called_missing(cli, tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    result = cli("train", "--dataset", "folder", "--data-root", str(loop), "--steps", "1", "--quiet",
                 "--runs-dir", str(tmp_path / "runs"))
    message = assert_one_paragraph(result, 1, f"'{loop}'", "cannot be opened")
    assert "does not exist" not in message and os.strerror(errno.ELOOP) in message


def test_an_output_path_through_a_file_names_the_file(cli, ring_generator, tmp_path):
    result = cli("sample", str(ring_generator), "--out", str(ring_generator / "samples.png"))
    assert_one_paragraph(result, 1, f"'{ring_generator}'", "already exists")


# ----------------------------------------------------------------------------- real file systems (root: tmpfs mounts)
@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs(size, read_only)``: a real tmpfs mounted under ``tmp_path`` (skips where mounting is not permitted)."""
    import subprocess

    mounted: list[Path] = []

    def mount(size: str, read_only: bool = False) -> Path:
        point = tmp_path / f"mount{len(mounted)}"
        point.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'not root'})")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def test_training_onto_a_real_read_only_file_system_names_it(cli, tmpfs):
    read_only = tmpfs("1m", read_only=True)
    result = cli(*tiny_cli_args("--steps", "1", "--runs-dir", str(read_only / "runs")))
    assert_one_paragraph(result, 1, str(read_only / "runs"), "read-only file system")


def test_a_real_full_disk_is_named_and_the_last_checkpoint_survives(cli, tmpfs):
    """A run whose disk fills up mid-training: one paragraph, and the checkpoint written before is intact."""
    disk = tmpfs("160k")
    args = tiny_cli_args("--runs-dir", str(disk), "--name", "r", "--checkpoint-every", "1", "--keep-checkpoints", "50",
                         "--sample-every", "1000")
    result = cli(*args, "--steps", "40")
    assert_one_paragraph(result, 1, "is full", "Free some space", str(disk / "r"))
    from gantk.engine.checkpoint import list_checkpoints, read_checkpoint

    saved = list_checkpoints(disk / "r")
    assert saved and read_checkpoint(saved[-1][1]).step == saved[-1][0]  # the newest one on disk verifies
    assert not list((disk / "r" / "checkpoints").glob(".*.tmp"))  # no partial file is left


def test_eval_onto_a_real_read_only_file_system_keeps_the_result_on_stdout(cli, ring_generator, tmpfs):
    out = tmpfs("1m", read_only=True) / "result.json"
    result = cli(*eval_args(ring_generator, out))
    assert_one_paragraph(result, 1, str(out), "read-only file system")
    assert "modes" in json.loads(result.stdout)["values"]
