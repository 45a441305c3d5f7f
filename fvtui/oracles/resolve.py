"""Which oracle a session has: --oracle, or for auto a person exactly when the images are unlabelled."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UserError

if TYPE_CHECKING:
    from ..data import Dataset


def resolve_oracle(config, dataset: "Dataset") -> str:
    """'dataset' or 'human'; a UserError when the dataset cannot answer (unlabelled images)."""
    if config.oracle == "auto":
        return "human" if dataset.unlabelled else "dataset"
    if config.oracle == "dataset" and dataset.unlabelled:
        raise UserError("--oracle dataset: these images have no labels of their own (no class folders); "
                        "use --oracle human (the default for unlabelled images)")
    return config.oracle


def oracle_for(session, dataset: "Dataset", *, wait: bool):
    """The session's oracle; a person's waits for the front end's answers (`wait`) or stops with
    LabelsPending when no one is there to type them."""
    from .dataset import DatasetOracle
    from .human import HumanOracle

    if resolve_oracle(session.config, dataset) == "dataset":
        return DatasetOracle(dataset)
    return HumanOracle(session.label_journal(), dataset.num_classes, session.name, wait=wait)
