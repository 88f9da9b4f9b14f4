"""Where the shipped data lives, in a source checkout and in an installed wheel.

The repository keeps its data in the top-level folders ``traces/`` and ``profiles/`` (each with a
README). A wheel maps those folders into ``infadapter_env/data/`` (see ``pyproject.toml``), so the
package finds them wherever it is installed.
"""

from __future__ import annotations

import codecs
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # infadapter_env/
_CANDIDATE_ROOTS = (_PACKAGE_DIR / "data", _PACKAGE_DIR.parent)


def data_file(folder: str, name: str) -> Path:
    """Path of a shipped data file, e.g. ``data_file("traces", "workload.txt.xz")``."""
    for root in _CANDIDATE_ROOTS:
        path = root / folder / name
        if path.is_file():
            return path
    searched = ", ".join(str(root / folder / name) for root in _CANDIDATE_ROOTS)
    raise FileNotFoundError(f"shipped data file {folder}/{name} not found; looked in: {searched}")


# Byte-order marks, longest first: a UTF-32 LE mark starts with the UTF-16 LE one.
_TEXT_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class NotTextError(ValueError):
    """Bytes that are not text in an encoding ``decode_text`` reads: ``byte`` is the offset of the
    first offending byte, ``line`` the 1-based line it falls on."""

    def __init__(self, byte: int, line: int, reason: str) -> None:
        super().__init__(f"not a UTF-8 or UTF-16 text file ({reason} at byte {byte}, line {line})")
        self.byte, self.line, self.reason = byte, line, reason


def decode_text(raw: bytes) -> str:
    """The text of a data file's bytes: UTF-8 (with or without a byte-order mark), or UTF-16 / UTF-32
    with their byte-order mark (what spreadsheet programs and PowerShell write by default).

    Raises ``NotTextError`` for anything else, and for text holding a NUL character (a binary file
    that happens to decode)."""
    encoding, skip = "utf-8", 0
    for bom, name in _TEXT_BOMS:
        if raw.startswith(bom):
            encoding, skip = name, len(bom)
            break
    body = raw[skip:]
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        line = body[: exc.start].decode(encoding, errors="replace").count("\n") + 1
        raise NotTextError(skip + exc.start, line, exc.reason) from None
    if "\x00" in text:
        before = text[: text.index("\x00")]
        raise NotTextError(skip + len(before.encode(encoding)), before.count("\n") + 1, "NUL character")
    return text
