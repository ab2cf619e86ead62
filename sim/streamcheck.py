"""Test helper for the stream units: put several configurations in one top level
(:class:`sim.bundle.Bundle`, one simulator build) and check them with ``sim/tb_stream.py``."""

from __future__ import annotations

from typing import Any

from amaranth.lib import wiring

from .bundle import Bundle
from .runner import simulate

__all__ = ["phase", "simulate_streams", "run_amaranth"]


def phase(inputs, expected, stall: float = 0.0, **checks: Any) -> dict:
    """One phase: input and expected output words, the same stall probability on both sides,
    and optional checks (``cycles``, ``period``, ``input_every_cycle``; see tb_stream)."""
    return {"inputs": [int(v) for v in inputs], "expected": [int(v) for v in expected],
            "stall_in": stall, "stall_out": stall, **checks}


def simulate_streams(units: dict[str, tuple[wiring.Component, list[dict], list[int]]],
                     toplevel: str, simulator: str) -> None:
    """Check every unit (name → (component, phases, allowed tail words)) in one build."""
    cfg = {k: {"runs": runs, "tail": [int(v) for v in tail]}
           for k, (_, runs, tail) in units.items()}
    simulate(Bundle({k: u for k, (u, _, _) in units.items()}), toplevel, "tb_stream",
             {"units": cfg}, simulator)


def run_amaranth(dut: wiring.Component, inputs: list[int], n_out: int, stall: float = 0.3,
                 seed: int = 0, max_cycles: int | None = None) -> list[int]:
    """Drive ``dut.i`` with ``inputs`` and collect ``n_out`` beats from ``dut.o`` in Amaranth's
    Python simulator (no build: for quick sweeps over many small configurations), with random
    valid/ready stalls of probability ``stall``. Raises ``TimeoutError`` past ``max_cycles``."""
    import random

    from amaranth.sim import Simulator

    limit = max_cycles if max_cycles is not None else 20 * (len(inputs) + n_out) + 100
    out: list[int] = []
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def bench(ctx):
        rng = random.Random(seed)
        i = cycles = 0
        while len(out) < n_out:
            valid = i < len(inputs) and rng.random() >= stall
            ready = rng.random() >= stall
            ctx.set(dut.i.valid, valid)
            if valid:
                ctx.set(dut.i.payload, inputs[i])
            ctx.set(dut.o.ready, ready)
            _, _, i_ready, o_valid, o_payload = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.payload)
            i += int(valid and i_ready)
            if ready and o_valid:
                out.append(int(o_payload))
            cycles += 1
            if cycles > limit:
                raise TimeoutError(f"{len(out)} of {n_out} output beats after {cycles} cycles")

    sim.add_testbench(bench)
    sim.run()
    return out
