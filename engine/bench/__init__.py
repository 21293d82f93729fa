"""Benchmarks that print figures (``python -m engine.bench``); never timed tests."""
