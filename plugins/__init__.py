"""Built-in plugins. Each module is its own entry point in the ``gantk`` group (see pyproject.toml)."""
