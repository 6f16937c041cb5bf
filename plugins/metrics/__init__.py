"""Metric plugins: scores of a trained generator against a data set."""
