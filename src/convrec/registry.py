"""A name -> object table, shared by the model and task registries.

Modules register themselves with a decorator; the package imports every
module of its folder, so adding a model or a task is adding one file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Generic, TypeVar

from convrec.errors import ConvrecError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str, config_group: str) -> None:
        self.kind = kind
        self.package = package
        self.config_group = config_group
        self._entries: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add

    def _load(self) -> None:
        if not self._loaded:
            package = importlib.import_module(self.package)
            for module in pkgutil.iter_modules(package.__path__):
                if not module.name.startswith("_"):
                    importlib.import_module(f"{self.package}.{module.name}")
            self._loaded = True

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def get(self, name: str) -> T:
        self._load()
        if name not in self._entries:
            raise ConvrecError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}. "
                f"Pick one of those, or add src/{self.package.replace('.', '/')}/{name}.py "
                f"and conf/{self.config_group}/{name}.yaml"
            )
        return self._entries[name]
