"""Who labels the queried samples: the dataset's own labels, or a person (the app's labelling
screen, or a CSV through `fvtui labels`). The engine asks one `Oracle` and knows no more."""

from ._base import LabelRequest, LabelsPending, Oracle
from .book import LabelBook
from .dataset import DatasetOracle
from .human import HumanOracle
from .resolve import oracle_for, resolve_oracle

__all__ = ["DatasetOracle", "HumanOracle", "LabelBook", "LabelRequest", "LabelsPending", "Oracle", "oracle_for",
           "resolve_oracle"]
