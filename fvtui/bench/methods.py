"""What a benchmark runs: methods (`strategy+augmentation`), the paper's twelve, and seed lists.

Names are checked against the strategies and augmentations fvtui offers (the plug-in registries,
read from their file names so that no torch is imported just to reject a typo), never against a
list kept here: a new strategy or augmentation file is a valid benchmark method at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError
from ..registry import plugin_names

MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Method:
    strategy: str
    augment: str

    @property
    def key(self) -> str:
        """How tables and the CSV name it: `badge+fv`."""
        return f"{self.strategy}+{self.augment}"

    @property
    def slug(self) -> str:
        """How session names spell it (`+` is not allowed there): `badge-fv`."""
        return f"{self.strategy}-{self.augment}"

    @property
    def label(self) -> str:
        """The paper's name for it where it has one (`BADGE+FV-Adv`), else its key."""
        return PAPER_LABELS.get(self.key, self.key)

    def session_name(self, seed: int) -> str:
        return f"{self.slug}-s{seed}"


# The comparison of "On Improving Deep Active Learning with Formal Verification" (PROTOCOL.md), in the
# paper's order: display name -> strategy+augmentation.
PAPER = (
    ("Random", "random", "none"),
    ("Random+FGSM-Adv", "random", "fgsm"),
    ("Random+FV-Adv", "random", "fv"),
    ("BADGE", "badge", "none"),
    ("BADGE+FGSM-Adv", "badge", "fgsm"),
    ("BADGE+FV-Adv", "badge", "fv"),
    ("DFAL", "dfal", "deepfool"),
    ("DFAL-No-Adv", "dfal", "none"),
    ("DFAL+FGSM-Adv", "dfal", "fgsm"),
    ("DFAL+FV-Adv", "dfal", "fv"),
    ("FVAAL", "fvaal", "fv"),
    ("FGSM-No-Adv", "fvaal", "none"),
)
PAPER_METHODS = tuple(Method(s, a) for _, s, a in PAPER)
PAPER_LABELS = {f"{s}+{a}": label for label, s, a in PAPER}
STRATEGY_LABELS = {"random": "Random", "badge": "BADGE", "dfal": "DFAL", "fvaal": "FVAAL"}  # panel titles


def strategies() -> list[str]:
    return plugin_names("fvtui.strategies")


def augmentations() -> list[str]:
    return plugin_names("fvtui.augment")


def paper_methods() -> list[Method]:
    """The paper's twelve, checked against what this fvtui offers (fv needs its augmentation)."""
    return [check_method(m) for m in PAPER_METHODS]


def check_method(method: Method, token: str | None = None) -> Method:
    valid_s, valid_a = strategies(), augmentations()
    if method.strategy in valid_s and method.augment in valid_a:
        return method
    what = token or method.key
    problems = []
    if method.strategy not in valid_s:
        problems.append(f"no strategy '{method.strategy}'")
    if method.augment not in valid_a:
        problems.append(f"no augmentation '{method.augment}'")
    raise UserError(f"unknown method '{what}' ({', '.join(problems)}); {_valid_text(valid_s, valid_a)}")


def _valid_text(valid_s: list[str], valid_a: list[str]) -> str:
    return (f"a method is STRATEGY+AUGMENTATION with strategies: {', '.join(valid_s)} and augmentations: "
            f"{', '.join(valid_a)} (e.g. badge+fv), or one of the paper's names: {', '.join(l for l, _, _ in PAPER)}")


def parse_method(token: str) -> Method:
    """`badge+fv`, or a paper name such as `BADGE+FV-Adv` (case does not matter for those)."""
    text = token.strip()
    by_label = {label.lower(): Method(s, a) for label, s, a in PAPER}
    if text.lower() in by_label:
        return check_method(by_label[text.lower()], text)
    parts = text.split("+")
    if len(parts) != 2 or not all(parts):
        raise UserError(f"unknown method '{text}'; {_valid_text(strategies(), augmentations())}")
    return check_method(Method(parts[0].strip(), parts[1].strip()), text)


def parse_methods(text: str) -> list[Method]:
    tokens = [t for t in text.split(",") if t.strip()]
    if not tokens:
        raise UserError(f"--methods needs at least one method; {_valid_text(strategies(), augmentations())}")
    methods: list[Method] = []
    for token in tokens:
        method = parse_method(token)
        if method not in methods:
            methods.append(method)
    return methods


def parse_seeds(text: str) -> list[int]:
    """`0-4`, `0,2,5`, `3`, or a mix such as `0-2,7`; duplicates dropped, order kept."""
    seeds: list[int] = []
    hint = "--seeds takes seeds such as 0-4, 0,2,5 or 3"
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            first, last = (int(low), int(high)) if sep else (int(part), int(part))
        except ValueError:
            raise UserError(f"{hint}, not '{text}'") from None
        if first > last:
            raise UserError(f"{hint}; the range '{part}' runs backwards")
        if first < 0 or last > MAX_SEED:
            raise UserError(f"seeds must be between 0 and {MAX_SEED}, not '{part}'")
        if last - first >= 10_000:
            raise UserError(f"the seed range '{part}' has more than 10000 seeds")
        seeds.extend(s for s in range(first, last + 1) if s not in seeds)
    if not seeds:
        raise UserError(f"{hint}, not '{text}'")
    return seeds
