"""Layers, losses and utilities in the shape of ``torch.nn``."""
from .module import Module, ModuleList, Parameter, Sequential
