"""gantk-example-plugin: a third-party gantk plugin package.

Each plugin module below is listed on its own under the ``gantk`` entry-point group (see
``pyproject.toml``), so gantk imports it without being told about this package:

- :mod:`gantk_example_plugin.resmlp`: the generator ``resmlp``, a residual MLP;
- :mod:`gantk_example_plugin.relativistic`: the loss ``rsgan``, the relativistic standard GAN loss;
- :mod:`gantk_example_plugin.commands`: the command ``gantk example-info``.

Importing this package itself imports nothing heavy; torch loads with the plugin modules.
"""

__version__ = "0.1.0"
