"""Balanced adder tree with exact range tracking (every node has the fewest bits that hold
its value range)."""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Value

from ..runtime.dtypes import signed_bits_for_range

__all__ = ["fit", "sum_tree"]


def fit(v: Value, lo: int, hi: int) -> Value:
    """``v`` cut to the fewest bits holding [lo, hi] (signed when ``lo < 0``)."""
    if lo >= 0:
        return v[:max(1, hi.bit_length())]
    return v[:signed_bits_for_range(lo, hi)].as_signed()


def sum_tree(items: Sequence[tuple[Value, int, int]]) -> tuple[Value, int, int]:
    """Sum of ``(value, lo, hi)`` items as a balanced tree; returns ``(sum, lo, hi)``."""
    level = list(items)
    if not level:
        raise ValueError("sum_tree: nothing to add")
    while len(level) > 1:
        nxt = []
        for (a, alo, ahi), (b, blo, bhi) in zip(level[0::2], level[1::2], strict=False):
            lo, hi = alo + blo, ahi + bhi
            nxt.append((fit(a + b, lo, hi), lo, hi))
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]
