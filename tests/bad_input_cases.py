"""The bad-input battery's table (issue 12): every way a user, a file, a plugin or the machine can be wrong.

Each :class:`Case` says how to set the scene (files, run folders, fake plugin packages,
monkeypatched system calls), what to run (gantk's command line in-process, its console entry point
in-process, a Python call, or — for signals and a second process — a subprocess), the exit code
(2 usage, 1 runtime or environment, 130 interrupted, 0 where gantk copes, e.g. a damaged checkpoint
it falls back from), the words the message must contain (``a|b``: either) and which files must come
out unchanged. ``tests/test_bad_inputs.py`` runs them and checks the message is one paragraph.

Arguments are strings split like a shell does, after two expansions: the macros ``{gan1d}`` and
``{tiny}`` (small, fast training flags) and the placeholders ``{tmp}`` (the case's folder, also the
working directory), ``{runs}`` (``{tmp}/runs``), ``{run}`` (a copy of the shared 4-step gan1d run,
``{runs}/r``), ``{export}`` (a copy of its generator export), ``{digits}`` (a copy of a shared
class-conditional 8x8 digits generator), ``{ckpt}``/``{ckpt2}`` (the run's newest and older
checkpoint) and ``{pid}`` (this process).
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

GAN1D = "--preset gan1d --steps 2 --log-every 1 --sample-every 2 --checkpoint-every 2 -q --runs-dir {runs}"
TINY = ("--dataset digits --batch-size 16 --precision fp32 --steps 1 --log-every 1 --sample-every 1 "
        "--checkpoint-every 1 --num-samples 4 -q --runs-dir {runs}")
MACROS = {"{gan1d}": GAN1D, "{tiny}": TINY}
RESUME = "train --resume {run} --steps 6 -q"


@dataclass
class Outcome:
    """What a command did: its exit code and what it printed."""

    code: int
    stdout: str = ""
    stderr: str = ""


@dataclass
class Case:
    id: str
    group: str
    command: str | Sequence[str] | Callable[["World"], Outcome]
    code: int | tuple[int, ...]
    words: tuple[str, ...] = ()
    setup: Callable[["World"], None] | None = None
    keep: tuple[str, ...] = ()      # paths whose files (names starting with '.' aside) must come out unchanged
    absent: tuple[str, ...] = ()    # paths that must not exist afterwards
    notes: int | None = None        # exit 0: exactly this many lines on stderr
    check: Callable[["World", Outcome], None] | None = None
    runner: str = "cli"             # cli: the Typer app in-process; main: the console entry point in-process
    paragraph: bool = True          # False: a listing that ends with exit 1 (the words may be in its stdout)


class World:
    """One case's scene: its folder, copies of the shared run, and the test's monkeypatch and fixtures."""

    def __init__(self, tmp: Path, shared_run: Path, monkeypatch, fake_package, invoke) -> None:
        self.tmp, self.shared_run, self.monkeypatch = tmp, shared_run, monkeypatch
        self.fake_package, self._invoke = fake_package, invoke
        self.runs = tmp / "runs"
        self.runs.mkdir()
        self.values: dict[str, object] = {}

    # -- the shared run, copied on first use
    @property
    def run(self) -> Path:
        target = self.runs / "r"
        if not target.exists():
            shutil.copytree(self.shared_run, target, symlinks=True)
        return target

    @property
    def export(self) -> Path:
        target = self.tmp / "generator.safetensors"
        if not target.exists():
            shutil.copy(self.shared_run / "generator.safetensors", target)
        return target

    @property
    def image_export(self) -> Path:
        """A copy of the shared class-conditional 8x8 digits generator."""
        target = self.tmp / "digits.safetensors"
        if not target.exists():
            shutil.copy(self.shared_run.parent / "digits" / "generator.safetensors", target)
        return target

    def ckpt(self, step: int = 4) -> Path:
        return self.run / "checkpoints" / f"step_{step:06d}.safetensors"

    # -- arguments
    def fill(self, text: str) -> str:
        for macro, flags in MACROS.items():
            text = text.replace(macro, flags)
        lazy = {"tmp": lambda: self.tmp, "runs": lambda: self.runs, "run": lambda: self.run,
                "export": lambda: self.export, "digits": lambda: self.image_export, "ckpt": self.ckpt,
                "ckpt2": lambda: self.ckpt(2),
                "pid": os.getpid}
        return re.sub(r"\{(\w+)\}", lambda m: str(lazy[m.group(1)]()) if m.group(1) in lazy else m.group(0), text)

    def argv(self, command: str | Sequence[str]) -> list[str]:
        if isinstance(command, str):
            return shlex.split(self.fill(command))
        return [self.fill(arg) for arg in command]

    def cli(self, command: str | Sequence[str]) -> Outcome:
        return self._invoke(self.argv(command))

    # -- files
    def path(self, relative: str) -> Path:
        return self.tmp / relative

    def write(self, relative: str, data: bytes | str) -> Path:
        path = self.path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def folder(self, relative: str) -> Path:
        path = self.path(relative)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def images(self, relative: str = "imgs", count: int = 4, size: int = 8) -> Path:
        """A folder data set of ``count`` small grey PNGs."""
        from PIL import Image

        root = self.folder(relative)
        for i in range(count):
            Image.new("L", (size, size), color=30 * i).save(root / f"img{i}.png")
        return root

    def edit_config(self, edit: Callable[[dict], object]) -> None:
        """Hand-edit the run's config.json: ``edit`` changes the dict in place or returns a replacement."""
        path = self.run / "config.json"
        config = json.loads(path.read_text())
        result = edit(config)
        path.write_text(json.dumps(config if result is None else result))

    def plugin(self, package: str, source: str, module: str | None = None) -> Path:
        module = module or package.replace("-", "_")
        return self.fake_package(package, {module: source}, {"plugin": module})

    # -- the machine
    def deny(self, root: Path, code: int, on: str = "write") -> None:
        """Make system calls on paths under ``root`` fail with ``code`` (as root, chmod cannot).

        ``on="write"``: creating, opening for writing, renaming into, linking; ``on="read"``: opening
        for reading and listing too.
        """
        deny_paths(self.monkeypatch, root, code, on)


# --------------------------------------------------------------------------- system-call failures
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def deny_paths(monkeypatch, root: str | Path, code: int, on: str = "write") -> None:
    root = os.path.abspath(os.fspath(root))

    def under(path) -> bool:
        if isinstance(path, int):
            return False
        try:
            full = os.path.abspath(os.fsdecode(os.fspath(path)))
        except TypeError:
            return False
        return full == root or full.startswith(root + os.sep)

    def fail(path):
        raise OSError(code, os.strerror(code), os.fsdecode(os.fspath(path)))

    real_open, real_os_open = io.open, os.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if under(file) and (on == "read" or any(c in mode for c in "wax+")):
            fail(file)
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if under(path) and (on == "read" or flags & _WRITE_FLAGS):
            fail(path)
        return real_os_open(path, flags, *args, **kwargs)

    def guarded(real, *positions):
        def call(*args, **kwargs):
            for position in positions:
                if position < len(args) and under(args[position]):
                    fail(args[position])
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr("builtins.open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    for name, positions in [("mkdir", (0,)), ("rename", (0, 1)), ("replace", (0, 1)), ("symlink", (1,)),
                            ("link", (1,)), ("unlink", (0,)), ("rmdir", (0,))]:
        monkeypatch.setattr(os, name, guarded(getattr(os, name), *positions))
    if on == "read":
        monkeypatch.setattr(os, "scandir", guarded(os.scandir, 0))
        monkeypatch.setattr(os, "listdir", guarded(os.listdir, 0))


def full_disk_on_sync(monkeypatch, root: str | Path) -> None:
    """``fsync`` of a file under ``root`` fails with ENOSPC, as a full disk reports it (no file name)."""
    root = os.path.abspath(os.fspath(root))
    real_fsync = os.fsync

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd if isinstance(fd, int) else fd.fileno()}")
        if target == root or target.startswith(root + os.sep):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)


# --------------------------------------------------------------------------- damaging safetensors files
def header(path: Path) -> tuple[int, dict]:
    data = Path(path).read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return length, json.loads(data[8:8 + length])


def overwrite_tensor(path: Path, pattern: bytes, prefix: str = "module/generator/") -> None:
    """Overwrite the bytes of the first float32 tensor named ``prefix...`` (the header stays as it was)."""
    length, head = header(path)
    name = next(k for k, v in sorted(head.items()) if k.startswith(prefix) and v["dtype"] == "F32")
    start, end = head[name]["data_offsets"]
    data = bytearray(Path(path).read_bytes())
    base = 8 + length
    data[base + start:base + end] = (pattern * ((end - start) // len(pattern) + 1))[:end - start]
    Path(path).write_bytes(bytes(data))


def rewrite(path: Path, tensors: Callable[[dict], None] | None = None,
            metadata: Callable[[dict], None] | None = None) -> None:
    """Rewrite a safetensors file with its tensors and/or metadata edited in place (no pickle anywhere)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as handle:
        values = {key: handle.get_tensor(key) for key in handle.keys()}
        meta = dict(handle.metadata() or {})
    if tensors:
        tensors(values)
    if metadata:
        metadata(meta)
    save_file(values, str(path), metadata=meta)


def first_key(values: dict, prefix: str = "module/generator/") -> str:
    return next(k for k in sorted(values) if k.startswith(prefix))


def truncate(path: Path, keep: float = 0.5) -> None:
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:int(len(data) * keep)])


def forge_config(path: Path, **changes) -> None:
    """Change fields of an export's ``gantk.config`` (and its options) without touching the tensors."""
    def edit(meta: dict) -> None:
        config = json.loads(meta["gantk.config"])
        for key, value in changes.items():
            config[key] = value
            if key in config.get("options", {}):
                config["options"][key] = value
        meta["gantk.config"] = json.dumps(config)
    rewrite(path, metadata=edit)


def save_pickle(path: Path, zipped: bool = True) -> Path:
    """A PyTorch pickle, as torch.save writes it (created here; gantk must never load it)."""
    import torch

    torch.save({"weight": torch.zeros(3)}, path, _use_new_zipfile_serialization=zipped)
    return path


# --------------------------------------------------------------------------- fake plugin sources
def hook_module(hook: str, name: str, factory: str, prelude: str = "") -> str:
    """A plugin module whose ``hook`` registers ``name`` with the factory expression ``factory``."""
    return (f"import gantk\n{textwrap.dedent(prelude)}\n\n@gantk.hookimpl\ndef {hook}(register):\n"
            f"    register({name!r}, {factory})\n")


RAISE = """
def fail(*args, **kwargs):
    raise ValueError("this factory always fails")
"""
EXIT = """
def leave(*args, **kwargs):
    raise SystemExit(3)
"""
WRONG_RETURN = {  # kind's hook -> (name, factory returning the wrong thing)
    "generator": ("register_generators", "badgen", "lambda spec, **options: 'not a module'"),
    "discriminator": ("register_discriminators", "baddisc", "lambda spec, **options: 42"),
    "loss": ("register_losses", "badloss", "lambda spec, **options: object()"),
    "dataset": ("register_datasets", "badset", "lambda **options: [1, 2, 3]"),
    "metric": ("register_metrics", "badmetric", "lambda **options: 'not a metric'"),
    "conditioning": ("register_conditionings", "badcond", "lambda spec, **options: 3.5"),
    "procedure": ("register_procedures", "badproc", "lambda setup, **options: None"),
    "monitor": ("register_monitors", "badmon", "lambda setup: 'not a monitor'"),
    "preset": ("register_presets", "badpreset", "lambda: ['--steps', '3']"),
}
COMMAND = """
import typer
import gantk

@gantk.hookimpl
def register_commands(app):
    @app.command("{name}")
    def hijack():
        typer.echo("HIJACKED by {package}")
"""
SHADOW_DCGAN = """
import gantk

def refuse(*args, **kwargs):
    raise RuntimeError("the plugin's dcgan was used instead of gantk's")

@gantk.hookimpl
def register_generators(register):
    register("dcgan", refuse)

@gantk.hookimpl
def register_discriminators(register):
    register("dcgan", refuse)
"""
SHADOW_LOSS = hook_module("register_losses", "ns", "refuse",
                          "def refuse(*a, **k):\n    raise RuntimeError(\"the plugin's ns was used\")")
BROKEN_LOSS_STEP = """
import gantk
from gantk.protocols import LossTerm

class Broken(LossTerm):
    def generator_loss(self, step):
        return step.fake_out.no_such_field.mean()

@gantk.hookimpl
def register_losses(register):
    register("broken", lambda spec, **options: Broken())
"""
RAISING_MONITOR = """
import gantk

class Failing:
    def __call__(self, samples, step):
        raise ZeroDivisionError("the monitor divided by zero")

@gantk.hookimpl
def register_monitors(register):
    register("failing", lambda setup: Failing())
"""
FAILING_COMMAND = """
import gantk

@gantk.hookimpl
def register_commands(app):
    @app.command("acme-hello")
    def hello():
        raise LookupError("the command's own bug")
"""
USAGE_DATASET = """
import gantk
from gantk.errors import UsageError

def picky(**options):
    raise UsageError("The data set 'picky' needs --data-root pointing at a picky folder.")

@gantk.hookimpl
def register_datasets(register):
    register("picky", picky)
"""
# A monitor that, while the run trains, starts a second writer of the same run in the same process
# (another open file description: an flock held by the first writer refuses it) and keeps its result.
INTRUDER = """
import gantk
from typer.testing import CliRunner

RESULTS = []
ARGS = {args!r}

class Intruder:
    def __init__(self, run_dir):
        self.run_dir = run_dir

    def __call__(self, samples, step):
        if RESULTS:
            return {{}}
        RESULTS.append(None)  # a second writer that does train must not recurse
        from gantk.cli.app import build_app
        args = [a.replace("RUNS", str(self.run_dir.parent)).replace("RUN", str(self.run_dir)) for a in ARGS]
        RESULTS[0] = CliRunner().invoke(build_app(), args)
        return {{}}

@gantk.hookimpl
def register_monitors(register):
    register("intruder", lambda setup: Intruder(setup.run_dir))
"""


# --------------------------------------------------------------------------- custom commands
def gantk_script() -> str:
    return os.path.join(os.path.dirname(sys.executable), "gantk")


def api(call: Callable[["World"], object]) -> Callable[["World"], Outcome]:
    """Run a Python API call: a GantkError becomes its exit code and message; anything else shows as a traceback."""
    def run(world: World) -> Outcome:
        import traceback

        from gantk.errors import GantkError

        try:
            call(world)
        except GantkError as error:
            return Outcome(error.exit_code, "", f"Error: {error}\n")
        except Exception:  # noqa: BLE001 - reported by the test as an unconverted exception
            return Outcome(-1, "", traceback.format_exc())
        return Outcome(0)
    return run


def load_generator(relative: str) -> Callable[["World"], Outcome]:
    def call(world: World):
        import gantk

        return gantk.load_generator(world.fill(relative))
    return api(call)


def with_lock_held_by_another_process(world: World) -> Outcome:
    """A live process holds the run's lock (flock, pid and host recorded); this one tries to resume it."""
    try:
        from gantk.engine.run_lock import LOCK_FILE
    except ImportError:
        LOCK_FILE = ".lock"
    holder_source = textwrap.dedent("""
        import fcntl, json, os, socket, sys
        fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": "now"}) + "\\n").encode())
        print("locked", flush=True)
        sys.stdin.read()
    """)
    holder = subprocess.Popen([sys.executable, "-c", holder_source, str(world.run / LOCK_FILE)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        world.values["holder"] = holder.pid
        return world.cli(RESUME)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def stale_lock(content: Callable[[], str]) -> Callable[[World], None]:
    def setup(world: World) -> None:
        world.values["dead"] = content()
        (world.run / ".lock").write_text(world.values["dead"])
    return setup


def interrupt_while_importing(world: World) -> Outcome:
    """Ctrl-C 0.3 s after 'gantk list' starts, while the command line is still importing."""
    process = subprocess.Popen([gantk_script(), "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=world.tmp)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    return Outcome(process.returncode, out, err)


def terminate_while_training(world: World) -> Outcome:
    """SIGTERM once a long gan1d run has logged: it saves, and exits 130 with one paragraph."""
    args = [gantk_script(), *world.argv("train --preset gan1d --steps 100000 --log-every 20 --sample-every 100000 "
                                        "--checkpoint-every 100000 --device cpu -q --runs-dir {runs} --name long")]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=world.tmp)
    metrics = world.runs / "long" / "metrics.jsonl"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None and not (metrics.exists() and metrics.stat().st_size):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=90)
    return Outcome(process.returncode, out, err)


def nested_writer(outer: str, inner: Sequence[str]) -> Callable[[World], Outcome]:
    """Train ``outer`` with a monitor that runs the ``inner`` command while the outer run is being written."""
    def run(world: World) -> Outcome:
        world.plugin("acme-intruder", INTRUDER.format(args=list(inner)))
        outcome = world.cli(outer)
        (inner_result,) = sys.modules["acme_intruder"].RESULTS
        world.values["inner"] = inner_result
        return outcome
    return run


# --------------------------------------------------------------------------- checks
def resumed_to(step: int) -> Callable[[World, Outcome], None]:
    def check(world: World, outcome: Outcome) -> None:
        assert f"to step {step}" in outcome.stdout, outcome.stdout
        steps = [r["step"] for r in map(json.loads, (world.run / "metrics.jsonl").read_text().splitlines())
                 if "steps_per_s" in r]
        assert steps == sorted(set(steps)), f"metrics.jsonl has repeated or unordered steps: {steps}"
    return check


def metrics_parse(world: World, outcome: Outcome) -> None:
    for line in (world.run / "metrics.jsonl").read_text().splitlines():
        json.loads(line)
    resumed_to(6)(world, outcome)


def loads_generator(path: str) -> Callable[[World, Outcome], None]:
    def check(world: World, outcome: Outcome) -> None:
        import gantk

        gantk.load_generator(world.fill(path))
    return check


def inner_refused(*words: str) -> Callable[[World, Outcome], None]:
    def check(world: World, outcome: Outcome) -> None:
        inner = world.values["inner"]
        assert inner is not None and inner.exit_code == 2, (inner and inner.exit_code, inner and inner.output)
        assert inner.stderr.startswith("Error:") and "Traceback" not in inner.output
        for word in words:
            assert world.fill(word) in inner.stderr, (word, inner.stderr)
    return check


def stdout_has(*words: str) -> Callable[[World, Outcome], None]:
    def check(world: World, outcome: Outcome) -> None:
        for word in words:
            assert world.fill(word) in outcome.stdout, (word, outcome.stdout)
    return check


def stdout_lacks(*words: str) -> Callable[[World, Outcome], None]:
    def check(world: World, outcome: Outcome) -> None:
        for word in words:
            assert word not in outcome.stdout, (word, outcome.stdout)
    return check


def json_printed(world: World, outcome: Outcome) -> None:
    """The computed metric is not lost: the JSON result is on stdout."""
    start = outcome.stdout.index("{")
    result = json.loads(outcome.stdout[start:outcome.stdout.rindex("}") + 1])
    assert "density" in json.dumps(result), result


def holder_named(world: World, outcome: Outcome) -> None:
    assert str(world.values["holder"]) in outcome.stderr, outcome.stderr


def dead_named(world: World, outcome: Outcome) -> None:
    pid = json.loads(world.values["dead"])["pid"]
    assert str(pid) in outcome.stderr, outcome.stderr


def saved_checkpoint(world: World, outcome: Outcome) -> None:
    assert list((world.runs / "long" / "checkpoints").glob("step_*.safetensors")), "no checkpoint was saved"


# --------------------------------------------------------------------------- the table
def options() -> list[Case]:
    """Command-line options and their values (exit 2, naming the option or name)."""
    def c(id, command, *words, code=2, **kw):
        return Case(f"options/{id}", "options", command, code, words, **kw)

    cases = [
        # unknown names, in every kind
        c("unknown-gen", "train {tiny} --gen dcgn", "'dcgn'", "dcgan"),
        c("unknown-disc", "train {tiny} --disc dcgn", "'dcgn'", "dcgan"),
        c("unknown-loss", "train {gan1d} --loss hinje", "'hinje'", "hinge"),
        c("unknown-loss-term", "train {gan1d} --loss ns+0.5*r11", "r11"),
        c("unknown-dataset", "train {tiny} --dataset digts", "'digts'", "digits"),
        c("unknown-procedure", "train {gan1d} --procedure gann", "'gann'", "gan"),
        c("unknown-preset", "train --preset gan1dd -q --runs-dir {runs}", "'gan1dd'", "gan1d"),
        c("unknown-eval-metric", "train {gan1d} --eval-every 1 --eval-metrics fdi", "'fdi'", "fid"),
        c("unknown-keep-best", "train {gan1d} --eval-every 1 --eval-metrics dc --keep-best fdi", "fdi"),
        c("unknown-conditioning", "train {tiny} -D conditioning=projction", "'projction'", "projection"),
        c("unknown-g-optimizer", "train {gan1d} --g-opt adamm", "'adamm'", "adam"),
        c("unknown-d-optimizer", "train {gan1d} --d-opt sgdd", "'sgdd'", "sgd"),
        c("unknown-precision", "train {gan1d} --precision fp64", "--precision", "fp64"),
        c("unknown-device", "train {gan1d} --device tpu", "'tpu'"),
        c("unknown-cpu-kernels", "train {gan1d} --cpu-kernels maybe", "--cpu-kernels", "maybe"),
        c("unknown-metric-eval", "eval {export} --metrics fdi --n 50 --out {tmp}/e.json", "'fdi'", "fid"),
        c("unknown-list-kind", "list generatr", "'generatr'", "generator"),
        c("unknown-preset-shown", "presets gan1dd", "'gan1dd'", "gan1d"),
        c("unknown-flag", "train --nosuch 1", "--nosuch"),
        c("unknown-flag-sample", "sample {export} --samples 3 --out {tmp}/s.png", "--samples"),
        c("unknown-command", "trian", "trian"),
        # upper-case names get a suggestion
        c("upper-loss", "train {gan1d} --loss NS", "'NS'", "ns"),
        c("upper-gen", "train {tiny} --gen DCGAN", "'DCGAN'", "dcgan"),
        c("upper-dataset", "train {tiny} --dataset Digits", "'Digits'", "digits"),
        c("upper-preset", "train --preset GAN1D -q --runs-dir {runs}", "'GAN1D'", "gan1d"),
        c("upper-metric", "eval {export} --metrics DC --n 50 --out {tmp}/e.json", "'DC'", "dc"),
        # KEY=VALUE plugin options
        c("kv-no-equals", "train {tiny} -G width", "--gen-option", "width"),
        c("kv-empty-key", "train {tiny} -G =8", "--gen-option"),
        c("kv-empty-value", "train {tiny} -G width=", "width"),
        c("kv-unknown-key", "train {tiny} -G widht=8", "'widht'", "width"),
        c("kv-not-a-number", "train {tiny} -G width=abc", "width", "abc"),
        c("kv-fraction-for-int", "train {tiny} -G width=8.5", "width", "8.5"),
        c("kv-negative", "train {tiny} -G width=-8", "width"),
        c("kv-zero", "train {tiny} -D width=0", "width"),
        c("kv-nan", "train {tiny} -G z_dim=nan", "z_dim"),
        c("kv-inf", "train {tiny} -G z_dim=inf", "z_dim"),
        c("kv-overflow", "train {tiny} -G z_dim=1e999", "z_dim"),
        c("kv-list-item", "train {gan1d} -G hidden=50,abc", "hidden"),
        c("kv-choice", "train {gan1d} -G activation=relux", "relux"),
        c("kv-loss-no-term", "train {gan1d} -L x=1", "--loss-option"),
        c("kv-loss-unknown-term", "train {gan1d} -L nosuch.x=1", "nosuch"),
        c("kv-loss-unknown-key", "train {gan1d} --loss hinge -L hinge.nosuch=1", "nosuch"),
        c("kv-data-unknown-key", "train {tiny} -O foo=1", "'foo'"),
        c("kv-data-negative", "train {gan1d} -O num_samples=-5", "num_samples"),
        c("kv-procedure-unknown-key", "train {gan1d} -P foo=1", "'foo'"),
        # bad numbers, for every numeric option
        *[c(f"number-{flag[2:]}-{label}", f"train {{gan1d}} {flag} {value}", flag)
          for flag, values in [("--steps", ["0", "-3", "abc", "inf"]), ("--batch-size", ["0", "-1", "nan"]),
                               ("--n-critic", ["0", "-2"]), ("--lr", ["inf", "nan", "-1", "0"]),
                               ("--g-lr", ["inf", "0"]), ("--d-lr", ["nan", "-1e-3"]),
                               ("--ema", ["1.5", "-0.1", "nan", "inf", "abc"]), ("--log-every", ["0"]),
                               ("--sample-every", ["0", "-5"]), ("--checkpoint-every", ["0"]),
                               ("--keep-checkpoints", ["0", "-1"]), ("--num-samples", ["0"]),
                               ("--eval-every", ["-1"]), ("--seed", ["abc"])]
          for label, value in [(v.lstrip("-") if v[0] != "-" else "neg" + v[1:], v) for v in values]],
        c("number-image-size-zero", "train {tiny} --image-size 0", "--image-size"),
        c("number-image-size-neg", "train {tiny} --image-size -8", "--image-size"),
        c("number-sample-n-zero", "sample {export} --n 0 --out {tmp}/s.png", "--n"),
        c("number-sample-n-neg", "sample {export} --n -1 --out {tmp}/s.png", "--n"),
        c("number-sample-n-text", "sample {export} --n many --out {tmp}/s.png", "--n"),
        c("number-sample-label-neg", "sample {export} --label -1 --out {tmp}/s.png", "--label"),
        c("number-sample-labels-word", "sample {export} --labels some --out {tmp}/s.png", "--labels"),
        c("number-interpolate-steps-one", "interpolate {export} --steps 1 --out {tmp}/i.png", "--steps"),
        c("number-interpolate-steps-neg", "interpolate {export} --steps -1 --out {tmp}/i.png", "--steps"),
        c("number-eval-n-zero", "eval {export} --metrics dc --n 0 --out {tmp}/e.json", "--n"),
        c("number-eval-n-neg", "eval {export} --metrics dc --n -5 --out {tmp}/e.json", "--n"),
        # loss expressions
        *[c(f"loss-{label}", ["train", *GAN1D.split(), "--loss", expression], "--loss|loss expression")
          for label, expression in [("empty", ""), ("trailing-plus", "ns+"), ("leading-plus", "+ns"),
                                    ("weight-only", "0.5*"), ("power", "ns**2"), ("space", "ns ns"),
                                    ("overflow-weight", "1e999*ns"), ("nan-weight", "nan*ns"),
                                    ("inf-weight", "inf*ns")]],
        c("loss-zero-weight", "train {gan1d} --loss 0*ns", "weight of 0"),
        c("loss-zero-weight-term", "train {gan1d} --loss ns+0*r1", "weight of 0"),
        # --betas
        c("betas-out-of-range", "train {gan1d} --betas 1.5,-2", "--betas"),
        c("betas-one-value", "train {gan1d} --betas 0.5", "--betas"),
        c("betas-three-values", "train {gan1d} --betas 0.5,0.9,0.99", "--betas"),
        c("betas-words", "train {gan1d} --betas a,b", "--betas"),
        c("betas-nan", "train {gan1d} --betas nan,0.9", "--betas"),
        c("betas-one", "train {gan1d} --betas 0.9,1.0", "--betas"),
        c("g-betas-out-of-range", "train {gan1d} --g-betas 0.5,1.5", "--g-betas"),
        c("d-betas-negative", "train {gan1d} --d-betas -0.1,0.9", "--d-betas"),
        # conflicting flags
        c("resume-with-name", "train --resume {run} --name other -q", "--name", keep=("{run}",)),
        c("resume-with-preset", "train --resume {run} --preset gan1d -q", "--preset", keep=("{run}",)),
        c("resume-with-gen", "train --resume {run} --gen dcgan -q", "--gen", keep=("{run}",)),
        c("resume-with-batch-size", "train --resume {run} --batch-size 8 -q", "--batch-size", keep=("{run}",)),
        c("resume-with-loss", "train --resume {run} --loss hinge -q", "--loss", keep=("{run}",)),
        c("label-unconditional", "sample {export} --label 1 --out {tmp}/s.png", "--label"),
        c("label-out-of-range", "sample {digits} --label 10 --out {tmp}/s.png", "--label"),
        c("label-negative", "sample {digits} --label -1 --out {tmp}/s.png", "--label"),
        c("labels-unconditional", "sample {export} --labels all --out {tmp}/s.png", "--label"),
        c("truncation-not-style-based", "sample {export} --truncation 0.7 --out {tmp}/s.png", "--truncation",
          "style-based"),
        c("truncation-cutoff-alone", "sample {export} --truncation-cutoff 2 --out {tmp}/s.png", "--truncation PSI"),
        c("pl-without-style-generator", "train {tiny} --loss ns+pl", "pl", "style-based"),
        c("interpolate-label-unconditional", "interpolate {export} --label 1 --out {tmp}/i.png", "--label"),
        c("keep-best-without-eval", "train {gan1d} --keep-best fid", "--keep-best", "--eval-every"),
        c("sample-bad-extension", "sample {export} --out {tmp}/s.jpg", ".jpg"),
        c("interpolate-bad-extension", "interpolate {export} --out {tmp}/i.txt", ".txt"),
        # --resume misuse
        c("resume-unknown", "train --resume nosuch -q", "nosuch", code=1),
        c("resume-a-file", "train --resume {tmp}/notes.txt -q", "{tmp}/notes.txt", code=1,
          setup=lambda w: w.write("notes.txt", "not a run")),
        c("resume-empty-folder", "train --resume {tmp}/empty -q", "{tmp}/empty", code=1,
          setup=lambda w: w.folder("empty")),
        c("resume-config-file", "train --resume {run}/config.json -q", "config.json", code=1, keep=("{run}",)),
        c("resume-empty-name", ["train", "--resume", "", "--steps", "1", "-q", "--runs-dir", "{runs}"], "--resume"),
        c("resume-an-export", "train --resume {export} -q", "{export}", code=1),
        # --name must be one folder name inside --runs-dir
        *[c(f"name-{label}", ["train", *GAN1D.split(), "--name", name], "--name", absent=absent)
          for label, name, absent in [("parent", "../x", ("{tmp}/x",)), ("absolute", "{tmp}/abs", ("{tmp}/abs",)),
                                      ("nested", "a/b", ("{runs}/a",)), ("dot", ".", ()), ("dotdot", "..", ()),
                                      ("latest", "latest", ("{runs}/latest",)), ("empty", "", ()),
                                      ("backslash", "a\\b", ("{runs}/a\\b",)), ("nul", "x\0y", ()),
                                      ("newline", "x\ny", ("{runs}/x\ny",)), ("too-long", "n" * 300, ())]],
    ]
    return cases


def files() -> list[Case]:
    """Files given where gantk expects its own: missing, wrong kind, damaged, forged, hand-edited."""
    def c(id, command, code, *words, **kw):
        return Case(f"files/{id}", "files", command, code, words, **kw)

    def pickle_zip(w):
        save_pickle(w.path("model.pt"))

    def garbage(w):
        w.write("garbage.safetensors", os.urandom(4096))

    def empty(w):
        w.write("empty.safetensors", b"")

    def cut(w):
        shutil.copy(w.export, w.path("cut.safetensors"))
        truncate(w.path("cut.safetensors"))

    def loop(w):
        os.symlink("loop.safetensors", w.path("loop.safetensors"))

    def forged(relative="forged.safetensors", **changes):
        def setup(w):
            shutil.copy(w.export, w.path(relative))
            forge_config(w.path(relative), **changes)
        return setup

    def edited_metadata(edit):
        def setup(w):
            shutil.copy(w.export, w.path("edited.safetensors"))
            rewrite(w.path("edited.safetensors"), metadata=edit)
        return setup

    def dropped_tensor(w):
        shutil.copy(w.export, w.path("edited.safetensors"))
        rewrite(w.path("edited.safetensors"), tensors=lambda t: t.pop(first_key(t, "")))

    def config(edit):
        return lambda w: w.edit_config(edit)

    def damaged(damage):
        return lambda w: damage(w, w.ckpt(4))

    fallback = dict(notes=1, check=resumed_to(6))
    big_image = {"shape": [1, 65536, 65536], "num_classes": 0, "name": "normal1d"}
    cases = [
        # missing files
        c("missing-sample", "sample {tmp}/nope.safetensors --out {tmp}/s.png", 1, "nope.safetensors"),
        c("missing-info", "info {tmp}/nope.safetensors", 1, "{tmp}/nope.safetensors"),
        c("missing-eval", "eval {tmp}/nope.safetensors --metrics dc --n 50 --out {tmp}/e.json", 1, "nope.safetensors"),
        c("missing-interpolate", "interpolate {tmp}/nope.safetensors --out {tmp}/i.png", 1, "nope.safetensors"),
        c("missing-api", load_generator("{tmp}/nope.safetensors"), 1, "nope.safetensors"),
        c("missing-inception-weights", "eval {digits} --metrics fid --features inception --inception-weights "
          "{tmp}/nope.safetensors --n 50 --out {tmp}/e.json", (1, 2), "nope.safetensors"),
        # a folder where a file belongs
        c("folder-sample", "sample {tmp}/plain --out {tmp}/s.png", 1, "{tmp}/plain", setup=lambda w: w.folder("plain")),
        c("folder-info", "info {tmp}/plain", 1, "{tmp}/plain", setup=lambda w: w.folder("plain")),
        c("folder-api", load_generator("{tmp}/plain"), 1, "{tmp}/plain", setup=lambda w: w.folder("plain")),
        # empty, truncated, garbage
        c("empty-sample", "sample {tmp}/empty.safetensors --out {tmp}/s.png", 1, "empty.safetensors", setup=empty),
        c("empty-info", "info {tmp}/empty.safetensors", 1, "empty.safetensors", setup=empty),
        c("empty-api", load_generator("{tmp}/empty.safetensors"), 1, "empty.safetensors", setup=empty),
        c("truncated-sample", "sample {tmp}/cut.safetensors --out {tmp}/s.png", 1, "cut.safetensors", setup=cut),
        c("truncated-info", "info {tmp}/cut.safetensors", 1, "cut.safetensors", setup=cut),
        c("garbage-sample", "sample {tmp}/garbage.safetensors --out {tmp}/s.png", 1, "garbage.safetensors",
          setup=garbage, keep=("{tmp}/garbage.safetensors",), absent=("{tmp}/s.png",)),
        c("garbage-info", "info {tmp}/garbage.safetensors", 1, "garbage.safetensors", setup=garbage),
        c("text-info", "info {tmp}/notes.safetensors", 1, "notes.safetensors",
          setup=lambda w: w.write("notes.safetensors", "just some text\n" * 20)),
        c("huge-header-info", "info {tmp}/huge.safetensors", 1, "huge.safetensors",
          setup=lambda w: w.write("huge.safetensors", struct.pack("<Q", 2 ** 60) + b"{}")),
        c("json-array-header-info", "info {tmp}/list.safetensors", 1, "list.safetensors",
          setup=lambda w: w.write("list.safetensors", struct.pack("<Q", 2) + b"[]")),
        # pickles are named as such and never loaded
        c("pickle-sample", "sample {tmp}/model.pt --out {tmp}/s.png", 1, "model.pt", "pickle", setup=pickle_zip,
          keep=("{tmp}/model.pt",)),
        c("pickle-info", "info {tmp}/model.pt", 1, "model.pt", "pickle", setup=pickle_zip),
        c("pickle-legacy-info", "info {tmp}/old.pt", 1, "old.pt", "pickle",
          setup=lambda w: save_pickle(w.path("old.pt"), zipped=False)),
        c("pickle-api", load_generator("{tmp}/model.pt"), 1, "pickle", setup=pickle_zip),
        c("pickle-named-safetensors", "sample {tmp}/model.safetensors --out {tmp}/s.png", 1, "pickle",
          setup=lambda w: save_pickle(w.path("model.safetensors"))),
        c("pickle-inception-weights", "eval {digits} --metrics fid --features inception --inception-weights "
          "{tmp}/model.pt --n 50 --out {tmp}/e.json", (1, 2), "model.pt", "pickle|pickling", setup=pickle_zip),
        # the wrong gantk file
        c("checkpoint-to-sample", "sample {ckpt} --out {tmp}/s.png", 1, "step_000004.safetensors", "export"),
        c("checkpoint-to-interpolate", "interpolate {ckpt} --out {tmp}/i.png", 1, "step_000004.safetensors"),
        c("checkpoint-to-eval", "eval {ckpt} --metrics dc --n 50 --out {tmp}/e.json", 1, "step_000004.safetensors"),
        c("checkpoint-to-api", load_generator("{ckpt}"), 1, "step_000004.safetensors"),
        c("export-to-export", "export {export} --out {tmp}/g2.safetensors", 1, "{export}"),
        # forged exports: refused before anything of that size is allocated
        c("forged-z-dim-sample", "sample {tmp}/forged.safetensors --out {tmp}/s.png", 1, "forged.safetensors|z_dim",
          setup=forged(z_dim=2_000_000), keep=("{tmp}/forged.safetensors",)),
        c("forged-z-dim-api", load_generator("{tmp}/forged.safetensors"), 1, "forged.safetensors|z_dim",
          setup=forged(z_dim=2_000_000)),
        c("forged-image-size-sample", "sample {tmp}/forged.safetensors --out {tmp}/s.png", (1, 2),
          "forged.safetensors|65536", setup=forged(spec=big_image)),
        c("forged-image-size-api", load_generator("{tmp}/forged.safetensors"), (1, 2), "forged.safetensors|65536",
          setup=forged(spec=big_image)),
        c("forged-width-sample", "sample {tmp}/forged.safetensors --out {tmp}/s.png", 1,
          "forged.safetensors|hidden", setup=forged(hidden=[60, 50])),
        c("forged-config-not-json", "sample {tmp}/edited.safetensors --out {tmp}/s.png", 1, "edited.safetensors",
          setup=edited_metadata(lambda m: m.update({"gantk.config": "{not json"}))),
        c("forged-config-without-z-dim", "sample {tmp}/edited.safetensors --out {tmp}/s.png", 1, "z_dim",
          setup=edited_metadata(lambda m: m.update({"gantk.config": json.dumps(
              {k: v for k, v in json.loads(m["gantk.config"]).items() if k != "z_dim"})}))),
        c("forged-unknown-plugin", "sample {tmp}/edited.safetensors --out {tmp}/s.png", 1, "nosuchgen",
          setup=edited_metadata(lambda m: m.update({"gantk.name": "nosuchgen"}))),
        c("forged-missing-tensor", "sample {tmp}/edited.safetensors --out {tmp}/s.png", 1, "edited.safetensors|net",
          setup=dropped_tensor),
        # hand-edited config.json of a run
        c("config-not-json", RESUME, (1, 2), "config.json", setup=lambda w: (w.run / "config.json").write_text("{"),
          keep=("{run}",)),
        c("config-empty", RESUME, (1, 2), "config.json", setup=lambda w: (w.run / "config.json").write_text(""),
          keep=("{run}",)),
        c("config-a-list", RESUME, (1, 2), "config.json", setup=config(lambda d: [d]), keep=("{run}",)),
        c("config-wrong-type-steps", RESUME.replace(" --steps 6", ""), 2, "steps",
          setup=config(lambda d: d.update(steps="abc")), keep=("{run}",)),
        c("config-wrong-type-options", RESUME, 2, "gen_options", setup=config(lambda d: d.update(gen_options=3)),
          keep=("{run}",)),
        c("config-wrong-type-batch", RESUME, 2, "batch_size", setup=config(lambda d: d.update(batch_size=[64])),
          keep=("{run}",)),
        c("config-unknown-field", RESUME, (1, 2), "widht", setup=config(lambda d: d.update(widht=8)),
          keep=("{run}",)),
        c("config-changed-width", RESUME, (1, 2), "gen_options|hidden",
          setup=config(lambda d: d["gen_options"].update(hidden=[60, 50])), keep=("{run}",)),
        c("config-unknown-plugin", RESUME, 2, "nosuchgen", setup=config(lambda d: d.update(gen="nosuchgen")),
          keep=("{run}",)),
        c("components-not-json-export", "export {run} --out {tmp}/g.safetensors", 1, "components.json",
          setup=lambda w: (w.run / "components.json").write_text("{"), keep=("{run}",)),
        # symbolic-link loops
        c("loop-sample", "sample {tmp}/loop.safetensors --out {tmp}/s.png", 1, "loop.safetensors", setup=loop),
        c("loop-info", "info {tmp}/loop.safetensors", 1, "loop.safetensors", setup=loop),
        c("loop-resume", "train --resume {tmp}/loop.safetensors -q", 1, "loop.safetensors", setup=loop),
        # hand-damaged checkpoints: resume falls back to the older one with one line
        c("ckpt-finite-garbage", RESUME, 0, "step_000004",
          setup=damaged(lambda w, p: overwrite_tensor(p, struct.pack("<f", 0.25))), **fallback),
        c("ckpt-nan-weights", RESUME, 0, "step_000004",
          setup=damaged(lambda w, p: overwrite_tensor(p, struct.pack("<f", float("nan")))), **fallback),
        c("ckpt-missing-state", RESUME, 0, "step_000004",
          setup=damaged(lambda w, p: rewrite(p, metadata=lambda m: m.pop("gantk.state"))), **fallback),
        c("ckpt-garbage-state", RESUME, 0, "step_000004",
          setup=damaged(lambda w, p: rewrite(p, metadata=lambda m: m.update({"gantk.state": "{oops"}))), **fallback),
        c("ckpt-missing-tensor", RESUME, 0, "step_000004",
          setup=damaged(lambda w, p: rewrite(p, tensors=lambda t: t.pop(first_key(t)))), **fallback),
        c("ckpt-misshapen-tensor", RESUME, 0, "step_000004",
          setup=damaged(lambda w, p: rewrite(p, tensors=lambda t: t.update({first_key(t): t[first_key(t)][:1]}))),
          **fallback),
        c("ckpt-truncated", RESUME, 0, "step_000004", setup=damaged(lambda w, p: truncate(p)), **fallback),
        c("ckpt-empty-file", RESUME, 0, "step_000004", setup=damaged(lambda w, p: p.write_bytes(b"")), **fallback),
        c("ckpt-wrong-kind", RESUME, 0, "step_000004",
          setup=damaged(lambda w, p: rewrite(p, metadata=lambda m: m.update({"gantk.kind": "generator"}))),
          **fallback),
    ]
    return cases


def run_dirs() -> list[Case]:
    """Run folders: one writer at a time, missing or damaged checkpoints, metrics after a resume, exports."""
    def c(id, command, code, *words, **kw):
        return Case(f"runs/{id}", "runs", command, code, words, **kw)

    def drop_checkpoints(w):
        shutil.rmtree(w.run / "checkpoints")

    def damage_all(w):
        for step in (2, 4):
            truncate(w.ckpt(step))

    cases = [
        c("lock-held-by-another-process", with_lock_held_by_another_process, 2, "in use|lock", check=holder_named,
          keep=("{run}",)),
        c("second-writer-resumes", nested_writer("train --resume {run} --steps 6 -q",
                                                 ["train", "--resume", "RUN", "--steps", "8", "-q"]), 0,
          check=inner_refused(str(os.getpid()))),
        c("second-writer-same-new-name", nested_writer("train {gan1d} --name w",
                                                       ["train", "--preset", "gan1d", "--steps", "2", "-q",
                                                        "--runs-dir", "RUNS", "--name", "w"]), 0,
          check=inner_refused("{runs}/w")),
        c("stale-lock-taken-over", RESUME, 0, "lock", notes=1, check=dead_named,
          setup=stale_lock(lambda: json.dumps({"pid": dead_pid(), "host": socket.gethostname(), "since": "x"}))),
        c("garbage-lock-taken-over", RESUME, 0, "lock", notes=1, setup=stale_lock(lambda: "%%% not a lock %%%")),
        c("empty-lock-file", RESUME, 0, setup=stale_lock(lambda: ""), check=resumed_to(6)),
        c("resume-without-checkpoints", RESUME, 1, "checkpoint", setup=drop_checkpoints, keep=("{run}",)),
        c("resume-empty-checkpoint-folder", RESUME, 1, "checkpoint",
          setup=lambda w: [p.unlink() for p in (w.run / "checkpoints").iterdir()], keep=("{run}",)),
        c("resume-all-checkpoints-damaged", RESUME, 1, "checkpoint", setup=damage_all, keep=("{run}",)),
        c("metrics-no-duplicate-steps", RESUME, 0, setup=lambda w: w.ckpt(4).unlink(), check=resumed_to(6)),
        c("metrics-cut-line", RESUME, 0, check=metrics_parse,
          setup=lambda w: (w.run / "metrics.jsonl").open("a").write('{"step": 5, "d/n')),
        c("partial-checkpoint-file", RESUME, 0, check=resumed_to(6),
          setup=lambda w: (w.run / "checkpoints" / ".step_000006.safetensors.x1.tmp").write_bytes(b"\0" * 64),
          absent=("{run}/checkpoints/.step_000006.safetensors.x1.tmp",)),
        c("export-newest-damaged", "export {run} --out {tmp}/g.safetensors", 0, "step_000004", notes=1,
          setup=lambda w: overwrite_tensor(w.ckpt(4), struct.pack("<f", 0.5)), keep=("{run}",),
          check=loads_generator("{tmp}/g.safetensors")),
        c("export-all-damaged", "export {run} --out {tmp}/g.safetensors", 1, "checkpoint", setup=damage_all,
          keep=("{run}",), absent=("{tmp}/g.safetensors",)),
        c("export-no-checkpoints", "export {run} --out {tmp}/g.safetensors", 1, "checkpoint", setup=drop_checkpoints,
          keep=("{run}",)),
        c("sample-empty-run", "sample {run} --out {tmp}/s.png", 1, "{run}",
          setup=lambda w: ((w.run / "generator.safetensors").unlink(), drop_checkpoints(w))),
        c("name-exists", "train {gan1d} --name r", 2, "{run}", setup=lambda w: w.run, keep=("{run}",)),
        c("name-is-a-file", "train {gan1d} --name r", 2, "{runs}/r", setup=lambda w: w.write("runs/r", "a file"),
          keep=("{runs}/r",)),
        c("runs-dir-is-a-file", "train --preset gan1d --steps 2 -q --runs-dir {tmp}/afile", 1, "{tmp}/afile",
          setup=lambda w: w.write("afile", "x"), keep=("{tmp}/afile",)),
        c("latest-dangling", "train --resume latest --runs-dir {runs} -q", 1, "latest",
          setup=lambda w: os.symlink("gone", w.runs / "latest")),
        c("report-garbage-metrics", "report {run} --out {tmp}/report", (0, 1), keep=("{run}",),
          setup=lambda w: (w.run / "metrics.jsonl").open("a").write("garbage\n")),
        c("sigterm-while-training", terminate_while_training, 130, "--resume", check=saved_checkpoint),
    ]
    return cases


def plugins() -> list[Case]:
    """Broken, hostile and clashing plugin packages (the fake_package fixture)."""
    def c(id, command, code, *words, **kw):
        return Case(f"plugins/{id}", "plugins", command, code, words, **kw)

    def package(name, source):
        return lambda w: w.plugin(name, source)

    def wrong(kind):
        hook, name, factory = WRONG_RETURN[kind]
        return package(f"acme-{kind}", hook_module(hook, name, factory))

    train = "train {gan1d}"
    cases = [
        c("import-error", "list loss", 0, "acme-missing", notes=1,
          setup=package("acme-missing", "import gantk_dependency_that_is_not_installed\n"), check=stdout_has("hinge")),
        c("import-error-train", train, 0, "acme-missing", notes=1,
          setup=package("acme-missing", "import gantk_dependency_that_is_not_installed\n")),
        c("system-exit-at-import", "list loss", 0, "acme-exit", notes=1, check=stdout_has("hinge"),
          setup=package("acme-exit", "import sys\nsys.exit(3)\n")),
        c("system-exit-listed", "plugins", 0, "acme-exit", check=stdout_has("acme-exit"),
          setup=package("acme-exit", "import sys\nsys.exit(3)\n")),
        c("hook-raises", "list loss", 0, "acme-hook", notes=1, check=stdout_has("hinge"),
          setup=package("acme-hook", "import gantk\n\n@gantk.hookimpl\ndef register_losses(register):\n"
                                     "    raise RuntimeError('the hook failed')\n")),
        c("hook-system-exit", "list loss", 0, "acme-hook", notes=1, check=stdout_has("hinge"),
          setup=package("acme-hook", "import gantk\n\n@gantk.hookimpl\ndef register_losses(register):\n"
                                     "    raise SystemExit(4)\n")),
        c("misspelt-hook", "list loss", 0, "acme-typo", notes=1,
          setup=package("acme-typo", "import gantk\n\n@gantk.hookimpl\ndef register_loss(register):\n"
                                     "    register('typo', None)\n")),
        c("invalid-name", "list loss", 0, "acme-name", notes=1,
          setup=package("acme-name", hook_module("register_losses", "Bad Name", "lambda spec: None"))),
        c("entry-point-attribute-missing", "list loss", 0, "acme-attr", notes=1,
          setup=lambda w: w.fake_package("acme-attr", {"acme_attr": "x = 1\n"}, {"plugin": "acme_attr:missing"})),
        c("strict-mode", "list", 1, "acme-missing", runner="main",
          setup=lambda w: (w.plugin("acme-missing", "import gantk_dependency_that_is_not_installed\n"),
                           w.monkeypatch.setenv("GANTK_STRICT_PLUGINS", "1"))),
        # factories that raise
        c("loss-factory-raises", f"{train} --loss boom", 1, "boom", "acme-boom",
          setup=package("acme-boom", hook_module("register_losses", "boom", "fail", RAISE))),
        c("dataset-factory-raises", "train {tiny} --dataset boom", 1, "boom", "acme-boom",
          setup=package("acme-boom", hook_module("register_datasets", "boom", "fail", RAISE))),
        c("metric-factory-raises", "eval {export} --metrics boom --n 50 --out {tmp}/e.json", 1, "boom", "acme-boom",
          setup=package("acme-boom", hook_module("register_metrics", "boom", "fail", RAISE))),
        c("generator-factory-exits", "train {tiny} --gen bye --disc dcgan", 1, "bye", "acme-bye",
          setup=package("acme-bye", hook_module("register_generators", "bye", "leave", EXIT))),
        c("dataset-usage-error-passes", "train {tiny} --dataset picky", 2, "picky", "--data-root",
          setup=package("acme-picky", USAGE_DATASET)),
        c("loss-raises-in-step", f"{train} --loss ns+broken", 1, "broken", "acme-broken",
          setup=package("acme-broken", BROKEN_LOSS_STEP)),
        c("monitor-raises", train, 1, "failing", "acme-failing", setup=package("acme-failing", RAISING_MONITOR)),
        c("command-raises", "acme-hello", 1, "acme-cmd", setup=package("acme-cmd", FAILING_COMMAND)),
        # factories returning the wrong type, for each kind
        c("wrong-type-generator", "train {tiny} --gen badgen --disc dcgan", 1, "badgen", "acme-generator",
          setup=wrong("generator")),
        c("wrong-type-discriminator", "train {tiny} --disc baddisc", 1, "baddisc", "acme-discriminator",
          setup=wrong("discriminator")),
        c("wrong-type-loss", f"{train} --loss badloss", 1, "badloss", "acme-loss", setup=wrong("loss")),
        c("wrong-type-dataset", "train {tiny} --dataset badset", 1, "badset", "acme-dataset",
          setup=wrong("dataset")),
        c("wrong-type-metric", "eval {export} --metrics badmetric --n 50 --out {tmp}/e.json", 1, "badmetric",
          "acme-metric", setup=wrong("metric")),
        c("wrong-type-conditioning", "train {tiny} -G width=8 -D width=8 --loss ns+ac -G conditioning=badcond", 1,
          "badcond", "acme-conditioning", setup=wrong("conditioning")),
        c("wrong-type-procedure", f"{train} --procedure badproc", 1, "badproc", "acme-procedure",
          setup=wrong("procedure")),
        c("wrong-type-monitor", train, 1, "badmon", "acme-monitor", setup=wrong("monitor")),
        c("wrong-type-preset", "train --preset badpreset -q --runs-dir {runs}", 1, "badpreset", "acme-preset",
          setup=wrong("preset")),
        # presets listing: a broken one is shown, the others still list
        c("presets-broken-factory", "presets", 1, "BROKEN", "boom", paragraph=False, check=stdout_has("gan1d"),
          setup=package("acme-boom", hook_module("register_presets", "boom", "fail", RAISE))),
        c("presets-not-a-dict", "presets", 1, "BROKEN", "badpreset", paragraph=False, check=stdout_has("gan1d"),
          setup=wrong("preset")),
        c("presets-unknown-option", "presets", 1, "BROKEN", "odd", paragraph=False, check=stdout_has("gan1d"),
          setup=package("acme-odd", hook_module("register_presets", "odd", "lambda: {'stepz': 3}"))),
        c("presets-show-broken", "presets boom", 1, "boom", paragraph=False,
          setup=package("acme-boom", hook_module("register_presets", "boom", "fail", RAISE))),
        # built-in commands and names are not replaced
        c("command-replaces-train", "train -h", 0, "acme-cmd", "train", notes=1,
          check=lambda w, o: (stdout_has("--gen")(w, o), stdout_lacks("HIJACKED")(w, o)),
          setup=package("acme-cmd", COMMAND.format(name="train", package="acme-cmd"))),
        c("command-replaces-sample", "sample {export} --out {tmp}/s.png", 0, "acme-cmd", "sample", notes=1,
          check=stdout_lacks("HIJACKED"), setup=package("acme-cmd", COMMAND.format(name="sample", package="acme-cmd"))),
        c("command-replaces-eval", "eval {export} --metrics dc --n 50 --out {tmp}/e.json", 0, "acme-cmd", "eval",
          notes=1, check=stdout_lacks("HIJACKED"),
          setup=package("acme-cmd", COMMAND.format(name="eval", package="acme-cmd"))),
        c("two-plugins-one-command", "hello", 0, "acme-two", "hello", notes=1, check=stdout_has("HIJACKED by acme-one"),
          setup=lambda w: (w.plugin("acme-one", COMMAND.format(name="hello", package="acme-one")),
                           w.plugin("acme-two", COMMAND.format(name="hello", package="acme-two")))),
        c("shadows-dcgan", "train {tiny} -G width=8 -D width=8", 0, "acme-shadow", "dcgan", notes=2,
          setup=package("acme-shadow", SHADOW_DCGAN)),
        c("shadows-ns-loss", train, 0, "acme-shadow", "ns", notes=1, setup=package("acme-shadow", SHADOW_LOSS)),
        c("shadowed-run-resumes", RESUME, 0, notes=0, check=resumed_to(6),  # config.json names gantk:ns
          setup=package("acme-shadow", SHADOW_LOSS)),
        c("two-packages-same-name", f"{train} --loss dup", 2, "acme-a:dup", "acme-b:dup",
          setup=lambda w: (w.plugin("acme-a", hook_module("register_losses", "dup", "lambda spec: None")),
                           w.plugin("acme-b", hook_module("register_losses", "dup", "lambda spec: None")))),
    ]
    return cases


def environment() -> list[Case]:
    """The machine: read-only or full disks, permissions, folders where files belong, images, Ctrl-C."""
    def c(id, command, code, *words, **kw):
        return Case(f"environment/{id}", "environment", command, code, words, **kw)

    def deny(relative, code):
        """An existing folder ``relative`` where writing fails with ``code``."""
        return lambda w: w.deny(w.folder(relative), code)

    def deny_run(code):
        return lambda w: w.deny(w.run, code)

    def keyboard_interrupt(target: str):
        def interrupt(*args, **kwargs):
            raise KeyboardInterrupt
        return lambda w: w.monkeypatch.setattr(target, interrupt)

    def images_with(relative: str, data: Callable[[World], bytes]):
        def setup(w):
            root = w.images()
            (root / relative).write_bytes(data(w))
        return setup

    def png(size: int) -> bytes:
        from PIL import Image

        buffer = io.BytesIO()
        Image.new("L", (size, size)).save(buffer, format="PNG")
        return buffer.getvalue()

    def bomb(w):
        images_with("bomb.png", lambda w: png(64))(w)
        import PIL.Image

        w.monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 1000)

    folder = "train {tiny} -G width=8 -D width=8 --dataset folder --data-root {tmp}/imgs --image-size 8 --batch-size 4"
    eval_to = "eval {export} --metrics dc --n 100 --out "
    enospc = lambda w: full_disk_on_sync(w.monkeypatch, w.run)  # noqa: E731
    cases = [
        c("erofs-runs-dir", "train {gan1d} --runs-dir {tmp}/ro", 1, "{tmp}/ro", "read-only",
          setup=deny("ro", errno.EROFS)),
        c("erofs-resume", RESUME, 1, "{run}", "read-only", setup=deny_run(errno.EROFS), keep=("{run}",)),
        c("erofs-sample-out", "sample {export} --out {tmp}/ro/s.png", 1, "{tmp}/ro", "read-only",
          setup=deny("ro", errno.EROFS)),
        c("erofs-export-out", "export {run} --out {tmp}/ro/g.safetensors", 1, "{tmp}/ro", "read-only",
          setup=deny("ro", errno.EROFS), keep=("{run}",)),
        c("erofs-eval-out", eval_to + "{tmp}/ro/e.json", 1, "{tmp}/ro", "read-only", setup=deny("ro", errno.EROFS),
          check=json_printed),
        c("erofs-interpolate-out", "interpolate {export} --out {tmp}/ro/i.png", 1, "{tmp}/ro", "read-only",
          setup=deny("ro", errno.EROFS)),
        c("erofs-report-out", "report {run} --out {tmp}/ro/report", 1, "{tmp}/ro", "read-only",
          setup=deny("ro", errno.EROFS), keep=("{run}",)),
        c("enospc-creating-file", "sample {export} --out {tmp}/full/s.png", 1, "{tmp}/full", "full|space",
          setup=deny("full", errno.ENOSPC)),
        c("enospc-on-sync-resume", RESUME, 1, "{run}", "full|space", setup=enospc,
          keep=("{run}/checkpoints", "{run}/generator.safetensors", "{run}/config.json")),
        c("enospc-on-sync-export", "export {run} --out {run}/g.safetensors", 1, "{run}", "full|space", setup=enospc,
          keep=("{run}/checkpoints",)),
        c("edquot-train", "train {gan1d} --runs-dir {tmp}/quota", 1, "{tmp}/quota", "quota",
          setup=deny("quota", errno.EDQUOT)),
        c("eacces-data-root", folder, 1, "{tmp}/imgs", "ermission",
          setup=lambda w: (w.images(), w.deny(w.path("imgs"), errno.EACCES, on="read"))),
        c("eacces-sample-out", "sample {export} --out {tmp}/locked/s.png", 1, "{tmp}/locked", "ermission",
          setup=deny("locked", errno.EACCES)),
        c("eacces-read-export", "sample {tmp}/secret/g.safetensors --out {tmp}/s.png", 1, "{tmp}/secret",
          "ermission", setup=lambda w: (w.folder("secret"), shutil.copy(w.export, w.path("secret/g.safetensors")),
                                        w.deny(w.path("secret"), errno.EACCES, on="read"))),
        c("eperm-runs-dir", "train {gan1d} --runs-dir {tmp}/perm", 1, "{tmp}/perm", "ermi",
          setup=deny("perm", errno.EPERM)),
        # an existing folder is a folder of PNG files to write (gantk sample --out DIR/): not for vector samples
        c("eisdir-sample-out", "sample {export} --out {tmp}/adir.png", 2, "{tmp}/adir.png", "not pictures", ".npz",
          setup=lambda w: w.folder("adir.png")),
        # an existing folder is a model directory to write (gantk export --out DIR/): refused when not empty
        c("nonempty-dir-export-out", "export {run} --out {tmp}/adir", 2, "{tmp}/adir", "--overwrite",
          setup=lambda w: w.write("adir/notes.txt", "mine"), keep=("{run}", "{tmp}/adir")),
        c("erofs-export-dir-out", "export {run} --out {tmp}/ro/model/", 1, "{tmp}/ro", "read-only",
          setup=deny("ro", errno.EROFS), keep=("{run}",)),
        c("eisdir-eval-out", eval_to + "{tmp}/adir", 1, "{tmp}/adir", setup=lambda w: w.folder("adir"),
          check=json_printed),
        c("eisdir-interpolate-out", "interpolate {export} --out {tmp}/adir.png", 1, "{tmp}/adir.png",
          setup=lambda w: w.folder("adir.png")),
        c("enotdir-runs-dir", "train {gan1d} --runs-dir {tmp}/afile/sub", 1, "{tmp}/afile",
          setup=lambda w: w.write("afile", "x")),
        c("enotdir-out", "sample {export} --out {tmp}/afile/s.png", 1, "{tmp}/afile",
          setup=lambda w: w.write("afile", "x")),
        c("enametoolong-out", "sample {export} --out {tmp}/" + "a" * 300 + ".png", 1, "long"),
        c("emfile-reading", "sample {tmp}/many/g.safetensors --out {tmp}/s.png", 1, "open files",
          setup=lambda w: (w.folder("many"), shutil.copy(w.export, w.path("many/g.safetensors")),
                           w.deny(w.path("many"), errno.EMFILE, on="read"))),
        c("eio-reading", "info {tmp}/disk/g.safetensors", 1, "{tmp}/disk", "nput/output",
          setup=lambda w: (w.folder("disk"), shutil.copy(w.export, w.path("disk/g.safetensors")),
                           w.deny(w.path("disk"), errno.EIO, on="read"))),
        c("decompression-bomb", folder, 1, "bomb.png", setup=bomb),
        c("unreadable-image", folder, 1, "bad.png", setup=images_with("bad.png", lambda w: b"not an image" * 10)),
        c("truncated-image", folder, 1, "cut.png", setup=images_with("cut.png", lambda w: png(8)[:30])),
        c("data-root-missing", folder.replace("{tmp}/imgs", "{tmp}/nowhere"), 1, "{tmp}/nowhere"),
        c("data-root-a-file", folder.replace("{tmp}/imgs", "{tmp}/afile"), 1, "{tmp}/afile",
          setup=lambda w: w.write("afile", "x")),
        c("data-root-empty", folder.replace("{tmp}/imgs", "{tmp}/empty"), (1, 2), "{tmp}/empty",
          setup=lambda w: w.folder("empty")),
        c("data-root-loop", folder.replace("{tmp}/imgs", "{tmp}/loop"), 1, "{tmp}/loop",
          setup=lambda w: os.symlink("loop", w.path("loop"))),
        c("mnist-files-missing", "train {tiny} --dataset mnist --data-root {tmp}/empty", 1, "{tmp}/empty",
          "--download", setup=lambda w: w.folder("empty")),
        c("ctrl-c-in-sample", "sample {export} --out {tmp}/s.png", 130, "Interrupted", runner="main",
          setup=keyboard_interrupt("gantk.engine.export.load_generator")),
        c("ctrl-c-in-eval", eval_to + "{tmp}/e.json", 130, "Interrupted", runner="main",
          setup=keyboard_interrupt("gantk.plugins.tools.eval_result.evaluate")),
        c("ctrl-c-while-importing", interrupt_while_importing, 130, "Interrupted"),
    ]
    return cases


def memory() -> list[Case]:
    """Sizes that cannot fit: refused with what was asked and what fits, before anything is allocated."""
    def c(id, command, *words, code=2, **kw):
        return Case(f"memory/{id}", "memory", command, code, words, **kw)

    big = "GiB|memory"
    return [
        c("z-dim-1e9", "train {tiny} -G z_dim=1e9", "z_dim|" + big),
        c("z-dim-billion", "train {tiny} -G z_dim=1000000000", big),
        c("width-huge", "train {tiny} -G width=10000000 -D width=8", big),  # G alone: far more than any RAM
        c("image-size-4096", "train {tiny} --image-size 4096", big),
        c("image-size-65536", "train {tiny} --image-size 65536", big),
        c("num-samples-1e9", "train {gan1d} --num-samples 1e9", "--num-samples"),
        c("num-samples-billion", "train {gan1d} --num-samples 1000000000", "--num-samples|" + big),
        c("batch-size-billion", "train {tiny} --batch-size 1000000000", "--batch-size|" + big),
        c("max-memory-1M", "train {tiny} --max-memory 1M", "--max-memory|" + big),
        c("max-memory-words", "train {tiny} --max-memory lots", "--max-memory"),
        c("max-memory-zero", "train {tiny} --max-memory 0", "--max-memory"),
        c("sample-n-billion", "sample {export} --n 1000000000 --out {tmp}/s.npz", "--n|" + big),
        c("sample-n-1e9", "sample {export} --n 1e9 --out {tmp}/s.npz", "--n"),
        c("sample-max-memory", "sample {export} --max-memory 1K --out {tmp}/s.npz", "--max-memory|" + big),
        c("eval-n-billion", "eval {export} --metrics dc --n 1000000000 --out {tmp}/e.json", "--n|" + big),
        c("interpolate-steps-billion", "interpolate {export} --steps 1000000000 --out {tmp}/i.npz", "--steps|" + big),
    ]


CASES: list[Case] = [*options(), *files(), *run_dirs(), *plugins(), *environment(), *memory()]
