"""Small runner helper for module testbenches: elaborate an Amaranth component and run one of
the cocotb testbench modules of this folder on Verilator or Icarus (builds cached by Verilog
hash under ``sim_build/``; a failing simulation raises ``lowbit_hdl.cosim.CosimError``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lowbit_hdl.cosim import available_simulators, run_cocotb, to_verilog

__all__ = ["simulate", "SIM_DIR", "simulators"]

SIM_DIR = Path(__file__).resolve().parent


def simulators() -> list[str]:
    """Simulators available on this machine (for pytest parametrisation)."""
    return available_simulators()


def simulate(component, toplevel: str, testbench: str, config: dict[str, Any],
             simulator: str = "verilator", seed: int = 1) -> None:
    """Run ``sim/<testbench>.py`` against ``component`` elaborated as ``toplevel``."""
    run_cocotb(to_verilog(component, toplevel), toplevel, testbench, SIM_DIR, config,
               simulator=simulator, seed=seed)
