"""Packaging: the wheel holds every package folder and nothing outside gantk/; the example plugin installs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO_ROOT

FOLDER_TO_PACKAGE = {"core": "gantk", "cli": "gantk/cli", "plugins": "gantk/plugins"}


def package_folders() -> set[str]:
    """Every source folder holding an __init__.py, as its path inside the wheel."""
    found = set()
    for folder, target in FOLDER_TO_PACKAGE.items():
        for init in (REPO_ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO_ROOT / folder).as_posix()
            found.add(target if relative == "." else f"{target}/{relative}")
    return found


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300)


def test_wheel_contains_every_package_and_nothing_outside_gantk(tmp_path):
    source = tmp_path / "source"  # build from a copy so that the build leaves nothing in the work tree
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    for folder in FOLDER_TO_PACKAGE:
        shutil.copytree(REPO_ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    built = pip("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(source))
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("gantk-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    outside = [n for n in names if not (n.startswith("gantk/") or n.split("/")[0].endswith(".dist-info"))]
    assert outside == []
    in_wheel = {n.rsplit("/", 1)[0] for n in names if n.endswith("/__init__.py")}
    assert package_folders() - in_wheel == set(), "add the missing packages to pyproject.toml"
    sources = {f"{FOLDER_TO_PACKAGE[p.relative_to(REPO_ROOT).parts[0]]}/{Path(*p.relative_to(REPO_ROOT).parts[1:]).as_posix()}"
               for folder in FOLDER_TO_PACKAGE for p in (REPO_ROOT / folder).rglob("*.py")}
    assert sources - set(names) == set()
    data_files = {f"gantk/plugins/{p.relative_to(REPO_ROOT / 'plugins').as_posix()}"
                  for p in (REPO_ROOT / "plugins").rglob("data/*") if p.is_file()}
    assert {"gantk/plugins/datasets/data/mnist5k.npz", "gantk/plugins/datasets/data/digits.npz"} <= data_files
    assert data_files - set(names) == set(), "add the data files to [tool.setuptools.package-data]"
    assert any(n.endswith(".dist-info/licenses/plugins/datasets/data/mnist5k-LICENSE.md") for n in names)
    entry_points = [n for n in names if n.endswith("entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points[0]).decode()
    assert "[gantk]" in text and "gantk.plugins.losses.hinge" in text


#: No longer installed with gantk (with their requirements, ~350 MB of site-packages here): gone, or the extra `plots`.
HEAVY = ("sklearn", "mlxtend", "pandas", "scipy", "matplotlib")
HEAVY_DISTRIBUTIONS = {"scikit-learn", "mlxtend", "pandas", "scipy", "matplotlib"}

#: Run in a fresh interpreter: importing any HEAVY package fails, as when it is not installed.
WITHOUT_HEAVY = """
import importlib.abc, sys
HEAVY = {heavy!r}
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HEAVY:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, NotInstalled())
import gantk
registry = gantk.get_registry()
print("failed:", [failure.describe() for failure in registry.failures])
print("sizes:", [len(registry.create("dataset", name)) for name in ("mnist5k", "digits")])
"""


def test_the_required_dependencies_leave_out_the_heavy_packages():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    required = {re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower() for requirement in project["dependencies"]}
    assert {"torch", "torchvision", "pluggy", "typer", "safetensors"} <= required
    assert required.isdisjoint(HEAVY_DISTRIBUTIONS)
    assert any(requirement.startswith("matplotlib") for requirement in project["optional-dependencies"]["plots"])


def test_every_plugin_and_the_embedded_sets_load_without_the_heavy_packages():
    code = WITHOUT_HEAVY.format(heavy=set(HEAVY))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "GANTK_STRICT_PLUGINS": ""})
    assert result.returncode == 0, result.stderr
    assert "failed: []" in result.stdout and "sizes: [5000, 1797]" in result.stdout, result.stdout


@pytest.mark.network_install
def test_pip_installed_example_plugin_shows_in_list(tmp_path):
    # Build from a copy: an in-tree build would leave *.egg-info in src/, which the test session's
    # sys.path would then expose as an installed plugin to every later test.
    source = shutil.copytree(REPO_ROOT / "examples" / "gantk-example-plugin", tmp_path / "source",
                             ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path / "site"
    installed = pip("install", "--no-deps", "--no-build-isolation", "-q", "--target", str(target), str(source))
    assert installed.returncode == 0, installed.stderr
    gantk_script = os.path.join(os.path.dirname(sys.executable), "gantk")
    env = {**os.environ, "PYTHONPATH": str(target), "GANTK_STRICT_PLUGINS": "1"}
    listed = subprocess.run([gantk_script, "list", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    from_example = {(e["kind"], e["name"]) for e in json.loads(listed.stdout) if e["package"] == "gantk-example-plugin"}
    assert ("generator", "resmlp") in from_example and ("loss", "rsgan") in from_example
    without = subprocess.run([gantk_script, "list", "--json"], capture_output=True, text=True, timeout=120)
    assert all(e["package"] != "gantk-example-plugin" for e in json.loads(without.stdout))
