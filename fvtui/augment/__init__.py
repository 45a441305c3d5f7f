"""Synthetic-sample generators: each module registers one function AugmentContext -> AugmentResult."""

from ..registry import import_submodules
from ._base import AUGMENTATIONS, AugmentContext, AugmentResult, Augmentation, verifies

import_submodules(__name__, __path__)

__all__ = ["AUGMENTATIONS", "AugmentContext", "AugmentResult", "Augmentation", "verifies"]
