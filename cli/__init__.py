"""The gantk command line (Typer). Parses, looks up by name, calls the core; no logic of its own."""
