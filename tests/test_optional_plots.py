"""matplotlib is optional (``gantk[plots]``): without it 1-D/2-D runs still train, and plotting commands say what to install.

matplotlib draws the histograms and scatter plots of vector samples, the vector interpolation and
the report's curves; image grids are drawn by torchvision. These tests hide matplotlib as an
uninstalled package looks (``import matplotlib`` raises ImportError).
"""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from gantk.engine.config import TrainConfig
from gantk.engine.trainer import Trainer
from gantk.errors import GantkError
from gantk.plugins.tools.report import build_report

from engine_helpers import tiny_config

INSTALL = "pip install 'gantk[plots]'"
#: A 2-D run small enough to train in a second: pictures at steps 2 and 4.
RING8 = {"gen": "mlp", "dataset": "ring8", "gen_options": {"z_dim": 2, "hidden": (16, 16)},
         "disc_options": {"hidden": (16, 16)}, "dataset_options": {"num_samples": 512}, "batch_size": 32, "steps": 4,
         "precision": "fp32", "ema": None, "log_every": 2, "sample_every": 2, "checkpoint_every": 1000,
         "num_samples": 64}


def hide_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import matplotlib`` (and of any submodule) raises ImportError, as when it is not installed."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)


@pytest.fixture(scope="module")
def vector_run(tmp_path_factory):
    """A finished ring8 run trained without matplotlib, and what it printed on stderr."""
    run = tmp_path_factory.mktemp("plots") / "ring8"
    stderr = io.StringIO()  # a module-scoped fixture cannot use capsys
    with pytest.MonkeyPatch.context() as monkeypatch:
        hide_matplotlib(monkeypatch)
        monkeypatch.setattr(sys, "stderr", stderr)
        Trainer(TrainConfig.from_options(RING8), run, show_progress=False).train()
    return run, stderr.getvalue()


@pytest.fixture
def without_matplotlib(monkeypatch):
    hide_matplotlib(monkeypatch)


def test_a_vector_run_trains_without_matplotlib_and_keeps_its_samples_as_raw_values(vector_run):
    run, stderr = vector_run
    assert (run / "generator.safetensors").is_file()
    written = sorted(path.name for path in (run / "samples").iterdir())
    assert written == ["step_000002.npz", "step_000004.npz"]
    with np.load(run / "samples" / "step_000004.npz", allow_pickle=False) as archive:
        assert archive["samples"].shape == (64, 2) and np.isfinite(archive["samples"]).all()
    said = [line for line in stderr.splitlines() if INSTALL in line]
    assert len(said) == 1, stderr  # once per run, in one line, not at every picture
    assert "matplotlib" in said[0] and "step_XXXXXX.npz" in said[0]


def test_an_image_run_needs_no_matplotlib(tmp_path, without_matplotlib, capsys):
    Trainer(tiny_config(steps=2, sample_every=2), tmp_path / "run", show_progress=False).train()
    assert (tmp_path / "run" / "samples" / "step_000002.png").is_file()
    assert "matplotlib" not in capsys.readouterr().err


def one_paragraph(result, code: int) -> str:
    assert result.exit_code == code, result.output
    message = result.stderr.strip()
    assert message.startswith("Error: ") and "\n" not in message and "Traceback" not in result.output, message
    return message


def test_commands_that_draw_plots_say_how_to_install_matplotlib(vector_run, cli, tmp_path, without_matplotlib):
    run, _ = vector_run
    for command in (["report", str(run), "--out", str(tmp_path / "report")],
                    ["sample", str(run), "--out", str(tmp_path / "ring.png")],
                    ["interpolate", str(run), "--out", str(tmp_path / "walk.png")]):
        message = one_paragraph(cli(*command), 1)
        assert INSTALL in message and "matplotlib" in message, command
    assert not (tmp_path / "report" / "index.html").exists()
    with pytest.raises(GantkError, match=r"pip install 'gantk\[plots\]'"):
        build_report(run, tmp_path / "again")
    # the raw values need no plot
    assert cli("sample", str(run), "--n", "10", "--out", str(tmp_path / "ring.npz")).exit_code == 0
    with np.load(tmp_path / "ring.npz", allow_pickle=False) as archive:
        assert archive["samples"].shape == (10, 2)


def test_with_matplotlib_the_same_run_is_drawn(vector_run, tmp_path):
    pytest.importorskip("matplotlib")
    run, _ = vector_run
    page = build_report(run, tmp_path / "report")
    assert page.is_file() and (tmp_path / "report" / "interpolation.png").is_file()
