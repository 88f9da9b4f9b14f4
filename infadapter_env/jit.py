"""numba's ``njit`` with its disk cache where one can be written.

Every compiled loop of the project is declared with ``compiled(...)``: ``numba.njit(..., cache=True,
nogil=True)``. numba keeps the compiled code beside the source file, or in the user's cache folder
(``NUMBA_CACHE_DIR``, else ``~/.cache``) where the package folder is read-only. Where neither can be
written numba refuses to cache at all; then each process compiles for itself (the step's kernels
take about 20 s), with one warning that says how to give it a cache.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numba

_warned = False


def compiled(signature: Any = None) -> Callable[[Callable[..., Any]], Any]:
    """Decorator: ``numba.njit(signature, cache=True, nogil=True)``, without the disk cache where
    numba finds nowhere to write it. With a signature the function compiles now."""

    def wrap(function: Callable[..., Any]) -> Any:
        global _warned
        try:
            return numba.njit(signature, cache=True, nogil=True)(function)
        except RuntimeError as error:
            if "no locator available" not in str(error):
                raise
            if not _warned:
                _warned = True
                warnings.warn(
                    f"numba finds no writable folder to cache compiled code ({error}); this process compiles "
                    "its own (about 20 s). Set NUMBA_CACHE_DIR to a writable folder to compile once.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return numba.njit(signature, cache=False, nogil=True)(function)

    return wrap
