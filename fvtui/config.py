"""Typed settings: what a session is (fixed) and what a round runs with (may change between rounds)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import UserError

DATASETS = ("mnist", "fashionmnist", "cifar10", "demo")

# Protocol versions a session can record. 2 follows the authors' code (PROTOCOL.md, corrected
# 2026-12-01); 1 is what fvtui 0.1 ran, kept so that its sessions resume exactly as they began.
PROTOCOL = 2
LEGACY_PROTOCOL = 1
PROTOCOL_NAMES = {
    LEGACY_PROTOCOL: "fvtui 0.1's: initial samples in every training set, torch init, FGSM and FV starts of its own",
    PROTOCOL: "the authors' code: rounds train on queried samples only, Keras init, their FGSM grid and FV starts",
}
# What a session file without a "protocol" key ran with (fvtui 0.1).
_LEGACY_CONFIG = {"protocol": LEGACY_PROTOCOL, "train_initial": True, "init": "torch", "adam_eps": 1e-8}


@dataclass(frozen=True)
class RoundSettings:
    """The knobs a person may turn between rounds; every round records the ones it ran with."""

    strategy: str = "fvaal"  # the paper's own technique, so a new session shows the verifier at work
    augment: str = "fv"
    query_size: int = 50
    pool_size: int = 10_000
    advs_per_sample: int = 10  # k synthetic samples per queried sample
    eps_start: float = 0.06  # first L-inf radius of the fv search (fvaal/dfal: their attack's size + eps_step)
    eps_step: float = 0.05
    verify_timeout: float = 1800.0  # seconds per solver query: the authors' budget
    fv_points: str = "marabou"  # where fv's counterexample points come from (verify/region.py for 'lp')
    marabou_slice: str = "auto"  # or "off": no hand-over to branch and bound, so no point depends on the clock

    def validate(self) -> "RoundSettings":
        _check_scope(self, "round")
        if self.query_size > self.pool_size:
            raise UserError(f"query size {self.query_size} is larger than the pool size {self.pool_size}")
        return self

    def replace(self, **changes: Any) -> "RoundSettings":
        return dataclasses.replace(self, **changes).validate()


@dataclass(frozen=True)
class SessionConfig:
    """What stays fixed for a whole session (so that its rounds are comparable and replayable)."""

    dataset: str
    seed: int = 0
    rounds: int = 20  # target; may be raised or lowered between rounds
    init_size: int = 50
    hidden: tuple[int, ...] = (32,)
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    settings: RoundSettings = field(default_factory=RoundSettings)  # what round 1 starts with
    train_initial: bool = False  # the protocol trains rounds on queried samples only; own data wants its first labels
    init: str = "glorot"  # Keras' Dense default, as the authors' network; "torch" is nn.Linear's
    adam_eps: float = 1e-7  # Keras' Adam default
    test: str = ""  # own data: the test image folder ("" = test/ beside train/, else a held-out sixth)
    image_size: str = ""  # own data: "HxW" to resize to ("" = the images' common size)
    channels: str = "auto"  # own data: "1", "3" or "auto"
    oracle: str = "auto"  # who labels: "dataset", "human" or "auto" (human for unlabelled images)
    protocol: int = PROTOCOL

    @property
    def legacy(self) -> bool:
        return self.protocol == LEGACY_PROTOCOL

    def validate(self) -> "SessionConfig":
        from .own_data import is_own_data

        if self.dataset not in DATASETS and not is_own_data(self.dataset):
            raise UserError(f"unknown dataset '{self.dataset}'; choose one of: {', '.join(DATASETS)}, or give the "
                            "path of an image folder or .npz file")
        _check_scope(self, "session")
        given = [flag for flag, value, default in (("--test", self.test, ""), ("--image-size", self.image_size, ""),
                                                   ("--channels", self.channels, "auto")) if value != default]
        if given and not is_own_data(self.dataset):  # they were ignored without a word
            raise UserError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for your own images; "
                            f"'{self.dataset}' is a built-in dataset")
        if self.protocol not in (LEGACY_PROTOCOL, PROTOCOL):
            raise UserError(f"unknown protocol {self.protocol}; this fvtui runs protocols {LEGACY_PROTOCOL} "
                            f"and {PROTOCOL}")
        self.settings.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SessionConfig":
        data = dict(data)
        data = with_protocol(data)
        data["hidden"] = tuple(data["hidden"])
        data["settings"] = RoundSettings(**data["settings"])
        return cls(**data)


def with_protocol(flat: dict[str, Any]) -> dict[str, Any]:
    """Configuration keys written before protocols were recorded (fvtui 0.1) get that release's values."""
    return flat if "protocol" in flat else {**flat, **_LEGACY_CONFIG}


def _check_scope(values: Any, scope: str) -> None:
    from .schema import scoped

    for setting in scoped(scope):
        setting.check(getattr(values, setting.name))
