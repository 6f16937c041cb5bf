"""CPU tuning: the engine's speed settings must not change what a model computes or saves."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from gantk.accel.bf16_convolutions import tune_bf16_cpu_convolutions
from gantk.engine.memory import KEEP_FREED_MEMORY_ENV
from gantk.engine.precision import training_memory_format
from gantk.engine.trainer import Trainer

from engine_helpers import tiny_config


def conv_stack() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), nn.LeakyReLU(0.2),
                         nn.ConvTranspose2d(8, 6, 4, 2, 1), nn.ConvTranspose2d(6, 6, 3, bias=False))


def test_separate_bias_computes_the_same_outputs_and_gradients():
    stock, tuned = conv_stack(), conv_stack()
    assert tune_bf16_cpu_convolutions(tuned) == 2  # a bias-free transposed conv with 6 outputs: nothing to change
    assert tuned.state_dict().keys() == stock.state_dict().keys()
    x = torch.randn(4, 3, 8, 8)
    torch.testing.assert_close(tuned(x), stock(x), rtol=1e-6, atol=1e-6)
    (tuned(x) ** 2).sum().backward()
    (stock(x) ** 2).sum().backward()
    for (name, a), b in zip(tuned.named_parameters(), stock.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-5, msg=name)
    # ConvTranspose2d's output_size argument still picks the output padding
    y = torch.randn(2, 8, 8, 8)
    assert tuned[2](y, output_size=[17, 17]).shape == stock[2](y, output_size=[17, 17]).shape == (2, 6, 17, 17)


def test_separate_bias_under_bf16_keeps_bf16_activations_and_survives_a_deep_copy():
    tuned = conv_stack()
    tune_bf16_cpu_convolutions(tuned)
    copied = copy.deepcopy(tuned)  # the EMA generator is a deep copy
    assert copied[0].forward.__self__ is copied[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert copied(torch.randn(2, 3, 8, 8)).dtype is torch.bfloat16  # an fp32 bias must not promote


def test_layers_with_a_forward_of_their_own_are_left_alone():
    class Doubling(nn.Conv2d):
        def forward(self, x):
            return 2 * super().forward(x)

    model = nn.Sequential(Doubling(3, 3, 1))
    assert tune_bf16_cpu_convolutions(model) == 0
    assert "forward" not in vars(model[0])


def test_memory_format_choice():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert training_memory_format(cpu, None, True) is torch.channels_last
    assert training_memory_format(cpu, torch.bfloat16, False) is torch.preserve_format
    assert training_memory_format(cuda, None, True) is torch.preserve_format
    assert training_memory_format(cuda, torch.bfloat16, True) is torch.channels_last


FAULTS_PER_STEP = """
import resource, sys, torch
from gantk.engine.memory import keep_freed_memory
print(keep_freed_memory())
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(30):  # the heap settles after a few rounds (worker threads allocate too)
    torch.ones(16, 1024, 1024)  # 64 MiB, allocated and freed
before = faults()
for _ in range(10):
    torch.ones(16, 1024, 1024)
print((faults() - before) // 10)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_freed_memory_is_reused_instead_of_faulted_back_in():
    def run(opt_out: str) -> tuple[str, int]:
        env = {**os.environ, KEEP_FREED_MEMORY_ENV: opt_out}
        out = subprocess.run([sys.executable, "-c", FAULTS_PER_STEP], capture_output=True, text=True, env=env,
                             check=True).stdout.split()
        return out[0], int(out[1])

    applied, kept_faults = run("1")
    opted_out, default_faults = run("0")
    assert (applied, opted_out) == ("True", "False")
    # a 64 MiB block is 16,384 pages: glibc's default maps and faults every one of them on each allocation
    assert default_faults > 10_000
    assert kept_faults < 1_000


def test_a_bf16_cpu_run_trains_its_convolutions_with_separate_bias(tmp_path):
    trainer = Trainer(tiny_config(steps=2, precision="bf16"), tmp_path / "run", show_progress=False)
    biased = [m for network in (trainer.generator, trainer.procedure.discriminator) for m in network.modules()
              if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.bias is not None]
    assert biased and all("forward" in vars(m) for m in biased)
    assert trainer.train().step == 2
    fp32 = Trainer(tiny_config(steps=2, precision="fp32"), tmp_path / "fp32", show_progress=False)
    assert not any("forward" in vars(m) for m in fp32.procedure.discriminator.modules())
