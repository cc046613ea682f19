"""Long lists cut into pieces of a fixed size, for work that must not be sent at once.

The dialer reads and writes in bulk (an intake of 100,000 calls), but a statement's
parameters, an IN list and a Redis pipeline each have a size past which the database,
the driver or Redis does worse or refuses; the callers say what that size is for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")


def chunks(values: list[T], size: int) -> Iterator[list[T]]:
    """`values` in order, `size` at a time (the last piece may be shorter); nothing for
    an empty list."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    for start in range(0, len(values), size):
        yield values[start : start + size]
