"""The training loop: counts steps, logs, draws samples, checkpoints, guards, exports.

What one step does lives in a procedure plugin (``--procedure``, default ``gan``), known here
only through the :class:`gantk.Procedure` protocol; this loop decides when things happen and owns
everything around them:

- every ``log_every`` steps the losses are read back in one transfer (no host sync per step),
  checked for NaN/inf and appended to ``metrics.jsonl``;
- every ``sample_every`` steps samples from fixed noise (EMA generator if any) go to the monitor
  plugins: the ``pictures`` tool writes them as ``samples/step_XXXXXX.png``, ``diversity`` logs their spread;
  with ``--tensorboard`` the same grid (image data) goes to TensorBoard as the image ``samples``; with an EMA
  generator, ``ema/spread_ratio`` and ``ema/mean_shift`` compare its samples with the trained generator's
  (:class:`~gantk.engine.ema.SpreadCheck`);
- every ``checkpoint_every`` steps an atomic checkpoint, after the losses were checked, so the
  newest checkpoint is always a finite one;
- samples, evaluations and checkpoints run as pauses of the progress display (:mod:`~gantk.engine.progress`):
  its steps/s and ETA count training time, and the ETA adds the pauses still to come;
- Ctrl-C (or SIGTERM) finishes the current step, saves a checkpoint and exits with code 130;
- at the end the generator (EMA weights when present) is exported to ``generator.safetensors``.

The run directory is locked (``.lock``, :mod:`~gantk.engine.run_lock`) from the moment a Trainer is
built until :meth:`Trainer.train` returns, so no second process writes it. A resume uses the newest
checkpoint that verifies and restores completely, and cuts ``metrics.jsonl`` back to its step.

Pictures, metrics, the EMA and the export apply to the module a procedure exports as ``"generator"``; a
procedure that exports a ``"translator"`` instead gets its EMA and export (``translator.safetensors``),
and draws its own pictures when it is a :class:`gantk.PreviewProcedure`.

Under torchrun every rank runs this loop on its rows of each batch (:mod:`gantk.distributed`);
only rank 0 writes files, the logged losses are every rank's mean, and a Ctrl-C is acted on at
the next log step, by every rank together.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gantk.engine.atomic_files import write_json
from gantk.engine.build import TRAINING_FIX, build_training_data, check_names, resolve_device
from gantk.engine.qualified_names import as_typed, names_on_resume
from gantk.engine.checkpoint import Checkpoint, remove_partial_files, restore_newest, save_checkpoint, why_none_usable
from gantk.engine.config import RESUMABLE, TrainConfig, parse_duration
from gantk.engine.cpu_share import ThreadShare
from gantk.engine.distributed import (
    join_process_group, leave_process_group, mean_over_ranks, rank_device, same_on_every_rank,
    wait_for_every_rank,
)
from gantk.engine.lr_schedule import schedules_at
from gantk.engine.ema import EMA, SpreadCheck, spread_indices
from gantk.engine.export import export_generator
from gantk.engine.translator_export import export_translator
from gantk.engine.memory import keep_freed_memory
from gantk.engine.metrics_log import MetricsLog, NonFiniteLossError, cut_metrics
from gantk.engine.best_export import BestGeneratorExport, parse_keep_best
from gantk.engine.precision import PrecisionPolicy
from gantk.engine.progress import TrainingProgress
from gantk.engine.run_dir import already_exists, is_main_process, is_unused, launched_by_torchrun, point_latest
from gantk.engine.run_lock import RunLock
from gantk.engine.sampling import evaluating, sample_grid
from gantk.engine.scoring import PeriodicEvaluation, lower_is_better, metric_names_for
from gantk.engine.setup import Setup
from gantk.distributed import world_size
from gantk.errors import GantkError, UsageError
from gantk.memory_budget import allocation_failures_reported
from gantk.protocols import Monitor, MonitorSetup, PreviewProcedure, Procedure
from gantk.registry import Registry, get_registry

GENERATOR_FILE = "generator.safetensors"
TRANSLATOR_FILE = "translator.safetensors"
#: the record names of what a run exports, in order of preference (gantk.Procedure.exports)
EXPORTED_KINDS = ("generator", "translator")
COMPONENTS_FILE = "components.json"


class TrainingInterrupted(GantkError):
    """Ctrl-C or SIGTERM: the state was saved; exit code 130."""

    exit_code = 130


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    seconds: float
    exported: Path | None
    metrics: dict[str, Any]
    steps_per_s: float
    precision: str
    time_limit_reached: bool = False  # --time-limit ended the run before --steps


class _StopRequest:
    """Turns the first SIGINT/SIGTERM into a flag the loop checks between steps."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopRequest":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class Trainer:
    """Builds a run from its config and trains it (``resume=True`` continues from its last checkpoint)."""

    def __init__(self, config: TrainConfig, run_dir: Path, *, registry: Registry | None = None,
                 resume: bool = False, show_progress: bool = True) -> None:
        self.config, self.run_dir, self.show_progress = config, Path(run_dir), show_progress
        self.main = is_main_process()
        self.lock: RunLock | None = None
        self._hold_run_dir()
        try:
            if self.main and not resume and not is_unused(self.run_dir):
                raise already_exists(self.run_dir)
            self._build(registry, resume)
        except BaseException:
            self._let_go_of_run_dir()
            raise

    def _hold_run_dir(self) -> None:
        """Lock the run directory for this process (rank 0 only: the other ranks write nothing)."""
        if self.main and (self.lock is None or not self.lock.held):
            self.lock = RunLock.acquire(self.run_dir)

    def _let_go_of_run_dir(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def _build(self, registry: Registry | None, resume: bool) -> None:
        """Everything the run needs: data, the procedure and its networks, EMA, fixed noise, evaluation, monitors."""
        config = self.config
        torch.manual_seed(config.seed)  # the same on every rank: one shared random stream (gantk.distributed)
        self.device = rank_device(resolve_device(config.device))
        self._owns_process_group = launched_by_torchrun() and not torch.distributed.is_initialized()
        join_process_group(self.device)
        registry = registry or get_registry()
        check_names(config, registry)
        self.dataset = build_training_data(config, registry)
        self.spec = self.dataset.spec
        self.precision = PrecisionPolicy.resolve(config.precision, self.device, self.spec.is_image)
        if self.device.type == "cpu":
            keep_freed_memory()
        self.threads = ThreadShare(config.thread_count)
        self.procedure = self._build_procedure(registry)
        self.records = self.procedure.exports()
        # the module users take away: a generator, else a translator (gantk.Procedure.exports)
        self.exported = next((name for name in EXPORTED_KINDS if name in self.records), None)
        self.model: torch.nn.Module | None = self.procedure.modules()[self.exported] if self.exported else None
        self.generator = self.model if self.exported == "generator" else None
        self.ema = EMA(self.model, config.ema, config.ema_warmup) if config.ema and self.model is not None else None
        self.spread_check = SpreadCheck(config.ema) if self.ema is not None and self.generator is not None else None
        self.step = 0
        self.last_checkpoint: Path | None = None  # the newest one known to be good: restored from, or written
        if resume:
            self._restore()
        same_on_every_rank(self._modules().values())
        self.schedules = schedules_at(self.procedure.optimizers(), config.lr_schedule, config.steps, self.step)
        if config.compile:  # after the EMA copy was taken: it stays an uncompiled module
            for module in self.procedure.modules().values():
                module.compile()
        # Fixed noise for the sample pictures; a conditional generator gets one row per class.
        self.grid_row: int | None = None
        self.fixed_labels = None
        count = config.num_samples
        if self.generator is not None and self.generator.conditional:
            self.grid_row = max(1, config.num_samples // self.spec.num_classes)
            count = self.grid_row * self.spec.num_classes
            self.fixed_labels = torch.arange(self.spec.num_classes, device=self.device).repeat_interleave(self.grid_row)
        noise = torch.Generator().manual_seed(config.seed)
        self.fixed_z = torch.randn(count, self.generator.z_dim, generator=noise).to(self.device) \
            if self.generator is not None else None
        self.evaluation: PeriodicEvaluation | None = None
        self.last_evaluation: dict[str, float] = {}
        if config.eval_every and self.generator is None:
            raise UsageError(f"--eval-every scores a generator, but the procedure '{config.procedure}' exports none.")
        if config.eval_every and self.main:
            names = metric_names_for(config.eval_metrics, self.generator.conditional, registry)
            self.evaluation = PeriodicEvaluation(names, self.dataset, self.device, registry)
        self.best: BestGeneratorExport | None = None
        keep_best = parse_keep_best(config.keep_best)
        if keep_best and not config.eval_every:
            raise UsageError(f"--keep-best {config.keep_best} picks the best evaluation, but no evaluation runs: add "
                             "--eval-every N (and --eval-metrics naming the metric).")
        if keep_best and self.main:
            key, lower = keep_best
            if lower is None:  # the direction the metrics declare for this value (larger is better otherwise)
                lower = key in lower_is_better(self.evaluation.metrics)
            self.best = BestGeneratorExport(key, lower, self.run_dir, lambda path, extra: self.export(path, extra))
        self.previews = isinstance(self.procedure, PreviewProcedure) and self.model is not None
        pictured = self.generator is not None or self.previews
        self.monitors = self._build_monitors(registry) if self.main and pictured else []

    def _build_monitors(self, registry: Registry) -> list[Monitor]:
        """Every installed monitor that applies to this run (its factory returns None where it does not)."""
        if self.previews:  # the procedure's own pictures (translations), not samples of a generator
            setup = MonitorSetup(self.spec, self.dataset, self.run_dir, self.procedure.preview_row, previews=True)
        else:
            setup = MonitorSetup(self.spec, self.dataset, self.run_dir, self.grid_row)
        built = (entry.create(setup) for entry in registry.list("monitor"))
        return [monitor for monitor in built if monitor is not None]

    def _build_procedure(self, registry: Registry) -> Procedure:
        """The ``--procedure`` plugin, built from this run's setup (``Entry.create`` checks it against the protocol)."""
        setup = Setup(self.config, registry, self.dataset, self.precision)
        return registry.get("procedure", self.config.procedure).create(setup, **self.config.procedure_options)

    # ----------------------------------------------------------------- state
    def _modules(self) -> dict[str, torch.nn.Module]:
        modules = dict(self.procedure.modules())
        if self.ema is not None:
            modules["ema"] = self.ema.model
        return modules

    def _extra_state(self) -> dict[str, Any]:
        rng = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        extra = {"step": self.step, "rng": rng, "procedure": self.procedure.state(), "world_size": world_size()}
        if self.ema is not None:
            extra["ema_updates"] = self.ema.updates  # t of the warm-up
        return extra

    def _restore(self) -> None:
        """Continue from the newest checkpoint that verifies and restores completely; cut metrics.jsonl to it."""
        if self.main:
            remove_partial_files(self.run_dir)
        wait_for_every_rank()  # the other ranks read the checkpoints once rank 0 has tidied them
        checkpoint = restore_newest(self.run_dir, self._restore_from)
        if checkpoint is None:
            raise GantkError(f"Cannot resume '{self.run_dir}': {why_none_usable(self.run_dir)}. Start a new run "
                             "instead (or restore the run's checkpoints from a backup).")
        self.last_checkpoint = checkpoint.path
        if self.step >= self.config.steps:
            raise UsageError(f"The run '{self.run_dir}' is already at step {self.step}; give --steps larger than "
                             f"{self.step} to train it further.")
        if self.main:
            cut_metrics(self.run_dir / "metrics.jsonl", self.step)

    def _check_config_matches(self, checkpoint: Checkpoint) -> None:
        """Refuse a config.json whose non-resumable fields differ from the config saved with the checkpoint."""
        if checkpoint.config is None:  # written before checkpoints held their config
            return
        current = self.config.to_json_dict()
        renamed = names_on_resume(checkpoint.config, current)  # 'gantk:mlp' now, 'mlp' then: the same component
        differing = sorted(name for name, saved in checkpoint.config.items()
                           if name in current and name not in RESUMABLE | set(renamed) and current[name] != saved)
        if differing:
            details = "; ".join(f"{name}: {checkpoint.config[name]!r} in the checkpoint, {current[name]!r} now"
                                for name in differing)
            raise UsageError(f"The configuration of '{self.run_dir}' (config.json) no longer matches its checkpoint "
                             f"{checkpoint.path.name} in {', '.join(differing)} ({details}). A resumed run keeps "
                             "its configuration: undo the edit of config.json, or start a new run with the new "
                             "settings.")

    def _restore_from(self, checkpoint: Checkpoint) -> None:
        """Restore every part of the run's state from ``checkpoint`` (raises if any part does not fit)."""
        self._check_config_matches(checkpoint)
        for name, module in self._modules().items():
            checkpoint.restore_module(name, module)
        for name, optimizer in self.procedure.optimizers().items():
            checkpoint.restore_optimizer(name, optimizer)
        extra = checkpoint.extra()
        torch.set_rng_state(extra["rng"]["cpu"])
        if "cuda" in extra["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(extra["rng"]["cuda"], self.device)
        state = extra.get("procedure", {})
        if "batches" in extra:  # written before procedures were plugins: the batch order sat beside their state
            state = {**state, "batches": extra["batches"]}
        self.procedure.load_state(state)
        self.step = int(extra["step"])
        if self.ema is not None:  # one EMA update per step: a checkpoint written before the count was saved
            self.ema.updates = int(extra.get("ema_updates", self.step))

    def save_checkpoint(self) -> Path | None:
        if not self.main:
            return None
        for name, module in self._modules().items():
            tensors = [t for t in module.state_dict().values() if t.is_floating_point()]
            if tensors and not bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
                raise NonFiniteLossError(self.step, f"weights/{name}", float("nan"), self._kept_message())
        self.last_checkpoint = save_checkpoint(self.run_dir, self.step, self._modules(), self.procedure.optimizers(),
                                               self._extra_state(), self.config.keep_checkpoints,
                                               self.config.to_json_dict())
        return self.last_checkpoint

    def sample_generator(self) -> torch.nn.Module | None:
        """The generator pictures, metrics and the export use: the EMA copy when there is one."""
        return self.exported_model() if self.generator is not None else None

    def exported_model(self) -> torch.nn.Module | None:
        """The module the export writes (a generator or a translator): the EMA copy when there is one."""
        return self.ema.model if self.ema is not None else self.model

    @torch.no_grad()
    def watch_samples(self, log: MetricsLog) -> None:
        """Draw the fixed-noise samples (or the procedure's previews) and hand them to every monitor (pictures,
        diversity); log their values."""
        if not self.monitors:
            return
        with evaluating(self.exported_model()) as model:
            samples = self.procedure.preview(model) if self.previews else model(self.fixed_z, self.fixed_labels)
        for monitor in self.monitors:
            values = monitor(samples, self.step)
            if values:
                log.write(self.step, values)
        if log.writer is not None and self.spec.is_image:  # TensorBoard gets the grid samples/step_XXXXXX.png holds
            row = self.procedure.preview_row if self.previews else self.grid_row
            log.write_picture(self.step, "samples", sample_grid(samples, row))

    @torch.no_grad()
    def check_ema_spread(self, log: MetricsLog) -> None:
        """Log ``ema/spread_ratio`` and ``ema/mean_shift`` (the EMA generator's samples against the trained one's, from
        the same fixed noise, at most a few hundred spaced over the grid's classes); :class:`SpreadCheck` warns once."""
        if self.spread_check is None or not self.main:
            return
        rows = spread_indices(len(self.fixed_z))
        z = self.fixed_z[rows]
        labels = self.fixed_labels[rows] if self.fixed_labels is not None else None
        with evaluating(self.ema.model) as averaged, evaluating(self.generator) as trained:
            log.write(self.step, self.spread_check(averaged(z, labels), trained(z, labels), self.step))

    def evaluate(self, log: MetricsLog, progress: TrainingProgress) -> dict[str, float]:
        """Score the sampling generator with the --eval-metrics; log them as ``eval/<key>``. ``progress`` shows a
        status line, then the values, and leaves the time out of steps/s (as ``log`` does)."""
        started = time.perf_counter()
        status = f"evaluating {as_typed(', '.join(self.evaluation.metrics))} at step {self.step}"
        with progress.paused("evaluation", status):
            self.last_evaluation = self.evaluation(self.sample_generator())
            log.write(self.step, self.last_evaluation)
            if self.best is not None:
                self.best.update(self.step, self.last_evaluation)
            progress.note(self.last_evaluation)
        log.exclude(time.perf_counter() - started)
        return self.last_evaluation

    def _periodic_jobs(self) -> dict[str, int]:
        """What the loop does besides training, and every how many steps (and at the last step): the progress
        display times them apart and expects them in its ETA."""
        jobs = {"checkpoint": self.config.checkpoint_every}
        if self.monitors:
            jobs["samples"] = self.config.sample_every
        if self.evaluation is not None:
            jobs["evaluation"] = self.config.eval_every
        return jobs

    def export(self, path: Path | None = None, extra: dict | None = None) -> Path | None:
        """The exported module (EMA when on) as safetensors: ``generator.safetensors`` (or
        ``translator.safetensors``) unless ``path``."""
        if not self.main or self.model is None:
            return None
        extra = {"ema": self.ema is not None, "step": self.step, "dataset": self.config.dataset, **(extra or {})}
        if self.exported == "translator":
            return export_translator(path or self.run_dir / TRANSLATOR_FILE, self.exported_model(),
                                     self.records["translator"], self.spec, extra=extra)
        return export_generator(path or self.run_dir / GENERATOR_FILE, self.exported_model(),
                                self.records["generator"], self.spec, extra=extra)

    def _save_components(self) -> None:
        """``components.json``: the data spec and how to rebuild what the procedure exports (for 'gantk export')."""
        record = {"spec": self.spec.to_dict(), **{name: dataclasses.asdict(r) for name, r in self.records.items()},
                  "ema": self.ema is not None, "domains": list(self.dataset.domains)}
        write_json(self.run_dir / COMPONENTS_FILE, record)

    def _kept_message(self) -> str:
        if self.last_checkpoint is None:
            return "No checkpoint had been written yet."
        return f"The last good checkpoint, {self.last_checkpoint}, is kept."

    # ------------------------------------------------------------------ loop
    def _agreed(self, *flags: bool) -> tuple[bool, ...]:
        """Flags that end the loop after this step (Ctrl-C, the time limit): any rank's, agreed by every rank at
        log steps under torchrun (a flag raised between log steps waits for the next one)."""
        if world_size() == 1:
            return flags
        if self.step % self.config.log_every:
            return (False,) * len(flags)
        raised = mean_over_ranks(torch.tensor([float(flag) for flag in flags], device=self.device))
        return tuple(bool(value > 0) for value in raised.tolist())

    def train(self) -> TrainResult:
        """Train to ``config.steps``; the run directory stays locked until this returns."""
        self._hold_run_dir()
        try:
            result = self._train()
        finally:
            self.threads.restore()
            self._let_go_of_run_dir()
        if self._owns_process_group:
            leave_process_group()
        return result

    def _train(self) -> TrainResult:
        config, started = self.config, time.perf_counter()
        log = MetricsLog(self.run_dir / "metrics.jsonl" if self.main else None,
                         self.run_dir / "tensorboard" if self.main and config.tensorboard else None)
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            config.save(self.run_dir / "config.json")
            self._save_components()
        progress = TrainingProgress(config.steps, self.step, enabled=self.show_progress and self.main,
                                    periodic=self._periodic_jobs())
        for module in self.procedure.modules().values():
            module.train()
        first_step = self.step
        deadline = started + parse_duration(config.time_limit, "--time-limit") if config.time_limit else math.inf
        try:
            if self.evaluation is not None and self.step == 0:  # a baseline, and a check before any training time
                self.evaluate(log, progress)
            with _StopRequest() as stop, allocation_failures_reported("Training", TRAINING_FIX):
                while self.step < config.steps:
                    values = self.procedure.run(self.step + 1)
                    self.step += 1
                    for schedule in self.schedules:
                        schedule.step()
                    self.threads.poll()
                    if self.ema is not None:
                        self.ema.update()
                    log.add(self.step, values)
                    progress.advance(self.step)
                    # a Ctrl-C arriving later in this step waits; the time limit makes this step the last
                    stopping, out_of_time = self._agreed(stop.requested, time.perf_counter() >= deadline)
                    last = self.step == config.steps or out_of_time
                    checkpoint_due = self.step % config.checkpoint_every == 0 or last or stopping
                    if self.step % config.log_every == 0 or checkpoint_due:
                        progress.report(self.step, log.flush(kept=self._kept_message()))
                    if self.step % config.sample_every == 0 or last:
                        with progress.paused("samples"):
                            self.watch_samples(log)
                            self.check_ema_spread(log)
                    if self.evaluation is not None and (self.step % config.eval_every == 0 or last):
                        self.evaluate(log, progress)
                    if checkpoint_due:
                        with progress.paused("checkpoint"):
                            self.save_checkpoint()
                    if stopping:
                        raise TrainingInterrupted(
                            f"Interrupted at step {self.step}; the run was saved to {self.run_dir}. Continue it with "
                            f"'gantk train --resume {self.run_dir}'.")
                    if last:
                        break
        finally:
            progress.close()
        exported = self.export()
        seconds = time.perf_counter() - started
        rate = (self.step - first_step) / max(seconds, 1e-9)
        if self.main:
            summary = {"steps": self.step, "seconds": seconds, "steps_per_s": rate,
                       "precision": self.precision.name, "device": str(self.device),
                       "time_limit_reached": self.step < config.steps,
                       **self.threads.summary(), **self.last_evaluation}
            write_json(self.run_dir / "summary.json", summary)
            point_latest(self.run_dir)  # only a run that finished becomes runs/latest
        return TrainResult(self.run_dir, self.step, seconds, exported, log.last, rate, self.precision.name,
                           time_limit_reached=self.step < config.steps)
