"""Data set plugins."""
