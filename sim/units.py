"""The cocotb benches of the hardware library's modules (``tb_*.py`` in this folder) and the
helpers that run them; used by ``tests/`` only.

Several units of one kind go into one top level (:class:`Bundle`, one simulator build per
configuration set): unit ``k`` gets the ports ``k_i__*`` and ``k_o__*`` (and ``k_w__*`` when
it has a weight stream ``w``). A unit is checked
phase by phase (:func:`phase`): input words, expected output words, random stalls on both
sides and optional cycle checks. :class:`WordFedMVTU` is an MVTU fed with DDR words through
a width converter. :func:`simulate_units` runs ``tb_mvtu`` (MVTU and threshold
units), :func:`simulate_streams` runs ``tb_stream`` (sliding window, pool, top-k, FIFO, width
converter) and :func:`run_amaranth` (:func:`run_amaranth_timed` with cycles) is the quick path
through Amaranth's own simulator.
Simulator builds and runs go through :func:`lowbit_hdl.sim.runner.run_cocotb`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from amaranth.hdl import Module, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lowbit_hdl.hw.dwc import WidthConverter
from lowbit_hdl.hw.mvtu import MVTU
from lowbit_hdl.runtime.ddr import WORD_BITS, beat_bits, converter_geometry
from lowbit_hdl.sim.runner import run_cocotb, to_verilog

__all__ = ["Bundle", "WordFedMVTU", "phase", "simulate", "simulate_units", "simulate_streams",
           "run_amaranth", "run_amaranth_timed", "SIM_DIR"]

SIM_DIR = Path(__file__).resolve().parent


def simulate(component, toplevel: str, testbench: str, config: dict[str, Any],
             simulator: str = "verilator", seed: int = 1, testcase: str | None = None) -> None:
    """Run ``sim/<testbench>.py`` (only its test ``testcase`` if given) against ``component``
    elaborated as ``toplevel``."""
    run_cocotb(to_verilog(component, toplevel), toplevel, testbench, SIM_DIR, config,
               simulator=simulator, seed=seed, testcase=testcase)


class Bundle(wiring.Component):
    """Wraps ``units`` (name → component with stream ports ``i`` and ``o``, and ``w`` if it
    has one)."""

    def __init__(self, units: dict[str, wiring.Component]) -> None:
        self.units = dict(units)
        members = {}
        for k, u in self.units.items():
            if not k.isidentifier():
                raise ValueError(f"unit name {k!r} must be an identifier")
            members[f"{k}_i"] = In(stream.Signature(u.i.payload.shape()))
            members[f"{k}_o"] = Out(stream.Signature(u.o.payload.shape()))
            if "w" in u.signature.members:
                members[f"{k}_w"] = In(stream.Signature(u.w.payload.shape()))
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        for k, u in self.units.items():
            m.submodules[k] = u
            wiring.connect(m, wiring.flipped(getattr(self, f"{k}_i")), u.i)
            wiring.connect(m, wiring.flipped(getattr(self, f"{k}_o")), u.o)
            if "w" in u.signature.members:
                wiring.connect(m, wiring.flipped(getattr(self, f"{k}_w")), u.w)
        return m


class WordFedMVTU(wiring.Component):
    """An MVTU with ``weight_source="stream"`` whose weights arrive as ``word_bits``-bit DDR
    words (:func:`lowbit_hdl.runtime.ddr.pack_words`) through the width converter of
    :func:`lowbit_hdl.runtime.ddr.converter_geometry`.

    Ports ``i`` and ``o`` are the MVTU's; ``w`` takes the words (element 0 in the low bits).
    ``pe`` and ``out_bits`` are the MVTU's (for :func:`simulate_units`).
    """

    def __init__(self, unit: MVTU, word_bits: int = WORD_BITS) -> None:
        if unit.weight_source != "stream":
            raise ValueError("WordFedMVTU needs an MVTU with weight_source='stream'")
        self.unit = unit
        self.dwc = WidthConverter(*converter_geometry(
            beat_bits(unit.weight_dtype, unit.pe, unit.simd), word_bits))
        self.pe, self.out_bits = unit.pe, unit.out_bits
        super().__init__({"i": In(stream.Signature(unit.i.payload.shape())),
                          "w": In(stream.Signature(self.dwc.i.payload.shape())),
                          "o": Out(stream.Signature(unit.o.payload.shape()))})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.mvtu, m.submodules.dwc = self.unit, self.dwc
        wiring.connect(m, wiring.flipped(self.i), self.unit.i)
        wiring.connect(m, wiring.flipped(self.o), self.unit.o)
        wiring.connect(m, wiring.flipped(self.w), self.dwc.i)
        w, d = self.unit.w, self.dwc.o
        m.d.comb += [w.valid.eq(d.valid), d.ready.eq(w.ready),
                     w.payload.as_value().eq(d.payload.as_value())]
        return m


def phase(inputs, expected, stall: float = 0.0, weights: Sequence[int] | None = None,
          **checks: Any) -> dict:
    """One phase: input and expected output words, the same stall probability on every side,
    optional weight-stream words (port ``w``, tb_mvtu) and optional checks (``cycles``,
    ``period``, ``input_every_cycle``; see tb_stream)."""
    ph = {"inputs": [int(v) for v in inputs], "expected": [int(v) for v in expected],
          "stall_in": stall, "stall_out": stall, **checks}
    if weights is not None:
        ph.update(weights=[int(v) for v in weights], stall_w=stall)
    return ph


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
