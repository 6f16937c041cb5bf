"""Preset plugins: named bundles of training choices that reproduce a paper or tutorial."""
