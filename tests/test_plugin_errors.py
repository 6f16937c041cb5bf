"""A bug in a plugin is reported against that plugin: kind, name, package and version, not "a bug in gantk"."""

from __future__ import annotations

import pytest

import gantk.engine.trainer
from gantk.blame import find_culprit
from gantk.cli.errors import bug_message
from gantk.protocols import DiscriminatorOutput, GeneratorPhase
from gantk.registry import Registry

from engine_helpers import tiny_cli_args

BROKEN_LOSS = """
import gantk
from gantk.protocols import LossTerm


class BrokenLoss(LossTerm):
    \"\"\"Its G loss reads an attribute the discriminator output does not have.\"\"\"

    def generator_loss(self, step):
        return step.fake_out.no_such_field.mean()


@gantk.hookimpl
def register_losses(register):
    register("broken", lambda spec: BrokenLoss())
"""

BROKEN_GENERATOR = """
import gantk


def build_refusing_generator(spec, **options):
    raise ValueError("this generator cannot be built")


@gantk.hookimpl
def register_generators(register):
    register("refusing", build_refusing_generator)
"""

# One module providing a generator and a discriminator; the discriminator fails in its forward pass,
# which runs in a helper module of the same package.
HELPERS = """
def features(x):
    return x.flatten(1).no_such_method()
"""

TWO_NETWORKS = """
import torch
from torch import nn

import gantk
from acme_nets_helpers import features


class TinyGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.z_dim = 4
        self.net = nn.Linear(4, 64)

    def forward(self, z, y=None):
        return self.net(z)


class FailingDiscriminator(nn.Module):
    def forward(self, x, y=None):
        return features(x)


def build_generator(spec) -> TinyGenerator:
    return TinyGenerator()


def build_discriminator(spec) -> FailingDiscriminator:
    return FailingDiscriminator()


@gantk.hookimpl
def register_generators(register):
    register("tiny", build_generator)


@gantk.hookimpl
def register_discriminators(register):
    register("tiny", build_discriminator)
"""


def error_line(result) -> str:
    """The one paragraph the CLI printed (CliRunner mixes stderr into output)."""
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    return line


def test_an_exception_in_a_loss_term_names_the_loss_and_its_package(cli, fake_package, tmp_path):
    fake_package("acme-gan", {"acme_gan_losses": BROKEN_LOSS}, {"losses": "acme_gan_losses"}, version="1.2.3")
    result = cli(*tiny_cli_args("--steps", "2", "--loss", "ns+broken", "--runs-dir", str(tmp_path)))
    assert result.exit_code == 1
    message = error_line(result)
    assert "loss 'broken'" in message and "acme-gan 1.2.3" in message
    assert "AttributeError" in message and "no_such_field" in message
    assert "This is a bug in that plugin: report it to acme-gan" in message and "--debug" in message
    assert "bug in gantk" not in message and "Traceback" not in result.output


def test_an_exception_in_a_factory_names_the_generator_and_its_package(cli, fake_package, tmp_path):
    fake_package("acme-gan", {"acme_gan_generators": BROKEN_GENERATOR}, {"generators": "acme_gan_generators"})
    result = cli(*tiny_cli_args("--steps", "1", "--runs-dir", str(tmp_path)), "--gen", "refusing", "--disc", "dcgan")
    assert result.exit_code == 1, result.output
    message = error_line(result)
    assert "generator 'refusing'" in message and "acme-gan 1.2.3" in message
    assert "ValueError: this generator cannot be built" in message
    assert "report it to acme-gan" in message and "bug in gantk" not in message


def test_an_exception_in_gantk_itself_is_still_an_internal_error_in_gantk(cli, monkeypatch, tmp_path):
    def broken_check(*args, **kwargs):
        raise RuntimeError("an engine bug")

    monkeypatch.setattr(gantk.engine.trainer, "check_names", broken_check)
    result = cli(*tiny_cli_args("--steps", "1", "--runs-dir", str(tmp_path)))
    assert result.exit_code == 1
    message = error_line(result)
    assert message.startswith("Error: internal error: RuntimeError: an engine bug.")
    assert "This is a bug in gantk;" in message and "plugin" not in message


def test_debug_lets_the_plugin_exception_through(cli, fake_package, tmp_path):
    fake_package("acme-gan", {"acme_gan_losses": BROKEN_LOSS}, {"losses": "acme_gan_losses"})
    result = cli("--debug", *tiny_cli_args("--steps", "2", "--loss", "ns+broken", "--runs-dir", str(tmp_path)))
    assert result.exit_code == 1
    assert isinstance(result.exception, AttributeError) and "no_such_field" in str(result.exception)
    assert "Error:" not in result.output


def test_a_failure_in_a_helper_module_is_blamed_on_the_component_whose_method_called_it(fake_package):
    """Of a module's two entries, the one whose object's method was running is named."""
    fake_package("acme-nets", {"acme_nets": TWO_NETWORKS, "acme_nets_helpers": HELPERS}, {"nets": "acme_nets"},
                 version="0.4.0")
    import torch

    from gantk.protocols import DataSpec

    registry = Registry.discover()
    discriminator = registry.create("discriminator", "tiny", DataSpec((1, 8, 8)))
    with pytest.raises(AttributeError) as info:
        discriminator(torch.zeros(2, 1, 8, 8))
    culprit = find_culprit(registry, info.value.__traceback__)
    assert (culprit.entry.kind, culprit.entry.name, culprit.source.package) == ("discriminator", "tiny", "acme-nets")
    message = bug_message(info.value, culprit)
    assert message.startswith("the discriminator 'tiny' (acme_nets) from plugin package acme-nets 0.4.0 raised "
                              "AttributeError: ")


def test_a_bug_in_a_builtin_plugin_is_reported_to_gantk():
    registry = Registry.discover()
    loss = registry.create("loss", "hinge", None)
    broken_logits = DiscriminatorOutput("not a tensor", None)  # hinge's own G function fails on it
    with pytest.raises(AttributeError) as info:
        loss.generator_loss(GeneratorPhase(None, None, broken_logits, None))
    culprit = find_culprit(registry, info.value.__traceback__)
    assert (culprit.entry.kind, culprit.entry.name, culprit.source.package) == ("loss", "hinge", "gantk")
    assert culprit.module == "gantk.plugins.losses.hinge"
