"""The build flow: stitching a network into one AXI-Stream accelerator, auto-folding,
resource estimates, Verilog + Vivado project generation, Yosys synthesis and whole-network
co-simulation.

* :mod:`.plan` — the pipeline's stages, stream widths, converters and FIFO depths;
* :mod:`.top` — the Amaranth top level (:class:`NetworkTop`);
* :mod:`.folding` — folding files and the auto-folder;
* :mod:`.resources` — analytic LUT/FF/BRAM/DSP estimate and the xc7z020 fit check;
* :mod:`.vivado` — Verilog wrapper and Vivado Tcl for the PYNQ-Z2;
* :mod:`.synth` — Yosys ``synth_xilinx`` counts;
* :mod:`.build` — ``build`` (the ``python -m lowbit_hdl build`` command's engine);
* :mod:`.simulate` — :func:`simulate_network` (``python -m lowbit_hdl sim``).
"""

from .build import BuildResult, build
from .folding import (
    FoldingResult,
    apply_folding,
    auto_fold,
    fold_for_budget,
    get_folding,
    load_folding,
    save_folding,
)
from .plan import IP_NAMES, Plan, Stage, plan_network
from .resources import Estimate, Resources, estimate_network, estimate_plan, fit_check
from .simulate import SimResult, simulate_network
from .top import TOP_NAME, NetworkTop, StitchError, elaborate_verilog

__all__ = [
    "BuildResult", "build",
    "FoldingResult", "apply_folding", "auto_fold", "fold_for_budget", "get_folding",
    "load_folding", "save_folding",
    "IP_NAMES", "Plan", "Stage", "plan_network",
    "Estimate", "Resources", "estimate_network", "estimate_plan", "fit_check",
    "SimResult", "simulate_network",
    "TOP_NAME", "NetworkTop", "StitchError", "elaborate_verilog",
]
