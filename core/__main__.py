"""``python -m gantk …`` runs the ``gantk`` command (this is how ``torchrun … -m gantk train …`` starts each rank)."""

from gantk.cli.launcher import main

main()
