"""``--keep-best VALUE[:min|max]``: export the generator each time an evaluation value improves.

:class:`BestGeneratorExport` follows one evaluation value (``--keep-best fid`` or ``accuracy:max``)
and, each time it improves, exports the sampling generator to ``best_generator.safetensors``
(atomically) and writes ``best.json`` with the step and the value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from gantk.engine.atomic_files import write_json
from gantk.errors import UsageError

#: Metrics whose smaller values are better; every other metric is taken as larger-is-better.
LOWER_IS_BETTER = frozenset({"fid", "kid", "ifid", "reverse_kl"})


def parse_keep_best(value: str | None) -> tuple[str, bool | None] | None:
    """``"fid"`` → ("fid", None): the metric's declared direction; ``"accuracy:max"`` → ("accuracy", False)
    (lower is better: False); None → None."""
    if not value:
        return None
    key, _, direction = value.partition(":")
    key = key.strip().removeprefix("eval/")
    if direction not in ("", "min", "max") or not key:
        raise UsageError(f"--keep-best takes a metric value name, optionally with :min or :max (e.g. fid, "
                         f"accuracy:max), got '{value}'.")
    return key, (direction == "min") if direction else None


class BestGeneratorExport:
    """Exports the generator whenever the followed evaluation value improves."""

    def __init__(self, key: str, lower_is_better: bool, run_dir: Path, export: Callable[[Path, dict], Path]) -> None:
        self.key, self.lower_is_better, self.run_dir, self.export = key, lower_is_better, run_dir, export
        self.best: float | None = None
        previous = run_dir / "best.json"
        if previous.is_file():  # a resumed run keeps the best it already had
            record = json.loads(previous.read_text())
            if record.get("metric") == key and record.get("lower_is_better") == lower_is_better:
                self.best = float(record["value"])

    def update(self, step: int, evaluation: dict[str, float]) -> bool:
        """Record ``evaluation`` (``eval/<key>`` values) at ``step``; True when it was a new best and was saved."""
        name = f"eval/{self.key}"
        if name not in evaluation:
            raise UsageError(f"--keep-best follows '{self.key}', but the evaluation gave only "
                             f"{', '.join(k.removeprefix('eval/') for k in evaluation) or 'nothing'}. Name one of "
                             "those, or add the metric that gives it to --eval-metrics.")
        value = evaluation[name]
        better = self.best is None or (value < self.best if self.lower_is_better else value > self.best)
        if not better:
            return False
        self.best = value
        self.export(self.run_dir / "best_generator.safetensors", {"best_step": step, "best_" + self.key: value})
        record = {"step": step, "metric": self.key, "value": value, "lower_is_better": self.lower_is_better}
        write_json(self.run_dir / "best.json", record)  # read back on --resume
        return True
