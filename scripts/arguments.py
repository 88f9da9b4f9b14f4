"""Command-line parsing from a dataclass of arguments: one field, one flag, its help in ``metadata``."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def arg(default: Any, help: str) -> Any:
    """A dataclass field with a default and a help text."""
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def parse(cls: type[T], argv: Sequence[str] | None, prog: str, description: str | None = None) -> T:
    """Parse ``argv`` into an instance of the dataclass ``cls``; ``prog`` names the command in the
    help (``infadapter leaderboard``). A help text that explains its default is shown as it is;
    the others get ``(default: ...)``."""
    description = description or (cls.__doc__ or "").strip().splitlines()[0]
    parser = argparse.ArgumentParser(prog=prog, description=description)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        factory: Any = field.default_factory
        default = field.default if field.default is not dataclasses.MISSING else factory()
        help_text = field.metadata.get("help", "")
        if "default" not in help_text:
            help_text += f" (default: {default})"
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
            continue
        origin = typing.get_origin(kind)
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if origin in (list, tuple):
            parser.add_argument(flag, type=_scalar(args[0]), nargs="+", default=default, help=help_text)
        elif origin in (typing.Union, types.UnionType):
            parser.add_argument(flag, type=_scalar(args[0]), default=default, help=help_text)
        else:
            parser.add_argument(flag, type=_scalar(kind), default=default, help=help_text)
    namespace = parser.parse_args(argv)
    return cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls)})  # type: ignore[arg-type]


def _scalar(kind: Any) -> Any:
    return kind if kind in (int, float, str) else str
