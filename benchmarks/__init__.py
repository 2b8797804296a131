"""Benchmarks for tinygrad_rnn: timing harness (``harness``) and hand-written
NumPy / PyTorch reference training steps (``baselines``).

This package deliberately imports nothing heavy at import time so that
``benchmarks.harness.pin_threads()`` can run before numpy / torch are loaded.
"""
