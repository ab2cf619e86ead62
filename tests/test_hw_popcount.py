"""The compressor-tree arithmetic (XNOR-popcount, bit-matrix lane products) against NumPy,
for many widths and every supported type pair, in Amaranth's Python simulator."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from lowbit_hdl.hw.bitmatrix import lane_terms, partial_products, sum_terms
from lowbit_hdl.hw.popcount import chain_lane_pairs, compress_columns, xnor_popcount
from lowbit_hdl.runtime.dtypes import BIPOLAR, INT, UINT
from lowbit_hdl.sim.stream import pack


def run_comb(m: Module, drive: list[tuple[Signal, list[int]]], out, n: int) -> list[int]:
    got: list[int] = []

    async def bench(ctx):
        for k in range(n):
            for sig, vals in drive:
                ctx.set(sig, vals[k])
            await ctx.delay(1e-9)
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 9, 13, 27, 32, 64, 100])
def test_xnor_popcount(n):
    rng = np.random.default_rng(n)
    m = Module()
    x, w = Signal(n), Signal(n)
    out = xnor_popcount(m, x, w)
    assert len(out) == n.bit_length()
    xs = [int(v) for v in rng.integers(0, 2, size=(40, n)) @ (1 << np.arange(n, dtype=object))]
    ws = [int(v) for v in rng.integers(0, 2, size=(40, n)) @ (1 << np.arange(n, dtype=object))]
    xs += [0, (1 << n) - 1]
    ws += [0, 0]
    got = run_comb(m, [(x, xs), (w, ws)], out, len(xs))
    mask = (1 << n) - 1
    assert got == [bin(~(a ^ b) & mask).count("1") for a, b in zip(xs, ws, strict=True)]


@pytest.mark.parametrize("wdt, xdt", [
    (BIPOLAR, UINT(8)), (BIPOLAR, UINT(2)), (BIPOLAR, INT(4)), (INT(2), BIPOLAR),
    (INT(4), BIPOLAR), (INT(2), UINT(2)), (INT(2), INT(3)), (INT(4), UINT(4)),
    (INT(3), UINT(1)),
])
@pytest.mark.parametrize("simd", [1, 5])
def test_bit_matrix_dot(wdt, xdt, simd):
    assert partial_products(wdt, xdt) <= 16
    rng = np.random.default_rng(simd)
    m = Module()
    x, w = Signal(simd * xdt.bits), Signal(simd * wdt.bits)
    terms, const = [], 0
    for s in range(simd):
        t, const = lane_terms(x[s * xdt.bits:(s + 1) * xdt.bits], xdt,
                              w[s * wdt.bits:(s + 1) * wdt.bits], wdt)
        terms += t
    out = sum_terms(m, terms)

    def draw(dt, size):
        if dt.is_bipolar:
            return rng.choice(np.array([-1, 1]), size=size)
        return rng.integers(dt.min, dt.max + 1, size=size)

    xv, wv = draw(xdt, (60, simd)), draw(wdt, (60, simd))
    xv[0], wv[0] = xdt.min, wdt.min  # range corners
    xv[1], wv[1] = xdt.max, wdt.min
    xw = [pack(xdt.encode(r), xdt.bits) for r in xv]
    ww = [pack(wdt.encode(r), wdt.bits) for r in wv]
    got = run_comb(m, [(x, xw), (w, ww)], out, len(xw))
    assert [g + simd * const for g in got] == list((xv * wv).sum(axis=1))


def _all_inputs(nbits: int) -> list[int]:
    return list(range(1 << nbits))


@pytest.mark.parametrize("heights", [[3], [4], [5], [6], [7], [5, 1, 1], [7, 1], [3, 1],
                                     [6, 2], [7, 3, 1], [2, 5, 3], [1, 7]])
def test_compress_columns_exhaustive(heights):
    """Every input of small heaps: the columns of 3…7 bits are reduced by chain counters
    (X + Y + cin on a carry chain) and LUT counters; the sum must be exact."""
    nbits = sum(heights)
    m = Module()
    v = Signal(nbits)
    cols, i = [], 0
    for h in heights:
        cols.append([v[i + j] for j in range(h)])
        i += h
    out = compress_columns(m, cols)
    vals = _all_inputs(nbits)
    got = run_comb(m, [(v, vals)], out, len(vals))
    want = []
    for val in vals:
        total, i = 0, 0
        for c, h in enumerate(heights):
            total += bin((val >> i) & ((1 << h) - 1)).count("1") << c
            i += h
        want.append(total)
    assert got == want


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_xnor_popcount_exhaustive(n):
    """Every pair of n-bit vectors."""
    m = Module()
    x, w = Signal(n), Signal(n)
    out = xnor_popcount(m, x, w)
    pairs = [(a, b) for a in range(1 << n) for b in range(1 << n)]
    got = run_comb(m, [(x, [a for a, _ in pairs]), (w, [b for _, b in pairs])], out,
                   len(pairs))
    mask = (1 << n) - 1
    assert got == [bin(~(a ^ b) & mask).count("1") for a, b in pairs]


@pytest.mark.parametrize("n", [11, 12, 22, 33])
def test_xnor_popcount_lane_chains(n):
    """Widths with lane pairs in chain counters (X + (l_a + l_b + e) + cin): 600 random
    vector pairs plus the all-match and all-mismatch corners."""
    assert chain_lane_pairs(n) >= 1
    rng = np.random.default_rng(n)
    m = Module()
    x, w = Signal(n), Signal(n)
    out = xnor_popcount(m, x, w)
    weights = 1 << np.arange(n, dtype=object)
    xs = [int(v) for v in rng.integers(0, 2, size=(600, n)) @ weights]
    ws = [int(v) for v in rng.integers(0, 2, size=(600, n)) @ weights]
    mask = (1 << n) - 1
    xs += [0, mask, mask, 0]
    ws += [0, mask, 0, mask]
    got = run_comb(m, [(x, xs), (w, ws)], out, len(xs))
    assert got == [bin(~(a ^ b) & mask).count("1") for a, b in zip(xs, ws, strict=True)]
