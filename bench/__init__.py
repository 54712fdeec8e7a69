"""Benchmarks: run from the checkout as ``python -m bench.NAME --out FILE.json``."""
