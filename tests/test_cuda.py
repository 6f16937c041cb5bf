"""The GPU path: CUDA autocast in bf16 and fp16 (with its loss scaler), --compile and --accumulate on a GPU.

These run only where PyTorch sees a CUDA device (benchmarks/gpu.sh measures the same settings);
on CPU-only machines they are skipped.
"""

from __future__ import annotations

import math

import pytest
import torch

from engine_helpers import loss_records, tiny_config
from gantk.engine.trainer import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def train_on_cuda(tmp_path, **options) -> Trainer:
    trainer = Trainer(tiny_config(device="cuda", steps=4, log_every=1, checkpoint_every=2, **options), tmp_path / "run",
                      show_progress=False)
    trainer.train()
    return trainer


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_trains_on_cuda(tmp_path, precision):
    trainer = train_on_cuda(tmp_path, precision=precision)
    assert trainer.precision.name == precision and trainer.device.type == "cuda"
    records = loss_records(tmp_path / "run")
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(math.isfinite(value) for r in records for key, value in r.items() if "/" in key)


def test_fp16_keeps_its_loss_scale_in_the_checkpoint(tmp_path):
    first = train_on_cuda(tmp_path, precision="fp16")
    scales = first.procedure.d_scaler.get_scale(), first.procedure.g_scaler.get_scale()
    resumed = Trainer(tiny_config(device="cuda", precision="fp16", steps=6, log_every=1, checkpoint_every=2),
                      tmp_path / "run", resume=True, show_progress=False)
    assert (resumed.procedure.d_scaler.get_scale(), resumed.procedure.g_scaler.get_scale()) == scales
    resumed.train()
    assert resumed.step == 6


def test_compile_and_accumulate_on_cuda(tmp_path):
    trainer = train_on_cuda(tmp_path, precision="bf16", compile=True, accumulate=2)
    assert (tmp_path / "run" / "generator.safetensors").is_file()
    assert all(math.isfinite(r["d/total"]) for r in loss_records(tmp_path / "run"))
    assert trainer.step == 4
