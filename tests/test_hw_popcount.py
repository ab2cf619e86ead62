"""The compressor-tree arithmetic (XNOR-popcount, bit-matrix lane products) against NumPy,
for many widths and every supported type pair, in Amaranth's Python simulator."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from lowbit_hdl.hw.bitmatrix import lane_terms, partial_products, sum_terms
from lowbit_hdl.hw.popcount import xnor_popcount
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
