"""Fakes of outside services for tests (run in-process or as a separate process)."""
