"""Query strategies: each module registers one function (context, n) -> Selection."""

from ..registry import import_submodules
from ._base import STRATEGIES, Selection, SelectionContext, Strategy

import_submodules(__name__, __path__)

__all__ = ["STRATEGIES", "Selection", "SelectionContext", "Strategy"]
