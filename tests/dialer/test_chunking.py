"""dialer.chunking: a list in fixed-size pieces, in order, nothing lost or repeated."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.chunking import chunks


@given(st.lists(st.integers()), st.integers(min_value=1, max_value=50))
def test_pieces_of_the_size_in_order_make_the_list(values, size):
    pieces = list(chunks(values, size))
    assert [value for piece in pieces for value in piece] == values
    assert all(len(piece) == size for piece in pieces[:-1])
    assert all(0 < len(piece) <= size for piece in pieces)


def test_a_thousand_and_one_is_two_pieces():
    assert [len(piece) for piece in chunks(list(range(1001)), 1000)] == [1000, 1]


@pytest.mark.parametrize("size", [0, -1])
def test_a_size_below_one_is_refused(size):
    with pytest.raises(ValueError, match="at least 1"):
        list(chunks([1, 2], size))
