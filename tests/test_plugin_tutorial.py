"""docs/plugins.md works as written: every code block of the tutorial is run, in the order a reader meets it.

A python block is a file of the tutorial's package (its first line names it, ``# src/my_gans/losses.py``),
a toml block is ``pyproject.toml`` or a table of it, and a console block is shell commands (``$ ...``)
followed by the output the reader should see. The replay writes the files into a project folder,
"installs" the package with the ``fake_package`` fixture and runs each ``gantk`` command through the real
CLI. Shown output lines must appear in the real output, with numbers and the precision name left free
(timings, run names and versions vary); a shown ``Error:`` means the command must fail.

Training commands keep the tutorial's flags and get ``--steps 3 --batch-size 8`` appended (``--steps 6``
when resuming): the last value of a repeated flag wins, and the tutorial says that the test shortens them.
"""

from __future__ import annotations

import re
import shlex
import sys
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gantk
from gantk.cli.app import build_app

from conftest import REPO_ROOT

TUTORIAL = REPO_ROOT / "docs" / "plugins.md"
FENCE = re.compile(r"^```(?P<language>[\w-]*)\n(?P<text>.*?)^```$", re.MULTILINE | re.DOTALL)
FILE_COMMENT = re.compile(r"#\s*(?P<path>\S+\.py)\s*$")
#: Appended to the tutorial's training commands so that the test trains for seconds, not minutes.
SHORT_RUN = ["--steps", "3", "--batch-size", "8"]
SHORT_RESUME = ["--steps", "6"]


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int  # where the block starts in the markdown, for failure messages


def code_blocks(markdown: str) -> list[Block]:
    return [Block(m["language"], m["text"], markdown.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(markdown)]


def comparable(line: str) -> str:
    """A line with what varies from run to run masked: numbers, the precision name, the width of table rules."""
    line = re.sub(r"\d+(?:\.\d+)*", "N", line)
    line = re.sub(r"\b(?:bf16|fp16|fp32)\b", "PRECISION", line)
    line = re.sub(r"-{2,}", "--", line)
    return " ".join(line.split())


@dataclass
class Command:
    words: list[str]
    shown: list[str]  # the output lines the tutorial shows for it


def console_commands(block: Block) -> list[Command]:
    """``$ command`` lines and the output shown under each (a bash block is commands only)."""
    if block.language == "bash":
        lines = [line for line in block.text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        return [Command(shlex.split(line), []) for line in lines]
    commands: list[Command] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            commands.append(Command(shlex.split(line[2:]), []))
        elif commands:
            commands[-1].shown.append(line)
        else:
            raise AssertionError(f"docs/plugins.md:{block.line}: a console block must start with a '$ ' command")
    return commands


class TutorialReplay:
    """The reader's side of the tutorial: a project folder, an editable install, a shell."""

    def __init__(self, project: Path, fake_package, monkeypatch) -> None:
        self.project, self.fake_package, self.monkeypatch = project, fake_package, monkeypatch
        self.name = self.version = None
        self.entry_points: dict[str, str] = {}
        self.source_root = "."
        self.dist_info: Path | None = None
        self.files: set[str] = set()
        self.commands_run: list[str] = []

    # ------------------------------------------------------------------ blocks
    def play(self, block: Block) -> None:
        handlers = {"python": self.write_module, "toml": self.edit_pyproject, "console": self.run_shell,
                    "bash": self.run_shell, "text": lambda block: None}  # text: the folder layout, not code
        assert block.language in handlers, (
            f"docs/plugins.md:{block.line}: a ```{block.language} block; the tutorial test runs python, toml, "
            "console and bash blocks (and shows text blocks)")
        handlers[block.language](block)

    def write_module(self, block: Block) -> None:
        first_line = block.text.splitlines()[0]
        named = FILE_COMMENT.fullmatch(first_line)
        assert named, f"docs/plugins.md:{block.line}: a python block must start with its file, e.g. # src/pkg/mod.py"
        path = self.project / named["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()  # the tutorial's layout has an empty __init__.py
        path.write_text(block.text)
        self.files.add(named["path"])

    def edit_pyproject(self, block: Block) -> None:
        table = tomllib.loads(block.text)  # a TOMLDecodeError fails the test
        project = table.get("project", {})
        self.name, self.version = project.get("name", self.name), project.get("version", self.version)
        if "gantk" in project.get("entry-points", {}):
            self.entry_points = dict(project["entry-points"]["gantk"])
        find = table.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {})
        self.source_root = find.get("where", [self.source_root])[0]

    def run_shell(self, block: Block) -> None:
        for command in console_commands(block):
            self.commands_run.append(" ".join(command.words))
            if command.words == ["pip", "install", "-e", "."]:
                self.install()
            elif command.words[0] == "gantk":
                self.run_gantk(command, block)
            else:
                raise AssertionError(f"docs/plugins.md:{block.line}: the tutorial test cannot run {command.words}")

    # ------------------------------------------------------------------ commands
    def install(self) -> None:
        """What ``pip install -e .`` does, offline: a dist-info with the entry points, the sources on sys.path.

        pip cannot run here (no network for the build requirements); the fake_package fixture writes the
        dist-info that pip would, and the source folder goes on sys.path as an editable install's .pth does.
        """
        assert self.name and self.version, "pip install -e . before pyproject.toml named the project"
        if self.dist_info is None:
            site = self.fake_package(self.name, {}, self.entry_points, version=self.version)
            self.dist_info = next(site.glob("*.dist-info"))
            self.monkeypatch.syspath_prepend(str(self.project / self.source_root))
        else:  # reinstalling rewrites the entry points
            lines = "".join(f"{name} = {module}\n" for name, module in self.entry_points.items())
            (self.dist_info / "entry_points.txt").write_text(f"[gantk]\n{lines}")

    def run_gantk(self, command: Command, block: Block) -> None:
        """The command in a fresh "process": the package's modules re-imported, plugins discovered again."""
        forget_modules(self.packages())
        gantk.get_registry(reload=True)  # GANTK_STRICT_PLUGINS is set: a module that fails to import fails here
        arguments = command.words[1:]
        if arguments[0] == "train":
            arguments += SHORT_RESUME if "--resume" in arguments else SHORT_RUN
        result = CliRunner().invoke(build_app(), arguments)
        where = f"docs/plugins.md:{block.line}: '{' '.join(command.words)}'"
        expects_error = any(line.startswith("Error:") for line in command.shown)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"{where} raised {result.exception!r}\n{result.output}") from result.exception
        assert (result.exit_code != 0) == expects_error, f"{where} exited with {result.exit_code}:\n{result.output}"
        printed = {comparable(line) for line in result.output.splitlines()}
        missing = [line for line in command.shown if line.strip() != "..." and comparable(line) not in printed]
        assert missing == [], f"{where} did not print {missing}; it printed:\n{result.output}"

    def packages(self) -> set[str]:
        return {module.split(".")[0] for module in self.entry_points.values()}


def forget_modules(packages: set[str]) -> None:
    for name in [name for name in sys.modules if name.split(".")[0] in packages]:
        del sys.modules[name]


@pytest.fixture
def replay(tmp_path, fake_package, monkeypatch):
    project = tmp_path / "my-gans"
    project.mkdir()
    monkeypatch.chdir(project)  # runs/ and the sample picture land in the project, as for the reader
    monkeypatch.setenv("GANTK_STRICT_PLUGINS", "1")
    player = TutorialReplay(project, fake_package, monkeypatch)
    yield player
    forget_modules(player.packages())


def test_every_code_block_of_the_plugin_tutorial_runs_as_written(replay):
    for block in code_blocks(TUTORIAL.read_text()):
        replay.play(block)
    # the tutorial builds a loss, a generator and a procedure, and trains with each
    assert {"src/my_gans/losses.py", "src/my_gans/tiny.py", "src/my_gans/procedures.py"} <= replay.files
    trained = [command for command in replay.commands_run if command.startswith("gantk train")]
    for chosen in ("--loss margin-hinge", "--gen tiny", "--procedure moments", "--resume"):
        assert any(chosen in command for command in trained), f"no training command uses {chosen}"


def test_the_tutorial_gives_a_working_loss_plugin_within_its_first_100_lines():
    opening = "\n".join(TUTORIAL.read_text().splitlines()[:100]) + "\n"
    blocks = code_blocks(opening)
    python = [b.text for b in blocks if b.language == "python"]
    commands = [" ".join(c.words) for b in blocks if b.language == "console" for c in console_commands(b)]
    assert any("gantk.logit_loss" in text and "def register_losses" in text for text in python)
    assert any("[project.entry-points.gantk]" in b.text for b in blocks if b.language == "toml")
    assert "pip install -e ." in commands and "gantk list loss" in commands
    assert any(re.fullmatch(r"gantk train --loss [\w-]+ --steps 200", command) for command in commands)
    assert re.search(r"^Trained .* to step 200 ", opening, re.MULTILINE), "show what the training run prints"


def test_the_replay_fails_when_a_tutorial_block_breaks(replay, tmp_path):
    """The check above can fail: a misspelt name in the module makes the listing command fail."""
    blocks = code_blocks(TUTORIAL.read_text())
    broken = [Block(b.language, b.text.replace("gantk.logit_loss(", "gantk.logit_los("), b.line) for b in blocks]
    with pytest.raises(Exception, match="logit_los"):
        for block in broken:
            replay.play(block)
