"""Conventional Click-style help for the Typer application (``rcsa --help``).

Recent Typer releases print a type for every parameter in the Rich help (``--version
<bool>``, ``--out <path>``) and brace required arguments in the usage line (``rcsa run
[OPTIONS] {path}``). rcsa's help follows the Click convention instead: flags show no
metavar, options that take a value show ``PATH`` / ``TEXT`` / ``FLOAT`` / ``INTEGER`` /
``[a|b]``, and the usage line reads ``rcsa run [OPTIONS] PATH``.

:class:`ConventionalGroup` is the root group's class; when Typer builds the command tree it
gives every command and sub-group below it (whoever registered them) the matching subclass,
which renders its parameters that way. Only help and usage rendering changes: parsing,
defaults and values are Typer's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

#: Typer's type labels -> Click's metavars.
_CLICK_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "bool": "BOOLEAN",
                "path": "PATH", "file": "FILE", "directory": "DIRECTORY", "uuid": "UUID",
                "datetime": "DATETIME", "int range": "INTEGER RANGE",
                "float range": "FLOAT RANGE"}


def click_metavar(typer_label: str) -> str:
    """``<path>`` -> ``PATH``, ``<list[str]>`` -> ``TEXT``, ``<a|b>`` -> ``[a|b]``."""
    inner = typer_label.strip()
    if inner.startswith("<") and inner.endswith(">"):
        inner = inner[1:-1]
    if inner.startswith("list[") and inner.endswith("]"):
        inner = inner[5:-1]  # a repeatable option: one value per occurrence
    if "|" in inner:
        return f"[{inner}]"
    return _CLICK_NAMES.get(inner, inner.upper())


class ConventionalOption(TyperOption):
    """No metavar for a flag; the Click metavar of the value otherwise."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        if self.metavar is not None:
            return self.metavar
        return click_metavar(super().display_type(ctx))

    def display_type(self, ctx: Any) -> str:
        return self.display_type_rich(ctx) or ""


class ConventionalArgument(TyperArgument):
    """``PATH`` (required) or ``[PATH]`` (optional) in the usage line; ``PATH`` as its type."""

    def _conventional_name(self) -> str:
        name = self.metavar if self.metavar is not None else (self.name or "arg").upper()
        if not self.required:
            name = f"[{name}]"
        if self.nargs != 1:
            name += "..."
        return name

    def get_error_hint(self, *ctx: Any) -> str:  # Typer: (self); Click: (self, ctx)
        return f"'{self.metavar or (self.name or 'arg').upper()}'"

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        return [self._conventional_name()]

    def display_type_rich(self, ctx: Any) -> str | None:
        return click_metavar(super().display_type(ctx))

    def display_type(self, ctx: Any) -> str:
        return click_metavar(super().display_type(ctx))


def conventional_params(params: Iterable[Any]) -> list[Any]:
    """The same parameter objects, re-classed to render conventionally (idempotent)."""
    out = []
    for p in params:
        if isinstance(p, TyperOption) and not isinstance(p, ConventionalOption):
            p.__class__ = ConventionalOption
        elif isinstance(p, TyperArgument) and not isinstance(p, ConventionalArgument):
            p.__class__ = ConventionalArgument
        out.append(p)
    return out


class ConventionalCommand(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return conventional_params(super().get_params(ctx))


class ConventionalGroup(TyperGroup):
    """Root group: makes every command and group below it a conventional one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _conventional_tree(self)

    def get_params(self, ctx: Any) -> list[Any]:
        return conventional_params(super().get_params(ctx))


def _conventional_tree(group: TyperGroup) -> None:
    for cmd in group.commands.values():
        if isinstance(cmd, TyperGroup):
            if not isinstance(cmd, ConventionalGroup):
                cmd.__class__ = ConventionalGroup
            _conventional_tree(cmd)
        elif isinstance(cmd, TyperCommand) and not isinstance(cmd, ConventionalCommand):
            cmd.__class__ = ConventionalCommand
