# amaranth: UnusedElaboratable=no
"""Top-k: co-simulation against lowbit_hdl.golden.topk on Verilator and Icarus (several
configurations in one build; random values with many ties, random stalls, frames back to back,
exact cycle counts), and constructor checks."""

# (the line above: constructor checks and figure queries build components that are never
# elaborated)
from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.hdl import signed
from amaranth.lib.data import ArrayLayout

from lowbit_hdl.golden import topk
from lowbit_hdl.hw.topk import TopKUnit
from lowbit_hdl.ir import FC, Network, TopK
from lowbit_hdl.runtime.dtypes import BIPOLAR, INT, UINT
from lowbit_hdl.sim.runner import available_simulators, to_verilog
from lowbit_hdl.sim.stream import pack
from sim.units import phase, run_amaranth, simulate_streams

SIMS = available_simulators()

# name: (n, fold, k, dtype, value range)
CONFIGS = {
    "i5_f4_k3_ties": (20, 4, 3, INT(5), (-2, 2)),
    "u3_f1_argmax": (7, 1, 1, UINT(3), (0, 3)),
    "u4_f4_k3_onebeat": (4, 4, 3, UINT(4), (0, 15)),  # k > beats per frame (1)
    "i8_f5_sortall": (10, 5, 10, INT(8), (-3, 3)),  # k = n
    "i6_f3_k4": (24, 3, 4, INT(6), (-32, 31)),
}


def build_case(name: str):
    n, fold, k, dt, (lo, hi) = CONFIGS[name]
    unit = TopKUnit(n, fold, k, dt)
    rng = np.random.default_rng(sum(map(ord, name)))
    runs = []
    for frames, stall in ((4, 0.0), (3, 0.3)):
        x = rng.integers(lo, hi + 1, size=(frames, n))
        ins = [pack(v, dt.bits) for v in dt.encode(x).reshape(-1, fold)]
        outs = topk(x, k).reshape(-1)
        checks = {}
        if stall == 0:
            checks = {"cycles": frames * unit.cycles_per_frame + unit.latency,
                      "period": [k, unit.cycles_per_frame]}
        runs.append(phase(ins, outs, stall, **checks))
    return unit, runs, []


@pytest.mark.parametrize("sim", SIMS)
def test_topk_cosim(sim):
    simulate_streams({n: build_case(n) for n in CONFIGS}, "topk_bundle", sim)


@pytest.mark.parametrize("seed", range(4))
def test_topk_random_configs(seed):
    """Random small configurations in Amaranth's simulator, half of them with values in
    {0, 1} (ties everywhere)."""
    rng = random.Random(seed)
    fold = rng.randint(1, 6)
    n = fold * rng.randint(1, 6)
    k = rng.randint(1, n)
    dt = [INT(4), UINT(3), INT(2), UINT(1)][seed % 4]
    lo, hi = (0, 1) if seed % 2 else (dt.min, dt.max)
    x = np.random.default_rng(seed).integers(lo, hi + 1, size=(3, n))
    ins = [pack(v, dt.bits) for v in dt.encode(x).reshape(-1, fold)]
    expect = [int(v) for v in topk(x, k).reshape(-1)]
    got = run_amaranth(TopKUnit(n, fold, k, dt), ins, len(expect), 0.3, seed)
    assert got == expect, f"n={n} fold={fold} k={k} {dt}"


def test_figures():
    u = TopKUnit(100, 10, 5, INT(12))
    assert (u.idx_bits, u.beats, u.lane_len, u.cycles_per_frame, u.latency) == (7, 10, 5, 10, 5)
    assert u.i.payload.shape() == ArrayLayout(signed(12), 10) and len(u.o.payload) == 7
    u1 = TopKUnit(16, 16, 2, UINT(4))
    assert (u1.beats, u1.lane_len, u1.cycles_per_frame, u1.latency) == (1, 1, 2, 1)
    assert TopKUnit(1, 1, 1, UINT(2)).idx_bits == 1


def test_from_layer():
    net = Network("n", (1, 4, 4), [FC("f", 10, pe=5, simd=4, act=None), TopK("t", 3)],
                  input_dtype=BIPOLAR)
    info = net.infer()[1]
    u = TopKUnit.from_layer(info)
    assert (u.n, u.fold, u.k, u.dtype) == (10, 5, 3, info.in_dtype)
    assert u.idx_bits == info.out_dtype.bits
    assert "module u_from_layer" in to_verilog(u, "u_from_layer")
    with pytest.raises(ValueError, match="needs a TopK layer"):
        TopKUnit.from_layer(net.infer()[0])


@pytest.mark.parametrize("args,msg", [
    ((10, 3, 1, INT(4)), "fold=3 does not divide n=10"),
    ((10, 5, 11, INT(4)), "k=11 must be in 1..n=10"),
    ((10, 5, 0, INT(4)), "k=0 must be ≥ 1"),
    ((10, 5, 1, BIPOLAR), "not supported"),
])
def test_constructor_checks(args, msg):
    with pytest.raises(ValueError, match=msg):
        TopKUnit(*args)


@pytest.mark.parametrize("args,msg", [
    ((10.0, 5, 1, INT(4)), "n=10.0 must be an int"),
    ((10, 5, None, INT(4)), "k=None must be an int"),
    ((10, 5, 1, "INT4"), "dtype='INT4' must be a lowbit_hdl DataType"),
])
def test_constructor_type_checks(args, msg):
    with pytest.raises(TypeError, match=msg):
        TopKUnit(*args)
