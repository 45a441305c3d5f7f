"""Every setting once: its type, range, label and help.

The CLI flags of new, resume and bench, the app's forms, validation, the --help texts and the
README's flag table are all made from SETTINGS; the default lives on the setting's field of
SessionConfig ("session": fixed for a session) or RoundSettings ("round": may change between
rounds). Adding a setting is one entry here and one field there. `python -m fvtui.schema` prints
the README table.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .errors import UserError
from .registry import plugin_names

INITS = ("glorot", "torch")
FV_POINTS = ("marabou", "lp")
MARABOU_SLICES = ("auto", "off")


@dataclass(frozen=True)
class Setting:
    name: str  # the field's name; the flag is --name-with-dashes
    scope: str  # "session" or "round"
    kind: Any  # int, float, bool, "widths" (comma-separated ints) or "choice"
    label: str  # how messages and forms name it
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: Callable[[], Sequence[str]] | None = None
    unit: str = ""  # shown after the label in forms
    flag: bool = True  # a command-line flag (and a form field)
    check_text: Callable[[str], object] | None = None  # for kind str: raises UserError on a bad value

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def form_label(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def default(self) -> Any:
        from .config import RoundSettings, SessionConfig

        owner = RoundSettings if self.scope == "round" else SessionConfig
        found = {f.name: f for f in dataclasses.fields(owner)}[self.name]
        return found.default if found.default is not dataclasses.MISSING else found.default_factory()

    def shown(self, value: Any) -> str:
        if self.kind == "widths":
            return ",".join(map(str, value))
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, str) and not value:
            return "-"
        return f"{value:g}" if isinstance(value, float) else str(value)

    def as_args(self, value: Any) -> list[str]:
        """The command-line words that set this value (what parse() reads back exactly)."""
        if self.kind is bool or (self.kind is str and not value):
            return [self.option] if value is True else []
        return [self.option, repr(value) if isinstance(value, float) else self.shown(value)]

    def parse(self, text: str) -> Any:
        """Text (a flag or a form field) to a value; UserError naming the setting if it does not parse."""
        text = text.strip()
        if self.kind == "widths":
            try:
                return tuple(int(part) for part in text.split(","))  # '32,,32' is a typo, not 32,32
            except ValueError:
                raise UserError(f"{self.label} must be widths separated by commas (e.g. 32 or 100,100), "
                                f"not '{text}'") from None
        if self.kind in (int, float):
            try:
                return self.kind(text)
            except ValueError:
                noun = "a whole number" if self.kind is int else "a number"
                raise UserError(f"{self.label} must be {noun}, not '{text}'") from None
        if self.kind is bool:
            return text.lower() in ("1", "true", "yes", "on")
        if self.check_text:
            self.check_text(text)
        return text

    def check(self, value: Any) -> None:
        if self.kind == "choice":
            allowed = list(self.choices())
            if value not in allowed:
                raise UserError(f"unknown {self.label} '{value}'; choose one of: {', '.join(allowed)}")
        elif self.kind == "widths":
            if not value:
                raise UserError(f"{self.label} need at least one width, e.g. 32 or 100,100")
            for width in value:
                _check_int("hidden layer width", width, int(self.low), int(self.high))
        elif self.kind is bool:
            if not isinstance(value, bool):
                raise UserError(f"{self.label} must be on or off, not {value!r}")
        elif self.kind is str:
            if not isinstance(value, str):
                raise UserError(f"{self.label} must be text, not {value!r}")
            if value and self.check_text:
                self.check_text(value)
        elif self.kind is int:
            _check_int(self.label, value, int(self.low), int(self.high))
        else:
            _check_float(self.label, value, self.low, self.high, self.low_open)

    def help_text(self, default: str | None = None) -> str:
        """The flag's --help; `default` in place of the setting's own (resume keeps the session's)."""
        choices = f" ({', '.join(self.choices())})" if self.kind == "choice" else ""
        if default is None:
            default = "" if "(default:" in self.help else self.shown(self.default())  # said better in the help
        return f"{self.help}{choices}" + (f" (default: {default})" if default else "")


def _image_size(text: str) -> object:
    from .own_data import parse_image_size

    return parse_image_size(text)


def _strategies() -> list[str]:
    return plugin_names("fvtui.strategies")


def _augmentations() -> list[str]:
    return plugin_names("fvtui.augment")


SETTINGS: tuple[Setting, ...] = (
    Setting("seed", "session", int, "seed", "every random choice of the session derives from it", 0, 2**32 - 1),
    Setting("rounds", "session", int, "rounds", "rounds to run (a target: resume may change it)", 1, 10_000),
    Setting("init_size", "session", int, "initial labeled size", "random labeled samples that train the initial "
            "network", 1, 1_000_000),
    Setting("hidden", "session", "widths", "hidden layers", "hidden layer widths, e.g. 32 or 100,100", 1, 100_000),
    Setting("init", "session", "choice", "initialisation", "weight initialisation: glorot is Keras' Dense default "
            "(the protocol's), torch is nn.Linear's", choices=lambda: INITS),
    Setting("train_initial", "session", bool, "train on the initial samples",
            "train every round on the initial labeled samples too (the protocol uses them for the initial "
            "network only)"),
    Setting("epochs", "session", int, "epochs", "training epochs per round", 1, 10_000),
    Setting("batch_size", "session", int, "batch size", "training batch size", 1, 100_000),
    Setting("lr", "session", float, "learning rate", "Adam's learning rate", 0.0, 10.0, low_open=True),
    Setting("adam_eps", "session", float, "Adam eps", "Adam's epsilon (Keras' default)", 0.0, 1.0, low_open=True),
    Setting("test", "session", str, "test set", "own data: a labelled image folder to measure accuracy on (default: "
            "test/ beside train/, else one image in six held out)"),
    Setting("image_size", "session", str, "image size", "own data: HEIGHTxWIDTH every image is resized to (default: "
            "their common size)", check_text=lambda text: _image_size(text)),
    Setting("channels", "session", "choice", "channels", "own data: 1 (grey) or 3 (colour); auto follows the images",
            choices=lambda: ("auto", "1", "3")),
    Setting("oracle", "session", "choice", "oracle", "who labels the queried samples: the dataset's own labels, or "
            "a person (the app's labelling screen, or fvtui labels --export/--import); auto is human for unlabelled "
            "images, else dataset", choices=lambda: ("auto", "dataset", "human")),
    Setting("strategy", "round", "choice", "strategy", "query strategy", choices=_strategies),
    Setting("augment", "round", "choice", "augmentation", "synthetic samples per queried sample",
            choices=_augmentations),
    Setting("eps_start", "round", float, "eps start", "first L-inf radius of the fv search (dfal/fvaal: their "
            "example's size + eps step)", 0.0, 1.0, low_open=True),
    Setting("eps_step", "round", float, "eps step", "radius growth after an UNSAT query", 0.0, 1.0, low_open=True),
    Setting("advs_per_sample", "round", int, "counterexamples per sample", "synthetic samples per queried sample "
            "(k)", 1, 1000),
    Setting("verify_timeout", "round", float, "verify timeout", "seconds per solver query (the authors' budget)",
            0.0, 86_400.0, low_open=True, unit="s"),
    Setting("fv_points", "round", "choice", "fv points", "who finds each fv counterexample: marabou (the "
            "protocol), or lp: a linear program in the activation region of the sample's last counterexample, "
            "checked against the query and the network, Marabou when it has none (faster; other points, the "
            "same queries)", choices=lambda: FV_POINTS),
    Setting("marabou_slice", "round", "choice", "Marabou slice", "how long Marabou has an fv query before branch "
            "and bound (one hidden layer) or HiGHS takes it over: auto (1 s on one hidden layer, 10 s deeper), or "
            "off: Marabou alone up to the verify timeout, so that no point depends on the machine's speed or load "
            "(far slower: a hard query holds its solver up to the timeout; a random+fv round at 32 hidden units took "
            "43x as long)", choices=lambda: MARABOU_SLICES),
    Setting("query_size", "round", int, "query size", "samples queried per round", 1, 100_000),
    Setting("pool_size", "round", int, "pool size", "random candidates drawn each round", 1, 10_000_000),
)
BY_NAME = {s.name: s for s in SETTINGS}


def scoped(scope: str) -> tuple[Setting, ...]:
    return tuple(s for s in SETTINGS if s.scope == scope)


def add_flags(parser, settings: Sequence[Setting], defaults: bool) -> None:
    """argparse flags for these settings; without defaults a flag left out is None (keep the current value),
    and the help says so rather than quoting a default that does not apply."""
    for s in settings:
        if not s.flag:
            continue
        text = s.help_text(None if defaults else "the session's own")
        if s.kind is bool:
            parser.add_argument(s.option, action="store_true", default=False if defaults else None, help=text)
            continue
        parser.add_argument(s.option, type=_argparse_type(s), default=s.default() if defaults else None,
                            metavar=s.name.upper(), help=text)


def _argparse_type(setting: Setting) -> Callable[[str], Any]:
    import argparse

    def convert(text: str) -> Any:
        try:
            return setting.parse(text)
        except UserError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = setting.label
    return convert


def markdown_table() -> str:
    """The README's flag table."""
    lines = ["| flag | default | scope | what it sets |", "|---|---|---|---|"]
    for s in SETTINGS:
        if s.flag:
            choices = f" ({', '.join(s.choices())})" if s.kind == "choice" else ""
            lines.append(f"| `{s.option}` | {s.shown(s.default())} | {s.scope} | {s.help}{choices} |")
    return "\n".join(lines)


def _check_int(what: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{what} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise UserError(f"{what} must be between {low} and {high}, not {value}")


def _check_float(what: str, value: Any, low: float, high: float, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise UserError(f"{what} must be a number, not {value!r}")
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise UserError(f"{what} must be in {bracket}{low}, {high}], not {value}")


if __name__ == "__main__":
    print(markdown_table())
