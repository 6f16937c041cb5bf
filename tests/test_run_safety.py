"""Runs are owned: one writer at a time, safe run names, atomic files with normal permissions, clean resumes."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from gantk.engine.config import TrainConfig
from gantk.engine.run_dir import check_run_name, new_run_dir
from gantk.engine.run_lock import LOCK_FILE
from gantk.engine.trainer import Trainer
from gantk.errors import UsageError

from engine_helpers import CHECKPOINTED, loss_records, tiny_cli_args, tiny_config


def fingerprint(run) -> dict[str, str]:
    """The SHA-256 of every file of a run, to show nothing was changed."""
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.rglob("*"))
            if p.is_file()}


def test_a_second_trainer_on_a_run_is_refused_naming_the_holder(tmp_path):
    first = Trainer(tiny_config(steps=2), tmp_path / "run", show_progress=False)
    with pytest.raises(UsageError) as info:
        Trainer(tiny_config(steps=2), tmp_path / "run", show_progress=False)
    assert info.value.exit_code == 2
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in str(info.value) and "in use" in str(info.value)
    first.train()
    assert not (tmp_path / "run" / LOCK_FILE).exists()  # given back when training ends
    with pytest.raises(UsageError, match="already exists"):  # a finished run is not started over
        Trainer(tiny_config(steps=2), tmp_path / "run", show_progress=False)


HOLDER = """
import fcntl, json, os, socket, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o666)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_run_locked_by_another_live_process_is_refused_with_exit_2(run, cli):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLDER), str(run / LOCK_FILE)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = fingerprint(run)
        result = cli("train", "--resume", str(run), "--steps", "6", "--quiet")
        assert result.exit_code == 2, result.output
        assert f"pid {holder.pid}" in result.output and "in use" in result.output
        assert fingerprint(run) == before
    finally:
        holder.communicate("")


def test_a_lock_left_by_a_dead_process_is_taken_over_with_one_line(run, capsys):
    (run / LOCK_FILE).write_text(json.dumps({"pid": 2 ** 22 + 7, "host": socket.gethostname()}))
    trainer = Trainer(tiny_config(steps=6, **CHECKPOINTED), run, resume=True, show_progress=False)
    notes = capsys.readouterr().err.strip().splitlines()
    assert len(notes) == 1 and "taking over the lock" in notes[0] and f"pid {2 ** 22 + 7}" in notes[0]
    assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
    trainer.train()
    assert not (run / LOCK_FILE).exists()


#: A gantk CLI in a fresh process that imports everything, then waits for a file to appear before it trains.
_TRAIN_WHEN_TOLD = textwrap.dedent("""
    import os, sys, time
    from typer.testing import CliRunner
    from gantk.cli.app import build_app
    app = build_app()
    go, args = sys.argv[1], sys.argv[2:]
    open(f"{go}.{os.getpid()}.ready", "w").close()
    while not os.path.exists(go):
        time.sleep(0.01)
    sys.exit(CliRunner().invoke(app, args).exit_code)
""")


def test_two_new_runs_started_together_under_one_name_cannot_both_proceed(tmp_path):
    go = tmp_path / "go"
    args = tiny_cli_args("--steps", "3", "--runs-dir", str(tmp_path / "runs"), "--name", "x")
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen([sys.executable, "-c", _TRAIN_WHEN_TOLD, str(go), *args], env=environment)
                 for _ in range(2)]
    while len(list(tmp_path.glob("go.*.ready"))) < 2 and all(p.poll() is None for p in processes):
        time.sleep(0.01)
    go.touch()  # both start training at once
    codes = sorted(process.wait(timeout=120) for process in processes)
    assert codes == [0, 2]
    assert [line["step"] for line in loss_records(tmp_path / "runs" / "x")] == [1, 2, 3]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["latest", "x"]


def test_a_failed_new_run_leaves_no_folder_and_a_taken_name_is_refused(tmp_path, cli):
    failed = cli("train", "--dataset", "digits", "--loss", "r1", "--runs-dir", str(tmp_path), "--name", "r")
    assert failed.exit_code == 2 and not (tmp_path / "r").exists()
    (tmp_path / "r" / "samples").mkdir(parents=True)
    taken = cli("train", "--dataset", "digits", "--runs-dir", str(tmp_path), "--name", "r")
    assert taken.exit_code == 2 and "already exists" in taken.output and "--resume" in taken.output


@pytest.mark.parametrize("name, words", [
    ("", "it is empty"), ("a/b", "'/'"), ("/tmp/x", "'/'"), ("a\\b", "'\\'"), ("..", "'..'"), ("../x", "'/'"),
    ("x..y", "'..'"), (".", "it is '.'"), ("latest", "link to the newest run"), ("a\x00b", "control character"),
    ("a\nb", "control character"), ("x" * 256, "255 bytes"),
])
def test_run_names_are_one_plain_folder_name(name, words):
    with pytest.raises(UsageError) as info:
        check_run_name(name)
    assert words in str(info.value) and "A run name is one folder name" in str(info.value)


def test_a_bad_name_on_the_command_line_writes_nothing(tmp_path, cli):
    runs = tmp_path / "runs"
    for name in ("../escaped", "latest"):
        result = cli("train", "--dataset", "digits", "--runs-dir", str(runs), "--name", name)
        assert result.exit_code == 2 and "Invalid run name" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"] and list(runs.iterdir()) == []
    with new_run_dir(runs, "fine-name_1.2", "stem") as created:
        assert created == runs / "fine-name_1.2" and created.is_dir()


def test_a_resumed_run_has_no_duplicate_steps_in_its_metrics(run):
    (run / "checkpoints" / "step_000004.safetensors").unlink()  # as if killed after logging step 4, before saving
    Trainer(tiny_config(steps=6, **CHECKPOINTED), run, resume=True, show_progress=False).train()
    assert [line["step"] for line in loss_records(run)] == [1, 2, 3, 4, 5, 6]


def test_files_of_a_run_get_normal_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        trainer = Trainer(tiny_config(steps=2, checkpoint_every=1), tmp_path / "run", show_progress=False)
        trainer.train()
    finally:
        os.umask(previous)
    run = tmp_path / "run"
    written = ["config.json", "components.json", "summary.json", "metrics.jsonl", "generator.safetensors",
               "checkpoints/step_000002.safetensors"]
    assert {name: oct(os.stat(run / name).st_mode & 0o777) for name in written} == {name: "0o644" for name in written}


@pytest.mark.parametrize("edit, words", [
    (lambda text: text[:-5], "is not valid JSON"),
    (lambda text: text.replace('"steps": 4', '"steps": "abc"'), "'steps' must be an integer"),
    (lambda text: text.replace('"gen_options": {', '"gen_options": 3, "was": {'), "'gen_options' must be an object"),
    (lambda text: text.replace('"steps": 4', '"steps": 4, "stpes": 9'), "Unknown training option(s) stpes"),
    (lambda text: text.replace('"width": 8', '"width": 16', 1), "no longer matches its checkpoint"),
])
def test_a_hand_edited_config_is_a_clear_error_naming_the_field(run, cli, edit, words):
    config = run / "config.json"
    config.write_text(edit(config.read_text()))
    before = fingerprint(run)
    result = cli("train", "--resume", str(run), "--steps", "6", "--quiet")
    assert result.exit_code == 2, result.output
    assert words in result.output and str(config) in result.output or "gen_options" in result.output
    assert "Traceback" not in result.output
    assert fingerprint(run) == before


def test_a_config_from_the_wrong_types_is_refused_by_load(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"steps": 10, "ema": "high"}))
    with pytest.raises(UsageError, match="'ema' must be a number or null, got 'high'"):
        TrainConfig.load(path)
