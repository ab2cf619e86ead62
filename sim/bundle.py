"""Test helper: several stream units in one top level, so that one simulator build covers
many configurations. Unit ``k`` gets the ports ``k_i__*`` and ``k_o__*``."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Bundle"]


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


def phase(inputs: list[int], expected: list[int], stall: float = 0.0,
          cycles: int | None = None) -> dict:
    """One testbench phase (see ``sim/tb_mvtu.py``): same stall probability on both sides."""
    return {"inputs": [int(v) for v in inputs], "expected": [int(v) for v in expected],
            "stall_in": stall, "stall_out": stall, "cycles": cycles}


def simulate_units(units: dict[str, tuple[wiring.Component, list[dict]]], toplevel: str,
                   simulator: str, out_signed: dict[str, bool] | None = None) -> None:
    """Run the ``tb_mvtu`` stream check on every unit (name → (component, phases)) inside
    one :class:`Bundle` (one build per simulator)."""
    from .runner import simulate

    cfg = {}
    for k, (u, runs) in units.items():
        cfg[k] = {"runs": runs, "out_bits": u.out_bits, "out_count": u.pe,
                  "out_signed": bool((out_signed or {}).get(k, False))}
    simulate(Bundle({k: u for k, (u, _) in units.items()}), toplevel, "tb_mvtu",
             {"units": cfg}, simulator)
