"""The progress display tells the truth (issue 17): steps/s and the ETA count training time only, the ETA adds
the evaluations still to come, an evaluation shows a status line, and one-time work (the metrics' classifier)
shows its progress and where it is cached."""

from __future__ import annotations

import io
import shutil

import pytest
import torch
from rich.console import Console

import gantk.engine.trainer as trainer_module
from gantk.engine.progress import TrainingProgress, clock_text, jobs_left, notice, one_time_work
from gantk.engine.trainer import Trainer
from gantk.plugins.metrics.classifier import load_or_train_classifier
from gantk.protocols import DataSpec, Dataset
from engine_helpers import tiny_config


class FakeClock:
    """A clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def progress():
    """Builds TrainingProgress displays (off unless ``enabled``) and closes them after the test."""
    made = []

    def make(clock, total=100, periodic=None, enabled=False, **options) -> TrainingProgress:
        made.append(TrainingProgress(total, 0, enabled, periodic=periodic or {}, clock=clock, **options))
        return made[-1]

    yield make
    for display in made:
        display.close()


# ------------------------------------------------------------------------- rate and ETA
def test_steps_per_s_leaves_out_a_slow_evaluation(progress):
    clock = FakeClock()
    bar = progress(clock, periodic={"evaluation": 50})
    clock.wait(2.0)  # 20 steps at 10 steps/s
    assert bar.rate(20) == pytest.approx(10.0)
    with bar.paused("evaluation"):
        clock.wait(60.0)
    clock.wait(2.0)
    assert bar.rate(40) == pytest.approx(10.0)  # 40 steps / 64 s = 0.6 steps/s if the evaluation counted


def test_the_rate_counts_from_the_first_read_back_leaving_out_the_warm_up(progress):
    clock = FakeClock()
    bar = progress(clock)
    clock.wait(5.0)  # the first 10 steps, warming up (allocations, kernel choices, compilation)
    bar.report(10, {})
    clock.wait(2.0)  # 20 steps at 10 steps/s
    assert bar.rate(30) == pytest.approx(10.0)  # 30 steps / 7 s = 4.3 steps/s if the warm-up counted


def test_the_eta_adds_the_evaluations_still_to_come_at_their_mean_duration(progress):
    clock = FakeClock()
    bar = progress(clock, periodic={"evaluation": 25})
    with bar.paused("evaluation"):  # the baseline at step 0
        clock.wait(4.0)
    clock.wait(1.0)
    assert bar.eta(10) == pytest.approx(90 / 10 + 4 * 4.0)  # steps left at 10 steps/s + evaluations at 25 .. 100
    clock.wait(1.5)
    with bar.paused("evaluation"):  # at step 25: the mean becomes 5 s
        clock.wait(6.0)
    clock.wait(0.5)
    assert bar.eta(30) == pytest.approx(70 / 10 + 3 * 5.0)


def test_one_time_work_in_the_first_evaluation_is_not_expected_of_the_later_ones(progress):
    clock = FakeClock()
    bar = progress(clock, periodic={"evaluation": 25})
    with bar.paused("evaluation"):
        with one_time_work("Training a classifier", clock=clock) as advance:
            clock.wait(30.0)
            advance(300, 300)
        clock.wait(4.0)
    clock.wait(1.0)
    assert bar.eta(10) == pytest.approx(90 / 10 + 4 * 4.0)


def test_on_steady_timings_elapsed_plus_eta_is_the_final_wall_time_once_each_job_was_seen(progress):
    """The loop's order: steps; at log steps a report; then samples, evaluation, checkpoint (and all at the last
    step). With constant durations the prediction is exact once every kind of pause has been timed."""
    clock, total = FakeClock(), 230
    every = {"samples": 40, "evaluation": 50, "checkpoint": 100}
    seconds = {"samples": 0.2, "evaluation": 3.0, "checkpoint": 0.5}
    bar = progress(clock, total=total, periodic=every)
    with bar.paused("evaluation"):
        clock.wait(seconds["evaluation"])
    predictions = []
    for step in range(1, total + 1):
        clock.wait(0.1)
        if step % 10 == 0 or step == total:
            bar.report(step, {})
            predictions.append((step, clock() - bar.started + bar.eta(step)))
        for kind in ("samples", "evaluation", "checkpoint"):
            if step % every[kind] == 0 or step == total:
                with bar.paused(kind):
                    clock.wait(seconds[kind])
    wall = clock() - bar.started
    assert wall == pytest.approx(23.0 + 6 * 0.2 + 6 * 3.0 + 3 * 0.5)
    assert all(predicted == pytest.approx(wall) for step, predicted in predictions if step > 100)


@pytest.mark.parametrize("every, step, total, left", [(50, 1, 100, 2), (50, 50, 100, 2), (50, 51, 100, 1),
                                                      (30, 1, 100, 4), (30, 91, 100, 1), (30, 100, 100, 1),
                                                      (1000, 1, 100, 1)])
def test_jobs_left_counts_the_multiples_and_the_last_step(every, step, total, left):
    assert jobs_left(every, step, total) == left


def test_clock_text_reads_like_a_clock():
    assert [clock_text(s) for s in (0, 65.4, 3599, 3723)] == ["0:00", "1:05", "59:59", "1:02:03"]


# ------------------------------------------------------------------------- what is shown
def test_plain_mode_shows_the_evaluation_status_then_its_values_and_reports_training_time(progress, capsys):
    clock = FakeClock()
    bar = progress(clock, periodic={"evaluation": 50}, enabled=True)
    assert not bar.interactive  # stderr is captured: not a terminal
    with bar.paused("evaluation", "evaluating fid at step 0"):
        clock.wait(2.5)
        bar.note({"eval/fid": 12.5, "eval/fid/0": 1.0})
    clock.wait(1.0)
    bar.report(10, {"d/ns": 0.5, "g/ns": 2.0, "steps_per_s": 10.0})
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["evaluating fid at step 0 ...", "eval/fid 12.5  (2.5 s)",
                     "step 10/100  10.0 steps/s  ETA 0:14  d/ns 0.500  g/ns 2.000"]  # 9 s + 2 evaluations of 2.5 s


def test_on_a_terminal_evaluation_and_one_time_work_show_inside_the_bar(progress):
    terminal = io.StringIO()
    bar = progress(FakeClock(), enabled=True, console=Console(file=terminal, force_terminal=True, width=160))
    assert bar.interactive
    with bar.paused("evaluation", "evaluating fid at step 50"):
        with one_time_work("Training a classifier of digits") as advance:
            advance(150, 300)
            assert len(bar.bar.tasks) == 2  # a second bar for the work
        notice("Classifier cached at /somewhere: the next run reuses it.")
        bar.note({"eval/fid": 3.0})
    assert len(bar.bar.tasks) == 1
    bar.close()
    shown = terminal.getvalue()
    for text in ("evaluating fid at step 50 ...", "Training a classifier of digits: done in",
                 "Classifier cached at /somewhere", "eval/fid 3"):
        assert text in shown


def test_one_time_work_outside_training_prints_its_progress_with_an_eta(capsys):
    clock = FakeClock()
    with one_time_work("Training a classifier of digits", clock=clock) as advance:
        clock.wait(4.0)
        advance(100, 1000)  # a line at most every 10 s
        clock.wait(6.0)
        advance(250, 1000)  # 25 steps/s: 750 steps left
    assert capsys.readouterr().err.splitlines() == [
        "Training a classifier of digits ...", "  250/1000 steps  25.0 steps/s  ETA 0:30",
        "Training a classifier of digits: done in 10.0 s"]


def test_a_quiet_run_shows_no_notices_and_no_work(progress, capsys):
    progress(FakeClock(), enabled=False)
    notice("Using the cached classifier at /somewhere.")
    with one_time_work("Training a classifier of digits") as advance:
        advance(1, 1)
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------------- the classifier of the metrics
@pytest.fixture(scope="module")
def two_shades() -> Dataset:
    """60 labelled 8x8 images in two classes, dark and bright, with noise: a classifier learns them at once."""
    noise = torch.Generator().manual_seed(0)
    labels = torch.arange(2).repeat(30)
    images = (labels.view(-1, 1, 1, 1) * 1.2 - 0.6) + 0.3 * torch.randn(60, 1, 8, 8, generator=noise)
    return Dataset(DataSpec((1, 8, 8), 2, "two-shades"), images.clamp(-1, 1), labels, ("dark", "bright"))


def test_the_first_use_trains_the_classifier_with_progress_and_says_where_it_is_cached(tmp_path, capsys,
                                                                                      two_shades):
    _, info = load_or_train_classifier(two_shades, cache_dir=tmp_path)
    said = capsys.readouterr().err
    assert "Training a classifier of two-shades" in said and "done in" in said
    assert f"cached at {info.cache_path}" in said and "the next run reuses it" in said
    load_or_train_classifier(two_shades, cache_dir=tmp_path)
    assert capsys.readouterr().err == ""  # this process has said where it is


def test_a_cache_hit_names_the_cached_classifier_once(tmp_path, capsys, two_shades):
    _, info = load_or_train_classifier(two_shades, cache_dir=tmp_path / "first")
    copied = tmp_path / "copied"  # the same classifier where this process has not seen it: as for a new run
    copied.mkdir()
    shutil.copy(info.cache_path, copied / info.cache_path.name)
    capsys.readouterr()
    for _ in range(3):  # e.g. one evaluation after another
        _, again = load_or_train_classifier(two_shades, cache_dir=copied)
    said = capsys.readouterr().err
    assert again.loaded and said.count(f"Using the cached classifier at {again.cache_path}") == 1
    assert "Training" not in said


# ------------------------------------------------------------------------- in a training run
@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One $GANTK_CACHE_DIR for the runs below: the first trains the digits classifier, the next finds it."""
    return tmp_path_factory.mktemp("gantk-cache")


def recorded_displays(monkeypatch) -> list[TrainingProgress]:
    """The TrainingProgress displays the trainer builds from now on."""
    displays = []

    class Recorded(TrainingProgress):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            displays.append(self)

    monkeypatch.setattr(trainer_module, "TrainingProgress", Recorded)
    return displays


def test_a_run_with_eval_every_shows_each_evaluation_and_times_it_apart_from_training(tmp_path, monkeypatch,
                                                                                      capsys, cache_dir):
    monkeypatch.setenv("GANTK_CACHE_DIR", str(cache_dir))
    displays = recorded_displays(monkeypatch)
    Trainer(tiny_config(steps=4, eval_every=2, eval_metrics="fid"), tmp_path / "run").train()
    said = capsys.readouterr().err
    assert all(f"evaluating fid at step {step} ..." in said for step in (0, 2, 4)), said
    assert said.count("eval/fid ") == 3
    pauses = displays[0].pauses
    assert len(pauses["evaluation"].seconds) == 3 and len(pauses["checkpoint"].seconds) == 1  # the last step's


def test_a_quiet_run_says_nothing_about_its_evaluations(tmp_path, monkeypatch, capsys, cache_dir):
    monkeypatch.setenv("GANTK_CACHE_DIR", str(cache_dir))
    Trainer(tiny_config(steps=2, eval_every=2, eval_metrics="fid"), tmp_path / "run", show_progress=False).train()
    said = capsys.readouterr().err
    assert "evaluating" not in said and "classifier" not in said and "eval/fid" not in said
