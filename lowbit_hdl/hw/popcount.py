"""XNOR-popcount as a LUT6-friendly compressor tree.

The bipolar dot product of two bit vectors is ``2·popcount(XNOR(x, w)) − N``; this module
builds the popcount part. The structure is chosen so that Yosys/ABC (and Vivado) map it to few
LUT6s instead of chains of small carry adders:

1. The XNOR is fused into the first counter level: every group of three lanes
   (``x0, w0, x1, w1, x2, w2`` = six inputs) is counted by two six-input functions.
2. The resulting bit columns are reduced with column counters of up to six bits (a 6:3
   counter is three LUT6s) until every column holds at most two bits.
3. One carry-chain adder adds the two remaining rows.

Every counter is written as a truth-table lookup, which the synthesis tools map to one LUT
per output bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from amaranth.hdl import Cat, Const, Module, Signal, Value

__all__ = ["lut_function", "compress_columns", "xnor_popcount"]


def lut_function(m: Module, inputs: Sequence[Value], fn: Callable[[int], int], nout: int,
                 name: str = "lut") -> list[Signal]:
    """Outputs bit ``j`` of ``fn(index)`` for ``index = Cat(*inputs)`` as ``nout`` signals.

    Each output is a constant truth table indexed by the inputs (one LUT for ≤ 6 input
    bits); an input may be several bits wide (a slice gathers faster in simulation).
    """
    idx = Cat(*inputs)
    n = len(idx)
    outs: list[Signal] = []
    for j in range(nout):
        table = sum(((fn(v) >> j) & 1) << v for v in range(1 << n))
        o = Signal(name=f"{name}_{j}")
        m.d.comb += o.eq(Const(table, 1 << n).bit_select(idx, 1))
        outs.append(o)
    return outs


def _count(v: int) -> int:
    return bin(v).count("1")


# Generalised parallel counters (bits taken from column c+1, bits from column c) → output
# bits, in order of preference: all take at most six inputs (one LUT6 per output bit) and
# remove the most bits per LUT first. Chosen by modelling the LUT count of 9…1152-lane trees.
GPCS: tuple[tuple[int, int, int], ...] = (
    (0, 6, 3), (1, 5, 3), (0, 5, 3), (2, 3, 3), (0, 4, 3), (0, 3, 2),
)


def compress_columns(m: Module, cols: list[list[Value]], name: str = "cmp") -> Value:
    """Sum of bit columns (column ``c`` has weight ``2**c``) as an unsigned value.

    Columns are reduced with the counters of :data:`GPCS` until each holds at most two
    bits; a final carry-chain adder adds the two rows. A sweep goes from the lowest column
    up, and a counter's carry bits join their (higher) columns in the same sweep, so they are
    counted together with that column's bits instead of being left over; every counter takes
    the shallowest bits (fewest LUT levels) of its columns first.
    """
    # (depth, serial, bit): sorting by depth keeps the tree shallow, serial keeps it stable
    heap = [[(0, i, b) for i, b in enumerate(c)] for c in cols]
    serial = sum(len(c) for c in cols)
    k = 0
    while heap and max(len(c) for c in heap) > 2:
        new: list[list[tuple[int, int, Value]]] = [[] for _ in range(len(heap) + 4)]
        avail = [sorted(c, key=lambda t: t[:2]) for c in heap] + [[] for _ in range(4)]
        for c in range(len(heap)):
            avail[c].sort(key=lambda t: t[:2])
            avail[c + 1].sort(key=lambda t: t[:2])
            while len(avail[c]) >= 3:
                k1, k0, nout = next(g for g in GPCS
                                    if len(avail[c]) >= g[1] and len(avail[c + 1]) >= g[0])
                lo_bits, avail[c] = avail[c][:k0], avail[c][k0:]
                hi_bits, avail[c + 1] = avail[c + 1][:k1], avail[c + 1][k1:]

                def fn(v: int, k0: int = k0) -> int:
                    return _count(v & ((1 << k0) - 1)) + 2 * _count(v >> k0)

                outs = lut_function(m, [t[2] for t in lo_bits + hi_bits], fn, nout,
                                    name=f"{name}_g{k}")
                k += 1
                depth = max(t[0] for t in lo_bits + hi_bits) + 1
                # the sum bit stays for the next sweep, the carries go on in this one
                new[c].append((depth, serial, outs[0]))
                for j, o in enumerate(outs[1:], 1):
                    avail[c + j].append((depth, serial + j, o))
                serial += nout
                avail[c + 1].sort(key=lambda t: t[:2])
            new[c].extend(avail[c])
            avail[c] = []
        for c in range(len(heap), len(avail)):
            new[c].extend(avail[c])
        while new and not new[-1]:
            new.pop()
        heap = new
    if not heap:
        return Const(0, 1)
    zero = Const(0, 1)
    a = Cat(*[c[0][2] if len(c) > 0 else zero for c in heap])
    b = Cat(*[c[1][2] if len(c) > 1 else zero for c in heap])
    if all(len(c) <= 1 for c in heap):
        return a
    return a + b


def xnor_popcount(m: Module, x: Value, w: Value, name: str = "pc") -> Value:
    """``popcount(~(x ^ w))`` of two equally wide bit vectors, unsigned, exact width
    ``len(x).bit_length()``."""
    n = len(x)
    if len(w) != n:
        raise ValueError(f"xnor_popcount: widths {len(x)} and {len(w)} differ")
    cols: list[list[Value]] = [[], []]
    for g, i in enumerate(range(0, n, 3)):
        k = min(3, n - i)
        # the lanes' x bits, then their w bits: two slices, cheap to gather in simulation;
        # a LUT does not care about the order of its inputs

        def fn(v: int, k: int = k) -> int:
            return bin(~(v ^ (v >> k)) & ((1 << k) - 1)).count("1")

        outs = lut_function(m, [x[i:i + k], w[i:i + k]], fn, k.bit_length(),
                            name=f"{name}_x{g}")
        for j, o in enumerate(outs):
            cols[j].append(o)
    total = compress_columns(m, cols, name=name)
    width = n.bit_length()
    return total[:width] if len(total) >= width else total
