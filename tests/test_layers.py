"""The layers hold: import-linter's contracts in pyproject.toml pass, and a wrong import breaks them.

gantk's folders map to packages through setuptools' package-dir (core -> gantk, cli -> gantk.cli,
plugins -> gantk.plugins), which import-linter cannot follow in an editable install, so each test
lays the three folders out as one ``gantk`` package in a scratch directory and runs ``lint-imports``
on that copy with the project's own configuration.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

from conftest import REPO_ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lay_out(target: Path) -> Path:
    """Copy core/, cli/ and plugins/ into ``target/gantk`` as the installed package looks; returns target."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO_ROOT / "core", target / "gantk", ignore=ignore)
    shutil.copytree(REPO_ROOT / "cli", target / "gantk" / "cli", ignore=ignore)
    shutil.copytree(REPO_ROOT / "plugins", target / "gantk" / "plugins", ignore=ignore)
    shutil.copy2(REPO_ROOT / "pyproject.toml", target / "pyproject.toml")
    return target


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_layer_contracts_are_kept(tmp_path):
    result = lint_imports(lay_out(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_an_engine_module_importing_a_plugin_breaks_the_layers(tmp_path):
    root = lay_out(tmp_path)
    trainer = root / "gantk" / "engine" / "trainer.py"
    trainer.write_text(trainer.read_text() + "\nfrom gantk.plugins.losses import hinge  # deliberately wrong\n")
    result = lint_imports(root)
    assert result.returncode != 0
    assert "gantk.engine.trainer -> gantk.plugins.losses.hinge" in result.stdout


def test_a_plugin_importing_the_kernels_breaks_the_protection(tmp_path):
    root = lay_out(tmp_path)
    hinge = root / "gantk" / "plugins" / "losses" / "hinge.py"
    hinge.write_text(hinge.read_text() + "\nimport gantk.accel  # deliberately wrong\n")
    result = lint_imports(root)
    assert result.returncode != 0 and "gantk.accel is imported by the engine only BROKEN" in result.stdout


def test_the_contract_list_names_every_contract_module():
    """A new module in core/ must be placed: the engine's or accel's folder, or the contract's list."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "forbidden"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    on_disk = {f"gantk.{path.stem}" for path in (REPO_ROOT / "core").glob("*.py") if path.stem != "__init__"}
    assert set(contract["source_modules"]) == on_disk - set(layers)  # python -m gantk is the CLI's top layer
