"""Packaging: everything else is in pyproject.toml.

``examples/`` stays at the top of the repository (so ``python examples/NAME.py``
works from a checkout) and is installed as the package ``tinygrad_rnn.examples``
(so ``tinygrad-rnn run NAME`` works from an installed wheel).
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["tinygrad_rnn", "tinygrad_rnn.*"]) + ["tinygrad_rnn.examples"],
    package_dir={"tinygrad_rnn.examples": "examples"},
)
