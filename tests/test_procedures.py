"""Procedures are plugins: a toy procedure from a fake installed package trains, resumes exactly and exports."""

from __future__ import annotations

import pytest
import torch

import gantk
from gantk.engine.checkpoint import load_latest_checkpoint
from gantk.engine.sampling import draw
from gantk.engine.trainer import Trainer
from gantk.errors import GantkError, UsageError

from engine_helpers import tiny_config

#: A procedure with no discriminator: G learns to match the per-pixel mean and spread of real batches.
MOMENT_MATCHING = '''
import torch
import gantk


class MomentMatching:
    """Trains the generator alone to match each pixel's batch mean and standard deviation."""

    def __init__(self, setup, spread_weight=1.0):
        self.generator, self.record = setup.build_generator()
        self.optimizer = setup.generator_optimizer(self.generator.parameters())
        self.batches = setup.batches()
        self.device, self.autocast, self.spread_weight = setup.device, setup.autocast, float(spread_weight)

    def modules(self):
        return {"generator": self.generator}

    def optimizers(self):
        return {"generator": self.optimizer}

    def exports(self):
        return {"generator": self.record}

    def state(self):
        return {"batches": self.batches.state()}

    def load_state(self, state):
        self.batches.load_state(state["batches"])

    def run(self, step):
        real, _ = self.batches.next()
        z = torch.randn(real.shape[0], self.generator.z_dim, device=self.device)
        with self.autocast():
            fake = self.generator(z).flatten(1).float()
        real = real.flatten(1)
        mean_gap = (fake.mean(0) - real.mean(0)).square().mean()  # E_pixels (mu_fake - mu_real)^2
        spread_gap = (fake.std(0) - real.std(0)).square().mean()  # E_pixels (sigma_fake - sigma_real)^2
        loss = mean_gap + self.spread_weight * spread_gap
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"g/mean": mean_gap.detach(), "g/spread": spread_gap.detach(), "g/total": loss.detach()}


class NotAProcedure:
    def __init__(self, setup):
        pass


@gantk.hookimpl
def register_procedures(register):
    register("moments", MomentMatching)
    register("broken", NotAProcedure)
'''


@pytest.fixture
def toy_package(fake_package):
    fake_package("acme-procedures", {"acme_procedures": MOMENT_MATCHING}, {"moments": "acme_procedures"})


def weights(run_dir) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_latest_checkpoint(run_dir).tensors.items() if k.startswith(("module/", "optim/"))}


def test_register_procedures_toy_procedure_trains_resumes_exactly_and_exports(tmp_path, toy_package):
    moments = {"procedure": "moments", "procedure_options": {"spread_weight": 0.5}, "checkpoint_every": 4, "ema": 0.9}
    straight = Trainer(tiny_config(steps=8, **moments), tmp_path / "straight", show_progress=False)
    assert set(straight.procedure.modules()) == {"generator"}
    straight.train()
    Trainer(tiny_config(steps=4, **moments), tmp_path / "split", show_progress=False).train()
    resumed = Trainer(tiny_config(steps=8, **moments), tmp_path / "split", resume=True, show_progress=False)
    assert resumed.step == 4
    result = resumed.train()

    expected, actual = weights(tmp_path / "straight"), weights(tmp_path / "split")
    assert {"/".join(k.split("/")[:2]) for k in expected} == {"module/generator", "module/ema", "optim/generator"}
    assert expected.keys() == actual.keys()
    assert [k for k in expected if not torch.equal(expected[k], actual[k])] == []
    # the loop logged the procedure's own values and exported its generator (EMA weights) for loading by name
    assert {"g/mean", "g/spread", "g/total"} <= set(result.metrics)
    loaded = gantk.load_generator(result.exported)
    assert torch.equal(draw(loaded, 8, seed=3), draw(resumed.ema.model, 8, seed=3))
    assert (tmp_path / "split" / "samples").is_dir()


def test_unknown_procedure_is_a_usage_error_naming_the_installed_ones(tmp_path):
    with pytest.raises(UsageError, match="Unknown procedure 'gann'. Did you mean: gan"):
        Trainer(tiny_config(steps=1, procedure="gann"), tmp_path / "run", show_progress=False)


def test_a_procedure_that_breaks_the_protocol_is_named(tmp_path, toy_package):
    with pytest.raises(GantkError, match=r"acme-procedures:broken.*without modules, optimizers, run, state, "
                                         r"load_state, exports"):
        Trainer(tiny_config(steps=1, procedure="broken"), tmp_path / "run", show_progress=False)
