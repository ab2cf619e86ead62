# amaranth: UnusedElaboratable=no
"""Max-pool: co-simulation against lowbit_hdl.golden.maxpool on Verilator and Icarus (several
configurations in one build; random data, random stalls, frames back to back, one input beat
per cycle and exact cycle counts), and constructor checks."""

# (the line above: constructor checks and figure queries build components that are never
# elaborated)
from __future__ import annotations

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

# name: (in_shape, kernel, stride, PE, dtype)
CONFIGS = {
    "bip_k2s2": ((4, 8, 8), 2, 2, 2, BIPOLAR),
    "u3_k3s2_odd": ((3, 7, 7), 3, 2, 3, UINT(3)),  # overlapping windows, PE = C
    "u2_k2s2_odd": ((2, 7, 5), 2, 2, 1, UINT(2)),  # last row and column dropped
    "u4_k3s1": ((2, 6, 5), 3, 1, 2, UINT(4)),  # stride 1: a pixel is in 3 windows per axis
    "bip_k3s3_pe1": ((3, 7, 8), 3, 3, 1, BIPOLAR),
}


def build_case(name: str):
    shape, k, s, pe, dt = CONFIGS[name]
    unit = MaxPoolUnit(shape, k, s, pe, dt)
    c, h, w = shape
    rng = np.random.default_rng(sum(map(ord, name)))
    runs = []
    for frames, stall in ((3, 0.0), (2, 0.3)):
        x = dt.decode(rng.integers(0, 1 << dt.bits, size=(frames, h, w, c)))
        y = maxpool(x, k, s)
        ins = [pack(v, dt.bits) for v in dt.encode(x).reshape(-1, pe)]
        outs = [pack(v, dt.bits) for v in dt.encode(y).reshape(-1, pe)]
        checks = {}
        if stall == 0:
            checks = {"cycles": (frames - 1) * unit.cycles_per_frame
                      + unit.last_output_beat() + 1,
                      "period": [len(outs) // frames, unit.cycles_per_frame],
                      "input_every_cycle": True}
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
