# amaranth: UnusedElaboratable=no
"""Max-pool: co-simulation against lowbit_hdl.golden.maxpool on Verilator and Icarus (several
configurations in one build; random data, random stalls, frames back to back, one input beat
per cycle and exact cycle counts), and constructor checks."""

# (the line above: constructor checks and figure queries build components that are never
# elaborated)
from __future__ import annotations

import math
import random

import numpy as np
import pytest
from amaranth.hdl import unsigned
from amaranth.lib.data import ArrayLayout

from lowbit_hdl.golden import maxpool
from lowbit_hdl.hw.maxpool import MaxPoolUnit
from lowbit_hdl.ir import Conv, MaxPool, Network
from lowbit_hdl.runtime.dtypes import BIPOLAR, INT, UINT
from lowbit_hdl.sim.runner import available_simulators, to_verilog
from lowbit_hdl.sim.stream import pack
from sim.units import phase, run_amaranth, simulate_streams

SIMS = available_simulators()


def same(h: int, w: int, k: int, s: int) -> tuple[int, int, int, int]:
    """TensorFlow "same" padding, written out independently of lowbit_hdl.ir."""
    def axis(n):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        return total // 2, total - total // 2
    return (*axis(h), *axis(w))


def naive_maxpool(x: np.ndarray, k: int, s: int, pads) -> np.ndarray:
    """Max over the real pixels of each window of the padded grid (NHWC), pixel by pixel."""
    n, h, w, c = x.shape
    pt, pb, pl, pr = pads
    oh, ow = (h + pt + pb - k) // s + 1, (w + pl + pr - k) // s + 1
    out = np.empty((n, oh, ow, c), dtype=np.int64)
    for i in range(oh):
        for j in range(ow):
            rows = [r for r in range(i * s - pt, i * s - pt + k) if 0 <= r < h]
            cols = [q for q in range(j * s - pl, j * s - pl + k) if 0 <= q < w]
            out[:, i, j] = x[:, rows][:, :, cols].max(axis=(1, 2))
    return out

# name: (in_shape, kernel, stride, PE, dtype, pads (top, bottom, left, right))
NOPAD = (0, 0, 0, 0)
CONFIGS = {
    "bip_k2s2": ((4, 8, 8), 2, 2, 2, BIPOLAR, NOPAD),
    "u3_k3s2_odd": ((3, 7, 7), 3, 2, 3, UINT(3), NOPAD),  # overlapping windows, PE = C
    "u2_k2s2_odd": ((2, 7, 5), 2, 2, 1, UINT(2), NOPAD),  # last row and column dropped
    "u4_k3s1": ((2, 6, 5), 3, 1, 2, UINT(4), NOPAD),  # stride 1: a pixel is in 3 windows/axis
    "bip_k3s3_pe1": ((3, 7, 8), 3, 3, 1, BIPOLAR, NOPAD),
    # padding: Tiny-YOLO's "same" 2×2 stride-1 pool (one generated column and row), DoReFa's
    # "same" 3×3 stride-2 pools on odd and even sizes (no generated positions), asymmetric
    # explicit padding with generated positions and a stride-1 3×3 "same"
    "u3_k2s1_same": ((4, 5, 6), 2, 1, 2, UINT(3), same(5, 6, 2, 1)),
    "bip_k2s1_same": ((2, 4, 3), 2, 1, 1, BIPOLAR, same(4, 3, 2, 1)),
    "u2_k3s2_same_odd": ((2, 7, 9), 3, 2, 2, UINT(2), same(7, 9, 3, 2)),
    "u2_k3s2_same_even": ((3, 6, 8), 3, 2, 3, UINT(2), same(6, 8, 3, 2)),
    "u4_k3s1_same": ((2, 5, 4), 3, 1, 1, UINT(4), same(5, 4, 3, 1)),
    "bip_k3s2_asym": ((2, 6, 7), 3, 2, 2, BIPOLAR, (2, 2, 0, 2)),
}


def build_case(name: str):
    shape, k, s, pe, dt, pads = CONFIGS[name]
    unit = MaxPoolUnit(shape, k, s, pe, dt, pads)
    c, h, w = shape
    rng = np.random.default_rng(sum(map(ord, name)))
    runs = []
    for frames, stall in ((3, 0.0), (2, 0.3)):
        x = dt.decode(rng.integers(0, 1 << dt.bits, size=(frames, h, w, c)))
        y = maxpool(x, k, s, pads, dt.min)
        assert np.array_equal(y, naive_maxpool(x, k, s, pads))
        ins = [pack(v, dt.bits) for v in dt.encode(x).reshape(-1, pe)]
        outs = [pack(v, dt.bits) for v in dt.encode(y).reshape(-1, pe)]
        checks = {}
        if stall == 0:
            checks = {"cycles": (frames - 1) * unit.cycles_per_frame
                      + unit.last_output_beat() + 1,
                      "period": [len(outs) // frames, unit.cycles_per_frame],
                      # generated padded positions take cycles without accepting input
                      "input_every_cycle": unit.extra == (0, 0)}
        runs.append(phase(ins, outs, stall, **checks))
    return unit, runs, []


@pytest.mark.parametrize("sim", SIMS)
def test_maxpool_cosim(sim):
    simulate_streams({n: build_case(n) for n in CONFIGS}, "maxpool_bundle", sim)


@pytest.mark.parametrize("seed", range(4))
def test_maxpool_random_configs(seed):
    """Random small configurations in Amaranth's simulator (kernel 1, stride > kernel, 1-pixel
    images, PE = 1 … C)."""
    rng = random.Random(seed)
    while True:
        c, h, w = rng.choice([1, 2, 4]), rng.randint(1, 7), rng.randint(1, 7)
        k, s = rng.randint(1, 4), rng.randint(1, 3)
        if k <= min(h, w):
            break
    pe = rng.choice([d for d in range(1, c + 1) if c % d == 0])
    dt = [BIPOLAR, UINT(1), UINT(3), UINT(2)][seed % 4]
    x = dt.decode(np.random.default_rng(seed).integers(0, 1 << dt.bits, size=(2, h, w, c)))
    ins = [pack(v, dt.bits) for v in dt.encode(x).reshape(-1, pe)]
    expect = [pack(v, dt.bits) for v in dt.encode(maxpool(x, k, s)).reshape(-1, pe)]
    got = run_amaranth(MaxPoolUnit((c, h, w), k, s, pe, dt), ins, len(expect), 0.3, seed)
    assert got == expect, f"C,H,W={c, h, w} k={k} s={s} PE={pe} {dt}"


@pytest.mark.parametrize("seed", range(8))
def test_maxpool_random_padded(seed):
    """Random small padded configurations ("same" or explicit asymmetric) in Amaranth's
    simulator, against the golden model and the naive reference."""
    rng = random.Random(100 + seed)
    while True:
        c, h, w = rng.choice([1, 2, 3]), rng.randint(1, 6), rng.randint(1, 6)
        k, s = rng.randint(1, 4), rng.randint(1, 3)
        pads = same(h, w, k, s) if seed % 2 else tuple(rng.randint(0, k - 1) for _ in range(4))
        if k <= min(h + pads[0] + pads[1], w + pads[2] + pads[3]):
            break
    pe = rng.choice([d for d in range(1, c + 1) if c % d == 0])
    dt = [BIPOLAR, UINT(1), UINT(3), UINT(2)][seed % 4]
    x = dt.decode(np.random.default_rng(seed).integers(0, 1 << dt.bits, size=(2, h, w, c)))
    y = maxpool(x, k, s, pads, dt.min)
    assert np.array_equal(y, naive_maxpool(x, k, s, pads))
    ins = [pack(v, dt.bits) for v in dt.encode(x).reshape(-1, pe)]
    expect = [pack(v, dt.bits) for v in dt.encode(y).reshape(-1, pe)]
    got = run_amaranth(MaxPoolUnit((c, h, w), k, s, pe, dt, pads), ins, len(expect), 0.3,
                       seed)
    assert got == expect, f"C,H,W={c, h, w} k={k} s={s} pads={pads} PE={pe} {dt}"


def test_padded_figures():
    """Generated padded positions (cost.pool_extra) of the seed networks' padded pools."""
    yolo = MaxPoolUnit((512, 13, 13), 2, 1, 32, UINT(3), same(13, 13, 2, 1))
    assert yolo.pads == (0, 1, 0, 1) and yolo.out_shape == (512, 13, 13)
    assert yolo.extra == (1, 1) and yolo.cycles_per_frame == 14 * 14 * 512 // 32
    for n in (54, 27):  # DoReFa's 3×3 stride-2 "same" pools: no generated positions
        u = MaxPoolUnit((8, n, n), 3, 2, 8, UINT(2), same(n, n, 3, 2))
        assert u.extra == (0, 0) and u.cycles_per_frame == n * n
        assert u.out_shape == (8, math.ceil(n / 2), math.ceil(n / 2))
    u = MaxPoolUnit((2, 4, 3), 2, 1, 1, BIPOLAR, (0, 1, 0, 1))
    # the last output (3, 2) completes at the generated position (row 4, column 3) of the
    # 5×4 step grid, 2 channel groups per position
    assert u.extra == (1, 1) and u.last_output_beat() == (4 * 4 + 3) * 2 + 1


def test_figures():
    u = MaxPoolUnit((64, 16, 16), 2, 2, 4, UINT(2))
    assert u.cycles_per_frame == 16 * 16 * 64 // 4
    assert u.out_shape == (64, 8, 8) and u.slots == 1
    assert u.buffer_bits == 1 * (8 + 1) * 64 * 2
    assert u.i.payload.shape() == u.o.payload.shape() == ArrayLayout(unsigned(2), 4)
    u3 = MaxPoolUnit((8, 7, 7), 3, 2, 8, BIPOLAR)
    assert u3.out_shape == (8, 3, 3) and u3.slots == 2
    assert u3.last_output_beat() == 6 * 7 + 6  # pixel (6, 6) completes pooled pixel (2, 2)


def test_from_layer():
    net = Network("n", (3, 9, 9), [Conv("c", 8, 3, pe=4, simd=3, act=UINT(2)),
                                   MaxPool("p", 3, 2)], input_dtype=UINT(8))
    u = MaxPoolUnit.from_layer(net.infer()[1])
    assert (u.in_shape, u.kernel, u.stride, u.pe, u.dtype) == ((8, 7, 7), 3, 2, 4, UINT(2))
    assert "module u_from_layer" in to_verilog(u, "u_from_layer")
    with pytest.raises(ValueError, match="needs a MaxPool layer"):
        MaxPoolUnit.from_layer(net.infer()[0])


@pytest.mark.parametrize("kwargs,msg", [
    ({"in_shape": (6, 8, 8), "pe": 4}, "PE=4 does not divide C=6"),
    ({"in_shape": (4, 3, 8), "kernel": 4}, "larger than the input"),
    ({"in_shape": (4, 8, 8), "stride": 0}, "must be ≥ 1"),
    ({"in_shape": (4, 8, 8), "dtype": INT(4)}, "not supported"),
    ({"in_shape": (4, 8, 8), "pads": (0, 2, 0, 0)}, r"each side must be below the kernel 2"),
    ({"in_shape": (4, 8, 8), "pads": (0, 1)}, r"must be \(top, bottom, left, right\)"),
    ({"in_shape": (4, 1, 8), "kernel": 3, "pads": (0, 1, 0, 0)}, "larger than the"),
    ({"in_shape": (4, 8, 8), "pads": (0, -1, 0, 0)}, "bottom pad=-1 must be ≥ 0"),
])
def test_constructor_checks(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        MaxPoolUnit(**kwargs)


@pytest.mark.parametrize("kwargs,msg", [
    ({"in_shape": (4, 8, 8), "pe": "2"}, "PE='2' must be an int"),
    ({"in_shape": (4, 8, 8), "kernel": 2.0}, "kernel=2.0 must be an int"),
    ({"in_shape": (4, 8, 8), "dtype": "UINT2"}, "dtype='UINT2' must be a lowbit_hdl DataType"),
])
def test_constructor_type_checks(kwargs, msg):
    with pytest.raises(TypeError, match=msg):
        MaxPoolUnit(**kwargs)
