"""--threads: a fixed count, or auto: the cores other processes leave free, looked at every few seconds."""

from __future__ import annotations

import json

import pytest
import torch

from gantk.engine import cpu_share
from gantk.engine.config import TrainConfig
from gantk.errors import UsageError

from engine_helpers import tiny_cli_args


class FakeMachine:
    """A clock, the machine's busy CPU seconds and this process's own, moved by the test."""

    def __init__(self, monkeypatch, cores: int = 4) -> None:
        self.now = self.busy = self.own = 0.0
        monkeypatch.setattr(cpu_share.time, "monotonic", lambda: self.now)
        monkeypatch.setattr(cpu_share, "_busy_seconds", lambda: self.busy)
        monkeypatch.setattr(cpu_share, "_own_seconds", lambda: self.own)
        monkeypatch.setattr(cpu_share, "usable_cores", lambda: cores)

    def run(self, seconds: float, own_cores: float, other_cores: float) -> None:
        self.now += seconds
        self.own += seconds * own_cores
        self.busy += seconds * (own_cores + other_cores)


@pytest.fixture
def four_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    yield
    torch.set_num_threads(before)


def test_auto_gives_up_the_cores_other_processes_use_and_takes_them_back(monkeypatch, four_threads):
    machine = FakeMachine(monkeypatch)
    share = cpu_share.ThreadShare(None)
    machine.run(1.0, own_cores=4, other_cores=2)
    share.poll()
    assert torch.get_num_threads() == 4  # not yet: it looks every INTERVAL seconds
    machine.run(cpu_share.INTERVAL, own_cores=2, other_cores=2)
    share.poll()
    assert torch.get_num_threads() == 2
    machine.run(cpu_share.INTERVAL, own_cores=2, other_cores=3.8)  # never fewer than one
    share.poll()
    assert torch.get_num_threads() == 1
    machine.run(cpu_share.INTERVAL, own_cores=1, other_cores=0.2)  # a little background work is ignored
    share.poll()
    assert torch.get_num_threads() == 4
    assert share.summary() == {"threads": "auto", "threads_fewest": 1, "threads_most": 4}
    share.restore()
    assert torch.get_num_threads() == 4


def test_a_fixed_count_is_kept_whatever_the_load(monkeypatch, four_threads):
    machine = FakeMachine(monkeypatch)
    share = cpu_share.ThreadShare(3)
    machine.run(10.0, own_cores=3, other_cores=4)
    share.poll()
    assert torch.get_num_threads() == 3 and share.summary()["threads"] == 3
    share.restore()
    assert torch.get_num_threads() == 4


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", ""])
def test_threads_must_be_auto_or_a_positive_number(value):
    with pytest.raises(UsageError, match="--threads must be auto"):
        TrainConfig(threads=value)


def test_a_run_records_its_thread_setting_and_gives_the_threads_back(cli, tmp_path, four_threads):
    result = cli(*tiny_cli_args("--steps", "2", "--threads", "1", "--runs-dir", str(tmp_path), "--name", "r"))
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert (summary["threads"], summary["threads_fewest"], summary["threads_most"]) == (1, 1, 1)
    assert torch.get_num_threads() == 4
