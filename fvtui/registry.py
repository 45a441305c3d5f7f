"""One registry per kind of plug-in; a package's modules register themselves when it is imported,
so adding a strategy or an augmentation is one new file, named after what it registers."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T", bound=Callable)


class Registry(Generic[T]):
    """Plug-ins by name, each with the traits it declares (what it needs from the engine), so that
    nothing outside a plug-in has to know a plug-in's name."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._traits: dict[str, dict[str, object]] = {}

    def register(self, name: str, **traits: object) -> Callable[[T], T]:
        def add(func: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = func
            self._traits[name] = traits
            return func

        return add

    def trait(self, name: str, trait: str, default: object = False) -> object:
        """A plug-in's declared trait; `default` for one it did not declare or a name not registered."""
        return self._traits.get(name, {}).get(trait, default)

    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def import_submodules(package_name: str, package_path: list[str]) -> None:
    for module in pkgutil.iter_modules(package_path):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package_name}.{module.name}")


def plugin_names(package_name: str) -> list[str]:
    """The plug-ins a package offers, read from its file names without importing it (nor torch)."""
    spec = importlib.util.find_spec(package_name)
    locations = spec.submodule_search_locations if spec else None
    return sorted(m.name for m in pkgutil.iter_modules(locations or []) if not m.name.startswith("_"))
