"""Named registries, as in fast-reid and timm: a config value names an entry, code outside the
package can add entries.

    BACKBONES = Registry("backbone", key="MODEL.TRANSFORMER_TYPE")

    @BACKBONES.register("my_vit")
    def build_my_vit(...): ...

    BACKBONES.get(cfg.MODEL.TRANSFORMER_TYPE)   # a ConfigError naming the key and the choices
"""
from __future__ import annotations

from typing import Any, Iterator

from .errors import ConfigError


class Registry:
    """Entries by name. ``key`` is the config key whose value selects an entry (error messages)."""

    def __init__(self, kind: str, key: str = ""):
        self.kind = kind
        self.key = key
        self._entries: dict[str, Any] = {}

    def register(self, name: str, obj: Any = None, *, replace: bool = False):
        """Register ``obj`` under ``name``; without ``obj``, a decorator. A second entry of the
        same name is an error unless ``replace`` (so two plug-ins cannot silently shadow each other)."""

        def add(entry):
            if name in self._entries and not replace:
                raise ValueError(f"{self.kind} {name!r} is registered already; pass replace=True to replace it")
            self._entries[name] = entry
            return entry

        return add(obj) if obj is not None else add

    def get(self, name: str) -> Any:
        if name not in self._entries:
            where = f"{self.key} " if self.key else ""
            raise ConfigError(f"{where}{name!r} is not one of: {', '.join(self.names())} (the known {self.kind}s)")
        return self._entries[name]

    def unregister(self, name: str) -> Any:
        """Remove and return the entry ``name`` (a KeyError if there is none), e.g. a test's own."""
        return self._entries.pop(name)

    def names(self) -> list[str]:
        """In the order of registration."""
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"


