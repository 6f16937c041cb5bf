"""Shared fixtures: a clean process-wide registry, fake installed plugin packages, the CLI runner."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gantk.registry

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _session_cache_dir(tmp_path_factory):
    """The suite caches real features and classifiers in its own folder, never in the user's ~/.cache:
    every session starts as a new machine does, and tests cannot pass only because a cache is warm."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANTK_CACHE_DIR", str(tmp_path_factory.mktemp("gantk-cache")))
        yield


@pytest.fixture(autouse=True)
def _fresh_default_registry(monkeypatch):
    """Every test starts and ends with no cached registry, so monkeypatched discovery takes effect."""
    monkeypatch.setattr(gantk.registry, "_default", None)
    monkeypatch.delenv("GANTK_STRICT_PLUGINS", raising=False)
    yield


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """Install a fake distribution on sys.path: ``fake_package(name, modules, entry_points)``.

    ``modules`` maps module names to source code; ``entry_points`` maps entry-point names to
    module names in the ``gantk`` group. It writes ``<name>-<version>.dist-info`` with METADATA and
    entry_points.txt, as pip would, and prepends the folder to sys.path.
    """
    created: list[str] = []

    def make(name: str, modules: dict[str, str], entry_points: dict[str, str], version: str = "1.2.3") -> Path:
        root = tmp_path / f"site-{name}"
        root.mkdir()
        for module, source in modules.items():
            (root / f"{module}.py").write_text(textwrap.dedent(source))
            created.append(module)
        dist_info = root / f"{name.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = "\n".join(f"{ep} = {module}" for ep, module in entry_points.items())
        (dist_info / "entry_points.txt").write_text(f"[gantk]\n{lines}\n")
        monkeypatch.syspath_prepend(str(root))
        importlib.invalidate_caches()
        return root

    yield make
    for module in created:
        sys.modules.pop(module, None)


@pytest.fixture
def cli():
    """Invoke the real gantk CLI in-process: ``cli("list", "loss")`` returns the click Result."""
    from gantk.cli.app import build_app

    runner = CliRunner()

    def invoke(*args: str, **kwargs):
        return runner.invoke(build_app(), list(args), **kwargs)

    return invoke


@pytest.fixture(scope="module")
def checkpointed_run(tmp_path_factory):
    """A tiny run trained to step 4 with checkpoints at steps 2 and 4; tests that change it use ``run``, a copy."""
    from engine_helpers import CHECKPOINTED, tiny_config
    from gantk.engine.trainer import Trainer

    run = tmp_path_factory.mktemp("trained") / "run"
    Trainer(tiny_config(steps=4, **CHECKPOINTED), run, show_progress=False).train()
    return run


@pytest.fixture
def run(checkpointed_run, tmp_path):
    """A copy of :func:`checkpointed_run` at ``tmp_path/runs/run``, free to change."""
    import shutil

    copy = tmp_path / "runs" / "run"
    shutil.copytree(checkpointed_run, copy)
    return copy
