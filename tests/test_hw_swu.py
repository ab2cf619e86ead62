# amaranth: UnusedElaboratable=no
"""Sliding-window unit: co-simulation against lowbit_hdl.golden.im2col on Verilator and Icarus
(several configurations in one build; random data, random stalls, frames back to back, exact
cycle counts), the control model's row sizing, and constructor checks."""

# (the line above: constructor checks and figure queries build components that are never
# elaborated)
from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.hdl import unsigned
from amaranth.lib.data import ArrayLayout

from lowbit_hdl.cost import WindowGeometry, window_rows, window_rows_bound, window_schedule
from lowbit_hdl.golden import im2col
from lowbit_hdl.hw.swu import SlidingWindow
from lowbit_hdl.ir import Conv, MaxPool, Network
from lowbit_hdl.runtime.dtypes import BIPOLAR, UINT, DataType
from lowbit_hdl.sim.runner import available_simulators, to_verilog
from lowbit_hdl.sim.stream import pack
from sim.units import phase, run_amaranth, simulate_streams

SIMS = available_simulators()

# name: (in_shape, K, stride, padding, SIMD, dtype, pad value, rows override)
CONFIGS = {
    "k3s1p1_u2": ((2, 7, 7), 3, 1, 1, 1, UINT(2), 1, None),  # non-zero UINT pad
    "k3s1p0_simdc": ((3, 7, 7), 3, 1, 0, 3, UINT(2), 0, None),  # SIMD = C, 2K-1 rows
    "k3s2p1_bip": ((4, 7, 7), 3, 2, 1, 2, BIPOLAR, -1, None),  # BIPOLAR pad -1 → bit 0
    "k5s1p2_bip": ((2, 6, 5), 5, 1, 2, 2, BIPOLAR, -1, None),  # K=5, padding 2, H ≠ W
    "k2s2p0": ((4, 8, 8), 2, 2, 0, 4, UINT(3), 0, None),  # balanced in/out rate
    "k1s2": ((3, 7, 7), 1, 2, 0, 1, UINT(3), 0, None),  # input-bound, unused rows/cols
    "k2s1p1": ((2, 5, 6), 2, 1, 1, 1, UINT(2), 2, None),  # even kernel with padding
    "k3_3rows": ((3, 7, 7), 3, 1, 0, 1, UINT(2), 0, 3),  # fewer rows than the default
}


def make_unit(cfg) -> SlidingWindow:
    shape, k, s, p, simd, dt, pad, rows = cfg
    return SlidingWindow(shape, k, s, p, int(dt.encode(pad)), simd, dt.bits, rows=rows)


def frames_io(unit: SlidingWindow, dt: DataType, pad: int, x: np.ndarray):
    """Input and expected output words of NHWC frames ``x`` (integer values)."""
    xe = dt.encode(x).astype(np.int64)
    pad_bits = int(dt.encode(pad))
    cols = im2col(xe, unit.kernel, unit.stride, unit.padding, pad_bits)
    ins = [pack(v, dt.bits) for v in xe.reshape(-1, unit.simd)]
    outs = [pack(v, dt.bits) for v in cols.reshape(-1, unit.simd)]
    return ins, outs


def leading_pad_beats(unit: SlidingWindow) -> int:
    """Beats at the start of a frame that are padding only (emitted before any input)."""
    c, h, w = unit.in_shape
    mask = im2col(np.ones((1, h, w, c), dtype=np.int64), unit.kernel, unit.stride,
                  unit.padding, 0).reshape(-1, unit.simd)
    n = 0
    while n < len(mask) and not mask[n].any():
        n += 1
    return n


def random_frames(rng, dt: DataType, frames: int, shape) -> np.ndarray:
    c, h, w = shape
    if dt.is_bipolar:
        return rng.choice(np.array([-1, 1]), size=(frames, h, w, c))
    return rng.integers(dt.min, dt.max + 1, size=(frames, h, w, c))


def build_case(name: str):
    cfg = CONFIGS[name]
    shape, _, _, _, _, dt, pad, rows = cfg
    unit = make_unit(cfg)
    rng = np.random.default_rng(sum(map(ord, name)))
    runs = []
    for frames, stall in ((3, 0.0), (2, 0.3)):
        ins, outs = frames_io(unit, dt, pad, random_frames(rng, dt, frames, shape))
        checks = {}
        if stall == 0 and rows is None:
            checks = {"cycles": frames * unit.cycles_per_frame + unit.latency,
                      "period": [unit.out_beats, unit.cycles_per_frame]}
        runs.append(phase(ins, outs, stall, **checks))
    pad_word = pack([int(dt.encode(pad))] * unit.simd, dt.bits)
    return unit, runs, [pad_word] * leading_pad_beats(unit)


@pytest.mark.parametrize("sim", SIMS)
def test_swu_cosim(sim):
    simulate_streams({n: build_case(n) for n in CONFIGS}, "swu_bundle", sim)


@pytest.mark.parametrize("seed", range(6))
def test_swu_random_configs(seed):
    """Random small (also degenerate) configurations in Amaranth's simulator: 1-pixel rows,
    kernels wider than the image, windows entirely in padding, stride > K, fewer rows."""
    rng = random.Random(seed)
    while True:
        c, h, w = rng.choice([1, 2, 3, 4]), rng.randint(1, 6), rng.randint(1, 6)
        k, s, p = rng.randint(1, 4), rng.randint(1, 3), rng.randint(0, 2)
        if k <= h + 2 * p and k <= w + 2 * p:
            break
    simd = rng.choice([d for d in range(1, c + 1) if c % d == 0])
    eb = rng.randint(1, 3)
    pad = rng.randrange(1 << eb)
    rows = rng.choice([None, None, min(k, h)])
    unit = SlidingWindow((c, h, w), k, s, p, pad, simd, eb, rows=rows)
    x = np.random.default_rng(seed).integers(0, 1 << eb, size=(2, h, w, c))
    ins = [pack(v, eb) for v in x.reshape(-1, simd)]
    expect = [pack(v, eb) for v in im2col(x, k, s, p, pad).reshape(-1, simd)]
    got = run_amaranth(unit, ins, len(expect), stall=0.3, seed=seed)
    assert got == expect, f"C,H,W={c, h, w} K={k} s={s} p={p} SIMD={simd} rows={unit.rows}"


def test_rows_and_buffer_sizes():
    # "same" padding at stride 1 needs only K rows; no padding needs 2K-1 (next frame's
    # first K-1 rows are prefetched while the last output row is emitted)
    assert SlidingWindow((3, 7, 7), 3, 1, 1).rows == 3
    assert SlidingWindow((3, 7, 7), 3, 1, 0).rows == 5
    assert SlidingWindow((2, 32, 32), 3, 1, 1, simd=2).rows == 3
    u = SlidingWindow((64, 16, 16), 3, 1, 1, simd=8, elem_bits=2)
    assert u.depth == 3 * 16 * 8 and u.buffer_bits == 3 * 16 * 64 * 2
    assert u.cycles_per_frame == 16 * 16 * 9 * 8
    # input-bound (K=1, stride 2): H·W·C/SIMD
    assert SlidingWindow((4, 8, 8), 1, 2).cycles_per_frame == 8 * 8 * 4


@pytest.mark.parametrize("h,w,k,s,p", [
    (7, 7, 3, 1, 1), (7, 7, 3, 1, 0), (6, 9, 3, 2, 1), (8, 8, 2, 2, 0), (7, 7, 1, 2, 0),
    (9, 12, 5, 2, 0), (5, 5, 5, 1, 2), (3, 3, 3, 1, 1), (2, 6, 1, 3, 1), (12, 12, 4, 2, 1),
])
def test_schedule_sustains_rate(h, w, k, s, p):
    """With the chosen rows, the control model emits F frames in exactly F·cycles_per_frame
    plus a constant, for C/SIMD = 1 and 3; the analytic bound used for big layers is never
    below the modelled minimum."""
    g1 = WindowGeometry(h, w, 1, k, s, p)
    rows = window_rows(g1)
    assert min(k, h) <= rows <= window_rows_bound(g1)
    for cs in (1, 3):
        g = WindowGeometry(h, w, cs, k, s, p)
        per = max(g.in_beats, g.out_beats)
        first, lasts = window_schedule(g, rows, 6)
        assert [b - a for a, b in zip(lasts[1:], lasts[2:], strict=False)] == [per] * 4
        # one row fewer is slower (the minimum is the minimum) or deadlocks
        if rows > min(k, h):
            res = window_schedule(g1, rows - 1, 6)
            assert res is None or res[1][5] - res[1][2] > 3 * max(g1.in_beats, g1.out_beats)


@pytest.mark.parametrize("k,s,p", [(k, s, p) for k in (1, 2, 3, 4, 5) for s in (1, 2, 3)
                                   for p in (0, 1, 2)])
def test_buffer_depth_matches_estimate(k, s, p):
    """The resource estimate sizes the sliding window's buffer exactly as the hardware module
    does (one owner: lowbit_hdl.cost.window_rows), over many shapes and SIMD widths."""
    from lowbit_hdl.flow.resources import memory_resources, swu_buffer

    for h, w in ((1, 1), (2, 3), (3, 3), (5, 5), (7, 4), (8, 8), (12, 9), (16, 16), (30, 30)):
        if k > h + 2 * p or k > w + 2 * p:
            continue
        for c, simd in ((1, 1), (4, 1), (4, 2), (6, 3), (8, 8)):
            net = Network("n", (c, h, w), [Conv("c", 2, k, stride=s, padding=p, simd=simd)],
                          input_dtype=UINT(2))
            info = net.infer()[0]
            unit = SlidingWindow((c, h, w), k, s, p, 0, simd, 2)  # as from_layer builds it
            width, depth = swu_buffer(info)
            assert (width, depth) == (simd * 2, unit.depth), (c, h, w, simd)
            assert memory_resources(width, depth) == memory_resources(unit.buffer_bits // depth,
                                                                      unit.depth)


def test_from_layer():
    net = Network("n", (4, 9, 9), [
        Conv("c0", 8, 3, stride=1, padding=1, simd=2, pe=2, ram_style="distributed"),
        MaxPool("p"),
        Conv("c1", 8, 3, padding=1, simd=4, pe=2, weight_dtype=BIPOLAR, act=UINT(2)),
        Conv("c2", 4, 3, padding=1, simd=8, pe=2),
    ], input_dtype=BIPOLAR)
    infos = net.infer()
    u = SlidingWindow.from_layer(infos[0])
    assert (u.in_shape, u.kernel, u.stride, u.padding, u.simd) == ((4, 9, 9), 3, 1, 1, 2)
    assert u.pad_bits == 0 and u.elem_bits == 1 and u.ram_style == "distributed"
    assert u.i.payload.shape() == u.o.payload.shape() == ArrayLayout(unsigned(1), 2)
    u2 = SlidingWindow.from_layer(infos[3])  # UINT2 input, pad value 0
    assert u2.elem_bits == 2 and u2.pad_bits == 0
    assert u2.o.payload.shape() == ArrayLayout(unsigned(2), 8)
    assert "module u_from_layer" in to_verilog(u, "u_from_layer")
    assert "module u2_from_layer" in to_verilog(u2, "u2_from_layer")
    with pytest.raises(ValueError, match="needs a Conv layer"):
        SlidingWindow.from_layer(infos[1])


@pytest.mark.parametrize("kwargs,msg", [
    ({"in_shape": (64, 8, 8), "kernel": 3, "simd": 5}, "SIMD=5 does not divide C=64"),
    ({"in_shape": (4, 3, 3), "kernel": 6, "padding": 1}, "larger than the padded input"),
    ({"in_shape": (4, 8, 8), "kernel": 3, "stride": 0}, "must be ≥ 1"),
    ({"in_shape": (4, 8, 8), "kernel": 3, "pad_bits": 2, "elem_bits": 1}, "does not fit"),
    ({"in_shape": (4, 8, 8), "kernel": 3, "ram_style": "ultra"}, "ram_style"),
    ({"in_shape": (4, 8, 8), "kernel": 3, "rows": 2}, r"rows=2 must be ≥ min\(K, H\) = 3"),
    ({"in_shape": (4, 8), "kernel": 3}, "must be"),
])
def test_constructor_checks(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        SlidingWindow(**kwargs)


@pytest.mark.parametrize("kwargs,msg", [
    ({"in_shape": (4, 8, 8), "kernel": 3.0}, "kernel=3.0 must be an int"),
    ({"in_shape": (4, 8.5, 8), "kernel": 3}, "H=8.5 must be an int"),
    ({"in_shape": (4, 8, 8), "kernel": 3, "ram_style": 1}, "ram_style=1 must be a str"),
    ({"in_shape": (4, 8, 8), "kernel": 3, "rows": 3.0}, "rows=3.0 must be an int"),
])
def test_constructor_type_checks(kwargs, msg):
    with pytest.raises(TypeError, match=msg):
        SlidingWindow(**kwargs)
