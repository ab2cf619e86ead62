"""Small integer dot products as bit matrices, summed by the LUT6 compressor tree.

Every operand is a signed sum of its bits (``UINTk``: ``Σ x_j 2^j``; ``INTk``: the top bit
weighs ``−2^(k−1)``; BIPOLAR: ``2·x_0 − 1``), so a lane product expands into partial
products ``±2^e · (x_i ∧ w_j)`` plus single-bit and constant terms. A negative term
``−2^e·t`` is rewritten as ``2^e·(1 − t) − 2^e`` (Baugh-Wooley), which leaves only positive
bits and one build-time constant per lane: ``Σ lanes = U + const`` with ``U ≥ 0`` the sum of
the bit matrix.

Two-input partial products of the same column are counted three at a time by six-input
functions (the AND/NAND is fused into the counter LUTs, as the XNOR is for bipolar lanes),
everything else goes straight into :func:`.popcount.compress_columns`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from amaranth.hdl import Module, Value

from ..runtime.accdomain import (
    acc_domain,
    lane_constant,
    lane_products,
    operand_bits,
    partial_products,
)
from ..runtime.dtypes import DataType
from .popcount import LUT_DELAY, TreeDelay, compress_columns, lut_function

__all__ = ["MAX_TREE_TERMS", "tree_groups", "operand_bits", "lane_terms", "partial_products",
           "sum_terms"]

#: most one-bit terms in one compressor tree of a bit matrix; an MVTU splits wider ones
#: into registered lane groups (:attr:`.mvtu.MVTU.tree_groups`). Yosys/ABC map these trees
#: (AND-pair counters spread over many columns) deeper than the counter model's delay says,
#: so the split goes by size, as measured with bench/synth_mvtu.py (logic-depth model of
#: lowbit_hdl.flow.depth): 48 terms (BIPOLAR x UINT8, 3 lanes) 5.9 ns and 64 (INT2 x UINT2,
#: 16 lanes) 8.4 ns in one tree, 96 (BIPOLAR x UINT3, 16 lanes) 11.5 ns in one tree and
#: 9.4 ns in two; 512 (INT8 x UINT2, 32 lanes) 11.6 ns in two trees, 10.0 ns in four and
#: 9.5 ns in eight
MAX_TREE_TERMS = 64


def tree_groups(simd: int, xdt: DataType, wdt: DataType) -> int:
    """Lane groups of a ``simd``-lane dot product's compressor tree: for a bit matrix
    (:func:`~lowbit_hdl.runtime.accdomain.acc_domain` mode ``"bits"``) the fewest that keep
    each group's tree within :data:`MAX_TREE_TERMS` one-bit terms (a lane has
    ``len(lane_products(xdt, wdt))`` of them); 1 for any other mode."""
    if acc_domain(wdt, xdt, 1)[0] != "bits":
        return 1
    terms = simd * len(lane_products(xdt, wdt)[0])
    return 1 if terms <= MAX_TREE_TERMS else min(simd, -(-terms // MAX_TREE_TERMS))


Term = tuple[int, tuple[Value, ...], str, bool]  # (column, inputs, "bit"/"and"/"xnor", inv)


def lane_terms(x: Value, xdt: DataType, w: Value, wdt: DataType) -> tuple[list[Term], int]:
    """Bit-matrix terms and constant of one lane product ``w · x`` (encoded bits), from
    :func:`lowbit_hdl.runtime.accdomain.lane_products`: a negative term ``−2^e·t`` becomes
    the inverted bit ``2^e·(1 − t)`` and ``−2^e`` in the constant
    (:func:`~lowbit_hdl.runtime.accdomain.lane_constant`)."""
    prods, _ = lane_products(xdt, wdt)
    ops = {"x": x, "w": w}
    terms: list[Term] = [(abs(k).bit_length() - 1, tuple(ops[v][j] for v, j in operands), op,
                          k < 0) for k, operands, op in prods]
    return terms, lane_constant(xdt, wdt)


def sum_terms(m: Module, terms: Sequence[Term], name: str = "bm",
              budget: int | None = None, report: TreeDelay | None = None) -> Value:
    """Unsigned sum of the bit-matrix ``terms`` (each ``2^column · (inputs ANDed, optionally
    inverted)``); ``budget`` and ``report`` as for :func:`.popcount.compress_columns`."""
    cols: dict[int, list[Value]] = defaultdict(list)
    delays: dict[int, list[int]] = defaultdict(list)  # when each bit is ready
    pairs: dict[int, list[Term]] = defaultdict(list)
    for term in terms:
        col, inputs, op, inv = term
        if op == "bit":
            cols[col].append(~inputs[0] if inv else inputs[0])
            delays[col].append(0)
        else:
            pairs[col].append(term)
    for col, plist in pairs.items():
        for g in range(0, len(plist), 3):
            chunk = plist[g:g + 3]
            if len(chunk) == 1:
                _, (p, q), op, inv = chunk[0]
                v = (p & q) if op == "and" else ~(p ^ q)
                cols[col].append(~v if inv else v)
                delays[col].append(LUT_DELAY)
                continue
            ins = [bit for _, inputs, _, _ in chunk for bit in inputs]
            ops = [(op == "xnor", inv) for _, _, op, inv in chunk]

            def fn(v: int, ops: list[tuple[bool, bool]] = ops) -> int:
                total = 0
                for t, (xnor, inv) in enumerate(ops):
                    p, q = (v >> (2 * t)) & 1, (v >> (2 * t + 1)) & 1
                    total += (int(p == q) if xnor else (p & q)) ^ int(inv)
                return total

            outs = lut_function(m, ins, fn, len(chunk).bit_length(), name=f"{name}_c{col}g{g}")
            for j, o in enumerate(outs):
                cols[col + j].append(o)
                delays[col + j].append(LUT_DELAY)
    width = max(cols) + 1 if cols else 1
    return compress_columns(m, [cols.get(c, []) for c in range(width)], name=name,
                            budget=budget, delays=[delays.get(c, []) for c in range(width)],
                            report=report)
