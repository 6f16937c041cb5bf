"""The bad-input battery (issue 12): each case of ``bad_input_cases.CASES`` is run and held to the same rules.

- the exit code is the case's (2 usage, 1 runtime or environment, 130 interrupted, 0 where gantk copes);
- a failure prints ONE paragraph on stderr, starting ``Error:`` (``Interrupted.`` for Ctrl-C), with at
  most one-line ``gantk: ...`` notes before it, and that paragraph names what was wrong;
- a success prints exactly the notes the case expects (a damaged checkpoint skipped: one line);
- nothing prints a traceback or calls a user's, a plugin's or the machine's problem an "internal error";
- the files the case names come out unchanged (hashed before and after), and nothing appears where
  it must not (a ``--name ../x`` outside --runs-dir).

Everything runs in-process, on the CPU, except the three cases that need a second process (a held
lock, two signals). One tiny gan1d run (and a 1-step 8x8 digits DCGAN) is trained once per module
and copied into the cases that use it. Every command
runs under an address-space cap a few GiB above the process's size and a time limit, so a size gantk
fails to refuse fails fast instead of filling the machine's memory or running on.
"""

from __future__ import annotations

import hashlib
import io
import os
import resource
import signal
import sys
import traceback
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gantk.registry

from bad_input_cases import CASES, Case, Outcome, World

HEADROOM = 4 << 30  # bytes of address space a case may use above the process's size
TIME_LIMIT_S = 20  # a case still running after this long is stopped and fails (a size gantk did not refuse)


class CaseTimedOut(BaseException):
    """Raised by the alarm in the case's command; a BaseException, so that no error handler turns it into a message."""


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory) -> Path:
    """A 4-step gan1d run (checkpoints at steps 2 and 4, an exported generator) and, beside it as
    ``digits``, a 1-step class-conditional DCGAN on 8x8 digits (an image generator)."""
    from gantk.cli.app import build_app

    root = tmp_path_factory.mktemp("shared-runs")
    for name, flags in [("r", "--preset gan1d --steps 4 --log-every 2 --sample-every 4 --checkpoint-every 2"),
                        ("digits", "--dataset digits -G width=8 -G z_dim=16 -D width=8 --loss ns+ac --batch-size 16 "
                                   "--precision fp32 --steps 1 --num-samples 10")]:
        gantk.registry._default = None
        result = CliRunner().invoke(build_app(), ["train", *flags.split(), "--quiet", "--runs-dir", str(root),
                                                  "--name", name])
        assert result.exit_code == 0, result.output
    gantk.registry._default = None
    return root / "r"


def invoke_cli(argv: list[str]) -> Outcome:
    """The Typer app in-process (the ``cli`` fixture's way); an exception that escapes shows as a traceback.

    What building the app prints (plugin failures, renamed commands) counts as the command's output.
    """
    from gantk.cli.app import build_app

    with redirect_stdout(io.StringIO()) as early_out, redirect_stderr(io.StringIO()) as early_err:
        app = build_app()
    result = CliRunner().invoke(app, argv)
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    stderr = result.stderr + ("".join(traceback.format_exception(*result.exc_info)) if escaped else "")
    return Outcome(result.exit_code, early_out.getvalue() + result.stdout, early_err.getvalue() + stderr)


def invoke_main(argv: list[str], monkeypatch, capsys) -> Outcome:
    """The console script's entry point in-process, as ``gantk ARGS`` runs it."""
    try:
        from gantk.cli.launcher import main
    except ImportError:
        from gantk.cli.app import main
    monkeypatch.setattr(sys, "argv", ["gantk", *argv])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    except BaseException:  # noqa: BLE001 - shown as the traceback it would print
        print(traceback.format_exc(), file=sys.stderr)
        code = -1
    out, err = capsys.readouterr()
    return Outcome(code, out, err)


@contextmanager
def bounded(headroom: int = HEADROOM, seconds: int = TIME_LIMIT_S):
    """Cap the address space a few GiB above the process's size, and the time, while a case's command runs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    size = int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0]) * 1024
    cap = size + headroom if hard == resource.RLIM_INFINITY else min(size + headroom, hard)

    def stop(signum, frame):
        raise CaseTimedOut(f"the command was still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def snapshot(path: Path) -> dict[str, str] | None:
    """SHA-256 of every file under ``path`` (names starting with '.' aside: lock and temporary files)."""
    if not os.path.lexists(path):
        return None
    if not path.is_dir():
        return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)}


FIRST_USE_PROGRESS = ("Extracting the ", "Real features cached at ")


def stderr_notes(outcome: Outcome) -> str:
    """stderr without the lines of one-time work: a run that finds the real-feature cache empty (a new
    machine, or this session's test cache before another test filled it) says it is extracting them."""
    return "\n".join(line for line in outcome.stderr.splitlines() if not line.startswith(FIRST_USE_PROGRESS))


def the_error(outcome: Outcome, report: str) -> str:
    """The one paragraph a failure prints on stderr, after its one-line notes."""
    text = stderr_notes(outcome).strip("\n")
    lines = text.splitlines()
    assert lines, f"exit {outcome.code} with nothing on stderr\n{report}"
    assert all(line.strip() for line in lines), f"the message is more than one paragraph\n{report}"
    starts = [i for i, line in enumerate(lines)
              if line.startswith("Error:") or (outcome.code == 130 and line == "Interrupted.")]
    assert len(starts) == 1, f"expected one 'Error:' paragraph\n{report}"
    assert all(line.startswith("gantk:") for line in lines[:starts[0]]), f"stray lines before the error\n{report}"
    return "\n".join(lines[starts[0]:])


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, shared_run, tmp_path, monkeypatch, fake_package, capsys):
    world = World(tmp_path, shared_run, monkeypatch, fake_package, invoke_cli)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)  # CUDA would not start under the address-space cap
    if case.setup:
        case.setup(world)
    if callable(case.command):
        run = lambda: case.command(world)  # noqa: E731
    else:
        argv = world.argv(case.command)
        run = (lambda: invoke_main(argv, monkeypatch, capsys)) if case.runner == "main" else lambda: invoke_cli(argv)
    kept = {path: world.fill(path) for path in case.keep}
    before = {path: snapshot(Path(filled)) for path, filled in kept.items()}
    try:
        with bounded():
            outcome = run()
    except CaseTimedOut as timeout:
        pytest.fail(f"{case.id}: {timeout}")
    monkeypatch.undo()  # the denied paths can be read again; the fake packages are gone

    report = f"exit {outcome.code}\n--- stdout\n{outcome.stdout[-3000:]}\n--- stderr\n{outcome.stderr[-4000:]}"
    expected = case.code if isinstance(case.code, tuple) else (case.code,)
    assert outcome.code in expected, f"expected exit {case.code}\n{report}"
    printed = outcome.stdout + outcome.stderr
    assert "Traceback" not in printed and "internal error" not in printed, report
    if outcome.code != 0 and case.paragraph:
        message = the_error(outcome, report)
    elif outcome.code != 0:
        message = printed
    else:
        message = outcome.stderr
        notes = [line for line in stderr_notes(outcome).splitlines() if line.strip()]
        if case.notes is not None:
            assert len(notes) == case.notes, f"expected {case.notes} line(s) on stderr\n{report}"
    for word in case.words:
        choices = world.fill(word).split("|")
        assert any(choice in message for choice in choices), f"the message does not name {word!r}\n{report}"
    for path, filled in kept.items():
        assert snapshot(Path(filled)) == before[path], f"{path} changed\n{report}"
    for path in case.absent:
        assert not os.path.lexists(world.fill(path)), f"{path} was created\n{report}"
    if case.check:
        case.check(world, outcome)
