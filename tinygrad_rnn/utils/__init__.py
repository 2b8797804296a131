"""Utilities in the shape of ``torch.utils``: ``data`` (datasets, batching with ``DataLoader``)."""
from . import data

__all__ = ["data"]
