# amaranth: UnusedElaboratable=no
"""Stream FIFO: co-simulation on Verilator and Icarus (random words, random stalls, one beat per
cycle with a latency of 2), capacity under back-pressure (Amaranth simulator), constructor
checks."""

# (the line above: constructor checks and figure queries build components that are never
# elaborated)
from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from lowbit_hdl.hw.fifo import StreamFIFO
from lowbit_hdl.hw.skid import SkidBuffer
from lowbit_hdl.sim.runner import available_simulators
from sim.units import phase, simulate_streams

SIMS = available_simulators()

# name: (unit, beats per phase)
CONFIGS = {
    "w8_d5": (lambda: StreamFIFO(8, 5), 200),
    "w3_d2_regs": (lambda: StreamFIFO(3, 2, "registers"), 150),
    "w20_d16_block": (lambda: StreamFIFO(20, 16, "block"), 150),
    "skid6": (lambda: SkidBuffer(6), 150),
}


def build_case(name: str):
    make, n = CONFIGS[name]
    unit = make()
    rng = random.Random(name)
    runs = []
    for stall in (0.0, 0.3, 0.6):
        words = [rng.getrandbits(unit.width) for _ in range(n)]
        latency = StreamFIFO.latency if isinstance(unit, StreamFIFO) else 1
        checks = {"cycles": n - 1 + latency, "input_every_cycle": True} if stall == 0 else {}
        runs.append(phase(words, words, stall, **checks))
    return unit, runs, []


@pytest.mark.parametrize("sim", SIMS)
def test_fifo_cosim(sim):
    simulate_streams({n: build_case(n) for n in CONFIGS}, "fifo_bundle", sim)


@pytest.mark.parametrize("depth", [2, 3, 7])
def test_capacity_and_order_under_backpressure(depth):
    """With the sink stalled the FIFO takes exactly ``depth + 1`` beats, ``i.ready`` then stays
    low, and the beats come out in order once the sink is ready."""
    dut = StreamFIFO(8, depth)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    got: list[int] = []

    async def bench(ctx):
        accepted = 0
        ctx.set(dut.o.ready, 0)
        for _ in range(depth + 6):
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, 100 + accepted)
            if ctx.get(dut.i.ready):
                accepted += 1
            await ctx.tick()
        ctx.set(dut.i.valid, 0)
        assert accepted == dut.capacity == depth + 1
        ctx.set(dut.o.ready, 1)
        for _ in range(depth + 6):
            if ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()
    assert got == [100 + j for j in range(depth + 1)]


@pytest.mark.parametrize("args,msg", [
    ((8, 1), "depth=1 must be ≥ 2"),
    ((0, 4), "width=0 must be ≥ 1"),
    ((8, 4, "ultra"), "ram_style"),
])
def test_constructor_checks(args, msg):
    with pytest.raises(ValueError, match=msg):
        StreamFIFO(*args)


@pytest.mark.parametrize("make,exc,msg", [
    (lambda: StreamFIFO(8.0, 4), TypeError, "width=8.0 must be an int"),
    (lambda: StreamFIFO(8, 4, None), TypeError, "ram_style=None must be a str"),
    (lambda: SkidBuffer("8"), TypeError, "SkidBuffer: shape='8' must be a bit count"),
    (lambda: SkidBuffer(0), ValueError, "SkidBuffer: width=0 must be ≥ 1"),
])
def test_constructor_type_checks(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make()
