"""Options dataclasses whose fields carry their help text.

A library's options (``CalibrationOptions``, ``TrainingOptions``, ...) are a dataclass of
``option(default, help)`` fields; the command line (``infadapter_scripts.arguments.parse``) makes
one flag per field from them, so the library and its command share one list of options.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def option(default: Any, help: str) -> Any:
    """A dataclass field with a default and a help text (a list or dict default is copied per instance)."""
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})
