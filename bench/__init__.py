"""Benchmarks. Run one with ``python -m bench NAME`` or all with ``python -m bench``."""
