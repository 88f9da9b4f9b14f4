"""Command-line parsing from a dataclass of arguments: one field, one flag, its help in ``metadata``.

A list field takes its values separated by commas, spaces or both: ``--betas 0.05,0.1``,
``--betas 0.05 0.1`` and ``--agents a, b`` are the same.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def parse(cls: type[T], argv: Sequence[str] | None, prog: str, description: str | None = None) -> T:
    """Parse ``argv`` into an instance of the dataclass ``cls``; ``prog`` names the command in the
    help (``infadapter leaderboard``). A help text that explains its default is shown as it is;
    the others get ``(default: ...)``."""
    description = description or (cls.__doc__ or "").strip().splitlines()[0]
    hints = typing.get_type_hints(cls)
    lists = any(typing.get_origin(kind) in (list, tuple) for kind in hints.values())
    epilog = "List flags take values separated by commas, spaces or both (a,b or a b or a, b)." if lists else None
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog)
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
            parser.add_argument(
                flag,
                nargs="+",
                default=default,
                help=help_text,
                action=_ListAction,
                metavar=field.name.upper().rstrip("S") or field.name.upper(),
                kind=_scalar(args[0]),
                sequence=origin,
            )
        elif origin in (typing.Union, types.UnionType):
            parser.add_argument(flag, type=_scalar(args[0]), default=default, help=help_text)
        else:
            parser.add_argument(flag, type=_scalar(kind), default=default, help=help_text)
    namespace = parser.parse_args(argv)
    return cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls)})  # type: ignore[arg-type]


def _scalar(kind: Any) -> Any:
    return kind if kind in (int, float, str) else str


class _ListAction(argparse.Action):
    """Values separated by commas, spaces or both, each converted to ``kind``."""

    def __init__(self, *args: Any, kind: Any = str, sequence: Any = list, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind, self.sequence = kind, sequence

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        parts = [part.strip() for value in values for part in value.split(",")]
        parts = [part for part in parts if part]
        if not parts:
            raise argparse.ArgumentError(self, "expected at least one value")
        converted = []
        for part in parts:
            try:
                converted.append(self.kind(part))
            except ValueError:
                what = {int: "an integer", float: "a number"}.get(self.kind, "a value")
                raise argparse.ArgumentError(
                    self, f"{part!r} is not {what}; separate values with commas or spaces, like 1,2 or 1 2"
                ) from None
        # A repeated flag adds to the values given before it (``--agents a --agents b`` is ``a b``).
        given = getattr(namespace, self.dest, None)
        earlier = list(given) if given is not None and given is not self.default else []
        setattr(namespace, self.dest, self.sequence(earlier + converted))
