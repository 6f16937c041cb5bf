"""Conditioning plugins: how class labels enter G and D (see gantk.conditioning)."""
