"""The cocotb benches of the hardware library's modules (``tb_*.py`` in this folder) and the
helpers that run them; used by ``tests/`` only.

Several units of one kind go into one top level (:class:`Bundle`, one simulator build per
configuration set): unit ``k`` gets the ports ``k_i__*`` and ``k_o__*``. A unit is checked
phase by phase (:func:`phase`): input words, expected output words, random stalls on both
sides and optional cycle checks. :func:`simulate_units` runs ``tb_mvtu`` (MVTU and threshold
units), :func:`simulate_streams` runs ``tb_stream`` (sliding window, pool, top-k, FIFO, width
converter) and :func:`run_amaranth` (:func:`run_amaranth_timed` with cycles) is the quick path
through Amaranth's own simulator.
Simulator builds and runs go through :func:`lowbit_hdl.sim.runner.run_cocotb`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from amaranth.hdl import Module, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lowbit_hdl.sim.runner import run_cocotb, to_verilog

__all__ = ["Bundle", "phase", "simulate", "simulate_units", "simulate_streams", "run_amaranth",
           "run_amaranth_timed", "SIM_DIR"]

SIM_DIR = Path(__file__).resolve().parent


def simulate(component, toplevel: str, testbench: str, config: dict[str, Any],
             simulator: str = "verilator", seed: int = 1, testcase: str | None = None) -> None:
    """Run ``sim/<testbench>.py`` (only its test ``testcase`` if given) against ``component``
    elaborated as ``toplevel``."""
    run_cocotb(to_verilog(component, toplevel), toplevel, testbench, SIM_DIR, config,
               simulator=simulator, seed=seed, testcase=testcase)


class Bundle(wiring.Component):
    """Wraps ``units`` (name → component with stream ports ``i`` and ``o``)."""

    def __init__(self, units: dict[str, wiring.Component]) -> None:
        self.units = dict(units)
        members = {}
        for k, u in self.units.items():
            if not k.isidentifier():
                raise ValueError(f"unit name {k!r} must be an identifier")
            members[f"{k}_i"] = In(stream.Signature(u.i.payload.shape()))
            members[f"{k}_o"] = Out(stream.Signature(u.o.payload.shape()))
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        for k, u in self.units.items():
            m.submodules[k] = u
            wiring.connect(m, wiring.flipped(getattr(self, f"{k}_i")), u.i)
            wiring.connect(m, wiring.flipped(getattr(self, f"{k}_o")), u.o)
        return m


def phase(inputs, expected, stall: float = 0.0, **checks: Any) -> dict:
    """One phase: input and expected output words, the same stall probability on both sides,
    and optional checks (``cycles``, ``period``, ``input_every_cycle``; see tb_stream)."""
    return {"inputs": [int(v) for v in inputs], "expected": [int(v) for v in expected],
            "stall_in": stall, "stall_out": stall, **checks}


def simulate_units(units: dict[str, tuple[wiring.Component, list[dict]]], toplevel: str,
                   simulator: str, out_signed: dict[str, bool] | None = None) -> None:
    """Run the ``tb_mvtu`` stream check on every unit (name → (component, phases)) inside
    one :class:`Bundle` (one build per simulator)."""
    cfg = {}
    for k, (u, runs) in units.items():
        cfg[k] = {"runs": runs, "out_bits": u.out_bits, "out_count": u.pe,
                  "out_signed": bool((out_signed or {}).get(k, False))}
    simulate(Bundle({k: u for k, (u, _) in units.items()}), toplevel, "tb_mvtu",
             {"units": cfg}, simulator)


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
    return run_amaranth_timed(dut, inputs, n_out, stall, seed, max_cycles)[0]


def run_amaranth_timed(dut: wiring.Component, inputs: list[int], n_out: int,
                       stall: float = 0.3, seed: int = 0, max_cycles: int | None = None
                       ) -> tuple[list[int], int]:
    """:func:`run_amaranth` that also returns the cycles from the start (the first accepted
    input, or the cycle before the first output if that is earlier) to the last output, as
    ``tb_stream``'s ``cycles`` check counts them."""
    import random

    from amaranth.sim import Simulator

    limit = max_cycles if max_cycles is not None else 20 * (len(inputs) + n_out) + 100
    out: list[int] = []
    first_in: list[int] = []
    out_at: list[int] = []
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def bench(ctx):
        rng = random.Random(seed)
        i = cycles = 0
        while len(out) < n_out:
            valid = i < len(inputs) and rng.random() >= stall
            ready = rng.random() >= stall
            ctx.set(dut.i.valid, valid)
            if valid:  # a flat word, whatever the payload's layout (element 0 lowest)
                ctx.set(Value.cast(dut.i.payload), inputs[i])
            ctx.set(dut.o.ready, ready)
            _, _, i_ready, o_valid, o_payload = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, Value.cast(dut.o.payload))
            if valid and i_ready:
                i += 1
                if not first_in:
                    first_in.append(cycles)
            if ready and o_valid:
                out.append(int(o_payload))
                out_at.append(cycles)
            cycles += 1
            if cycles > limit:
                raise TimeoutError(f"{len(out)} of {n_out} output beats after {cycles} cycles")

    sim.add_testbench(bench)
    sim.run()
    if not out_at:
        return out, 0
    return out, out_at[-1] - min(first_in + [out_at[0] - 1])
