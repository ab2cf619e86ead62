"""The build flow: stitching a network into one AXI-Stream accelerator, auto-folding,
resource estimates, Verilog + Vivado project generation, Yosys synthesis and the deployment
bundle (simulation is :mod:`lowbit_hdl.sim`).

* :mod:`.plan` — the pipeline's stages, stream widths, converters and FIFO depths;
* :mod:`.top` — the Amaranth top level (:class:`NetworkTop`);
* :mod:`.folding` — folding files and the auto-folder (foldings and weight memories searched
  together, :func:`search`);
* :mod:`.sweep` — ``sweep``: the auto-folder's design space, printed and plotted;
* :mod:`.resources` — analytic LUT/FF/BRAM/DSP estimate and the xc7z020 fit check;
* :mod:`.vivado` — Verilog wrapper and Vivado Tcl for the PYNQ-Z2;
* :mod:`.synth` — Yosys ``synth_xilinx`` counts;
* :mod:`.deploy` — the PYNQ deployment bundle;
* :mod:`.build` — ``build`` (the ``python -m lowbit_hdl build`` command's engine).
"""

from .build import BuildResult, build
from .folding import (
    Design,
    DesignSpace,
    Folding,
    FoldingResult,
    LayerFolding,
    apply_folding,
    auto_fold,
    fold_for_budget,
    get_folding,
    load_folding,
    save_folding,
    search,
)
from .plan import IP_NAMES, Plan, Stage, StageKind, plan_network
from .resources import Estimate, Resources, estimate_network, estimate_plan, fit_check
from .top import TOP_NAME, NetworkTop, StitchError, elaborate_verilog

__all__ = [
    "BuildResult", "build",
    "Folding", "LayerFolding", "FoldingResult", "apply_folding", "auto_fold", "fold_for_budget",
    "get_folding", "load_folding", "save_folding", "search", "Design", "DesignSpace",
    "IP_NAMES", "Plan", "Stage", "StageKind", "plan_network",
    "Estimate", "Resources", "estimate_network", "estimate_plan", "fit_check",
    "TOP_NAME", "NetworkTop", "StitchError", "elaborate_verilog",
]
