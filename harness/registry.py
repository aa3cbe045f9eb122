"""A registry is a name -> object dict filled by a decorator; the registered name is what a user types."""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownName(KeyError):
    """A name that no registry entry has; the CLI turns it into one line and exit code 2."""

    def __str__(self) -> str:  # KeyError quotes its message; we want the plain sentence
        return str(self.args[0])


class Registry(Generic[T]):
    """``@REG.register`` (the function's name is the key) or ``@REG.register("name")``."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name_or_obj=None):
        def add(obj: T, name: str | None = None) -> T:
            key = name or obj.__name__
            if key in self._items:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._items[key] = obj
            return obj

        if isinstance(name_or_obj, str):
            return lambda obj: add(obj, name_or_obj)
        return add(name_or_obj)

    def __getitem__(self, name: str) -> T:
        if name not in self._items:
            raise UnknownName(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._items))}")
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def items(self):
        return sorted(self._items.items())
