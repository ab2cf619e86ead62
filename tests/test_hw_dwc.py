# amaranth: UnusedElaboratable=no
"""Width converter: co-simulation on Verilator and Icarus for many ratios (random elements,
random stalls, element order, exact cycles max(N/in, N/out)), buffer sizes, constructor
checks."""

# (the line above: constructor checks and figure queries build components that are never
# elaborated)
from __future__ import annotations

import math
import random

import numpy as np
import pytest
from amaranth.hdl import unsigned
from amaranth.lib.data import ArrayLayout

from lowbit_hdl.hw.dwc import WidthConverter
from lowbit_hdl.sim.runner import available_simulators
from lowbit_hdl.sim.stream import pack
from sim.units import phase, run_amaranth, simulate_streams

SIMS = available_simulators()

# name: (elem_bits, in_elems, out_elems)
CONFIGS = {
    "b1_8to49": (1, 8, 49),
    "b1_16to32": (1, 16, 32),
    "b2_32to4": (2, 32, 4),
    "b1_1to8": (1, 1, 8),
    "b3_5to1": (3, 5, 1),
    "b2_3to2": (2, 3, 2),
    "b4_2to3": (4, 2, 3),
    "b8_4to6": (8, 4, 6),
    "b2_4to4_wire": (2, 4, 4),
}


def build_case(name: str):
    eb, a, b = CONFIGS[name]
    lcm = math.lcm(a, b)
    n = lcm * max(2, math.ceil(20 * max(a, b) / lcm))  # ≥ 20 beats on the busier side
    unit = WidthConverter(eb, a, b, frame_elems=lcm)
    rng = np.random.default_rng(sum(map(ord, name)))
    runs = []
    for stall in (0.0, 0.3):
        x = rng.integers(0, 1 << eb, size=n)
        ins = [pack(v, eb) for v in x.reshape(-1, a)]
        outs = [pack(v, eb) for v in x.reshape(-1, b)]
        checks = {"cycles": unit.cycles(n)} if stall == 0 else {}
        runs.append(phase(ins, outs, stall, **checks))
    return unit, runs, []


@pytest.mark.parametrize("sim", SIMS)
def test_dwc_cosim(sim):
    simulate_streams({n: build_case(n) for n in CONFIGS}, "dwc_bundle", sim)


@pytest.mark.parametrize("seed", range(4))
def test_dwc_random_ratios(seed):
    """Random ratios up to 12:1 and 1:12 in Amaranth's simulator."""
    rng = random.Random(seed)
    a, b = rng.sample(range(1, 13), 2)
    eb = rng.randint(1, 3)
    n = math.lcm(a, b) * rng.randint(2, 4)
    x = np.random.default_rng(seed).integers(0, 1 << eb, size=n)
    ins = [pack(v, eb) for v in x.reshape(-1, a)]
    expect = [pack(v, eb) for v in x.reshape(-1, b)]
    assert run_amaranth(WidthConverter(eb, a, b), ins, len(expect), 0.3, seed) == expect, (a, b)


def test_buffer_sizes():
    # a multiple of the larger side, at least in + out + min(in, out) - 1 elements
    assert WidthConverter(1, 8, 49).buffer_elems == 98
    assert WidthConverter(1, 16, 32).buffer_elems == 64
    assert WidthConverter(1, 32, 4).buffer_elems == 64
    assert WidthConverter(1, 1, 8).buffer_elems == 16
    assert WidthConverter(1, 5, 1).buffer_elems == 10
    assert WidthConverter(1, 3, 2).buffer_elems == 6
    assert WidthConverter(1, 4, 4).buffer_elems == 0
    u = WidthConverter(3, 5, 2)
    assert u.i.payload.shape() == ArrayLayout(unsigned(3), 5)
    assert u.o.payload.shape() == ArrayLayout(unsigned(3), 2)
    assert u.cycles(100) == 50


@pytest.mark.parametrize("args,msg", [
    ((1, 8, 49, 100), r"frame_elems=100 is not a multiple of lcm\(in_elems=8, out_elems=49\)"),
    ((1, 0, 4), "must be ≥ 1"),
    ((0, 2, 4), "elem_bits=0"),
])
def test_constructor_checks(args, msg):
    with pytest.raises(ValueError, match=msg):
        WidthConverter(*args)


@pytest.mark.parametrize("args,msg", [
    (("1", 2, 4), "elem_bits='1' must be an int"),
    ((1, 2, 4.0), "out_elems=4.0 must be an int"),
    ((1, 2, 4, 8.0), "frame_elems=8.0 must be an int"),
])
def test_constructor_type_checks(args, msg):
    with pytest.raises(TypeError, match=msg):
        WidthConverter(*args)
