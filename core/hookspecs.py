"""The hooks a gantk plugin can implement (pluggy project name ``"gantk"``).

A plugin is a module listed under the ``gantk`` entry-point group. It implements any of the
hooks below, each marked with ``@gantk.hookimpl``. The ten ``register_*`` hooks receive one
argument, ``register``, a callable with the signature::

    register(name, factory, *, summary="", aliases=())

- ``name``: the public name, matching ``[a-z0-9][a-z0-9_-]*`` (``+ * : =`` are reserved for the
  composition syntax, e.g. ``hinge+0.5*contrastive`` and ``package:name``).
- ``factory``: a callable that builds the component (see each hook for what it receives).
- ``summary``: one line shown by ``gantk list``; defaults to the first line of the factory's docstring.
- ``aliases``: extra names that resolve to the same factory.

Hooks return nothing: everything goes through ``register``, so new keyword arguments can be
added to it later without breaking existing plugins.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "gantk"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_generators(register):
    """Register generator architectures.

    :param register: ``register(name, factory, *, summary="", aliases=())``. The factory is
        called as ``factory(spec, **options)`` where ``spec`` is a :class:`gantk.DataSpec` and
        ``options`` are architecture options (``z_dim``, ``width``, ``conditioning`` ...). It returns
        an ``nn.Module`` with a ``z_dim`` attribute and ``forward(z, y=None) -> samples`` whose
        samples have shape ``(B, *spec.shape)``.
    :returns: nothing.
    """


@hookspec
def register_discriminators(register):
    """Register discriminator architectures.

    :param register: ``register(name, factory, *, summary="", aliases=())``. The factory is
        called as ``factory(spec, **options)`` and returns an ``nn.Module`` with a ``feature_dim``
        attribute whose ``forward(x, y=None)`` returns a :class:`gantk.DiscriminatorOutput`
        holding the adversarial ``logits`` (B,) and the penultimate ``features`` (B, F).
    :returns: nothing.
    """


@hookspec
def register_losses(register):
    """Register loss terms (adversarial losses and regularisers).

    :param register: ``register(name, factory, *, summary="", aliases=())``. The factory is
        called as ``factory(spec, **options)`` and returns a :class:`gantk.LossTerm`: an
        ``nn.Module`` (it may own parameters that train with the discriminator) with
        ``discriminator_loss(ctx)`` and ``generator_loss(ctx)``. Terms compose by name on the
        command line: ``hinge+0.5*r1``.
    :returns: nothing.
    """


@hookspec
def register_conditionings(register):
    """Register conditioning methods: how a class label enters the generator and discriminator.

    :param register: ``register(name, factory, *, summary="", aliases=())``. The factory is
        called as ``factory(spec)`` and returns a :class:`gantk.conditioning.Conditioning`, which
        architectures ask for the label-dependent layers they need (G's input and norms, D's input
        and output); a method that cannot condition a side raises a usage error naming what can.
    :returns: nothing.
    """


@hookspec
def register_datasets(register):
    """Register data sets.

    :param register: ``register(name, factory, *, summary="", aliases=())``. The factory is
        called as ``factory(*, data_root=None, image_size=None, download=False)`` (it must accept
        these three keywords; a data set that needs no files ignores ``data_root``) and returns a :class:`gantk.Dataset`: a :class:`gantk.DataSpec` plus the
        samples (and labels, if any) as tensors, or a ``torch.utils.data.Dataset`` for data too big
        for memory.
    :returns: nothing.
    """


@hookspec
def register_metrics(register):
    """Register evaluation metrics.

    :param register: ``register(name, factory, *, summary="", aliases=())``. The factory is
        called as ``factory(**options)`` and returns a metric, called as
        ``metric(generator, dataset, *, device="cpu") -> dict[str, float]`` with a generator already
        on ``device`` and a :class:`gantk.Dataset`; a metric that needs labels raises
        :class:`gantk.UsageError` for an unconditional generator or an unlabelled data set.
    :returns: nothing.
    """


@hookspec
def register_augmentations(register):
    """Register augmentations: differentiable transforms of everything the discriminator sees.

    :param register: ``register(name, factory, *, summary="", aliases=())``. The factory is
        called as ``factory(spec, **options)`` with the run's :class:`gantk.DataSpec` and the
        ``--augment NAME:KEY=VALUE,...`` options, and returns a :class:`gantk.Augmentation`: an
        ``nn.Module`` whose ``forward(x, *, real)`` is differentiable in ``x``; the procedure passes
        every discriminator input through it, real and fake, in both phases, and calls its
        ``observe(real_logits)`` after each discriminator update.
    :returns: nothing.
    """


@hookspec
def register_procedures(register):
    """Register training procedures: what one training step does with which networks.

    :param register: ``register(name, factory, *, summary="", aliases=())``. The factory is
        called as ``factory(setup, **options)`` with a :class:`gantk.TrainingSetup` (the run's
        config, data, device, precision and builders for networks, losses, optimizers and
        batches) and the ``--procedure-option`` values. It returns a :class:`gantk.Procedure`:
        it owns its modules and optimizers and says which generator is sampled and exported;
        the training loop owns counting, checkpoints, logging, precision, progress, EMA and resume.
    :returns: nothing.
    """


@hookspec
def register_monitors(register):
    """Register monitors: what watches a run's samples while it trains (pictures, mode-collapse warnings).

    :param register: ``register(name, factory, *, summary="", aliases=())``. The factory is
        called as ``factory(setup)`` with a :class:`gantk.protocols.MonitorSetup` (the data spec
        and set, the run directory, the picture layout) and returns a :class:`gantk.protocols.Monitor`,
        or None when it does not apply to this run. Every installed monitor runs in every run:
        each is called with the fixed-noise samples every ``--sample-every`` steps and returns
        values to log.
    :returns: nothing.
    """


@hookspec
def register_presets(register):
    """Register presets: named bundles of training choices that reproduce a paper or tutorial.

    :param register: ``register(name, factory, *, summary="", aliases=())``. The factory takes
        no arguments and returns a ``dict`` of training options (the same keys as the
        ``gantk train`` options, e.g. ``{"gen": "dcgan", "loss": "wgan+10*gp", "n_critic": 5}``).
        Options given explicitly on the command line override the preset.
    :returns: nothing.
    """


@hookspec
def register_commands(app):
    """Add commands to the ``gantk`` command line.

    :param app: the root ``typer.Typer`` application. Add commands with ``@app.command()``
        or sub-applications with ``app.add_typer(...)``. Use :class:`gantk.GantkError` for
        errors so that the CLI prints a one-paragraph message instead of a traceback.
    :returns: nothing.
    """
