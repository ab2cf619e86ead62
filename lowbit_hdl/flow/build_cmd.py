"""``python -m lowbit_hdl build NET [--out DIR] [--clock-mhz F] [--target-fps N | --folding
FILE | --lut-budget N --bram-budget N] [--memory L=STYLE,…] [--part PART] [--synth]
[--random-weights [--seed S]] [--dry-run]``.

Generates the Verilog, the Vivado flow, ``layout.json``, ``report.json`` and the network
files into the output folder (see :mod:`lowbit_hdl.flow.build`) and prints the report table.
Every input is checked before anything is written; ``--dry-run`` stops there and prints the
report of the estimate.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cost import ddr_placement
from ..errors import UsageError, layer_names, nonnegative_float, positive_float, positive_int
from ..ir import Network
from ..netfile import load_network
from .build import ARCHS, build, check_out_dir, plan_design
from .folding import load_folding, load_placements
from .report import format_report
from .resources import device_for_part

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", help="networks/<net>.py topology or saved .npz network")
    p.add_argument("--out", type=Path, default=None, help="output folder (build/<net>)")
    p.add_argument("--clock-mhz", type=positive_float, default=100.0,
                   help="clock (FCLK_CLK0) in MHz (default 100)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--target-fps", type=positive_float, default=None,
                   help="auto-fold every layer to reach this many frames/s")
    g.add_argument("--folding", type=Path, default=None,
                   help="folding JSON {layer: {pe, simd}} to apply")
    g.add_argument("--lut-budget", type=positive_int, default=None,
                   help="auto-fold for the highest frame rate within this many LUTs")
    p.add_argument("--bram-budget", type=nonnegative_float, default=None,
                   help="with --lut-budget (or alone): BRAM36 budget for auto-folding")
    p.add_argument("--memory", type=memory_styles, default=None, metavar="L=STYLE,…",
                   help="weight-memory style of Conv/FC layers (auto, block, distributed, "
                        "logic), e.g. conv3=block,fc0=logic; overrides the auto-folder's "
                        "choice and a --folding file's ram_style")
    p.add_argument("--part", default="xc7z020clg400-1", help="FPGA part (PYNQ-Z2 default)")
    p.add_argument("--synth", action="store_true",
                   help="run Yosys synth_xilinx for real LUT/FF/BRAM/DSP counts")
    p.add_argument("--random-weights", action="store_true",
                   help="give layers without trained weights random ones (from --seed); "
                        "without it such a network is an error")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random weights (--random-weights)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the inputs and print the report (estimate) without writing "
                        "anything")
    p.add_argument("--force-rtl", action="store_true",
                   help="write RTL and Vivado files even when the design does not fit")
    p.add_argument("--no-lint", action="store_true", help="skip the Verilator lint")
    p.add_argument("--samples", type=Path, default=None,
                   help="test-set file whose first images go into the deployment bundle "
                        "(default: networks/data/mnist_samples.npz for 1×28×28 inputs, "
                        "else random images)")
    p.add_argument("--no-deploy", action="store_true",
                   help="do not write the deployment bundle (deploy/)")
    p.add_argument("--arch", choices=ARCHS, default="dataflow",
                   help="dataflow: every weight on chip (default); hybrid: the weights of "
                        "--ddr-layers (default: the layers that do not fit the BRAM) are "
                        "read from DDR; engine: the middle layers on one runtime-configured "
                        "engine, layer after layer (weights and thresholds from DDR); auto: "
                        "dataflow when it fits, else hybrid when it fits, else engine")
    p.add_argument("--ddr-layers", type=layer_names, default=None, metavar="A,B,…",
                   help="hybrid: the Conv/FC layers whose weights live in DDR (default with "
                        "--arch hybrid: the layers the --folding file's \"placements\" put "
                        "in DDR, else the block-RAM rule)")
    p.add_argument("--hp-ports", type=int, choices=(1, 2, 4), default=1,
                   help="hybrid: Zynq HP ports for the weight reads (default 1)")
    p.add_argument("--engine-lanes", type=positive_int, nargs=2, metavar=("PE", "SIMD"),
                   default=None, help="engine: PE and SIMD of its lanes (default 32 64)")
    p.add_argument("--jobs", type=positive_int, default=4,
                   help="Vivado jobs in the generated Tcl (≥ 1)")


def memory_styles(text: str) -> dict[str, str]:
    """``--memory`` value ``layer=style,…`` as ``{layer: style}`` (styles are checked
    against the network later)."""
    out = {}
    for item in text.split(","):
        name, sep, style = item.strip().partition("=")
        if not sep or not name.strip() or not style.strip():
            raise argparse.ArgumentTypeError(f"{item.strip()!r}: expected LAYER=STYLE")
        out[name.strip()] = style.strip()
    return out


def placement_ddr_layers(net: Network, placements: dict[str, str], source: str) -> list[str]:
    """The layers a folding file's ``"placements"`` entry puts in DDR, in its order.

    Raises :class:`UsageError` for a layer that is not a Conv/FC layer of ``net`` or a
    placement that does not suit the layer (``stream`` is for FC, ``tiled`` for Conv).
    """
    mvtu = {i.name: i for i in net.infer() if i.is_mvtu}
    for name, placement in placements.items():
        if name not in mvtu:
            raise UsageError(f"{source}: placements: {name!r} is not a Conv or FC layer of "
                             f"{net.name} (those are: {', '.join(mvtu)})")
        if placement != "onchip" and placement != ddr_placement(mvtu[name]):
            raise UsageError(f"{source}: placements: layer {name}: a "
                             f"{type(mvtu[name].layer).__name__} layer in DDR is "
                             f"{ddr_placement(mvtu[name])!r}, not {placement!r}")
    ddr = [name for name, placement in placements.items() if placement != "onchip"]
    if not ddr:
        raise UsageError(f"{source}: placements put no layer in DDR (build it with --arch "
                         f"dataflow, or name the layers with --ddr-layers)")
    return ddr


def run(args: argparse.Namespace) -> int:
    if args.target_fps is not None and args.bram_budget is not None:
        raise UsageError("--bram-budget goes with --lut-budget, not --target-fps")
    try:
        device_for_part(args.part)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.out is not None:
        check_out_dir(args.out)
    net = load_network(args.network, seed=args.seed if args.random_weights else None,
                       require_params=True)
    out = args.out if args.out is not None else Path("build") / net.name
    check_out_dir(out)
    folding = load_folding(args.folding) if args.folding else None
    if args.folding and args.arch == "hybrid" and args.ddr_layers is None:
        placements = load_placements(args.folding)
        if placements:
            args.ddr_layers = placement_ddr_layers(net, placements,
                                                   f"folding file {args.folding}")
    if args.dry_run:
        design = plan_design(net, clock_mhz=args.clock_mhz, part=args.part, folding=folding,
                             target_fps=args.target_fps, lut_budget=args.lut_budget,
                             bram36_budget=args.bram_budget, arch=args.arch,
                             ddr_layers=args.ddr_layers, hp_ports=args.hp_ports,
                             engine_lanes=args.engine_lanes, memory=args.memory)
        print(format_report(design.report(args.part, rtl={"skipped": "dry run (--dry-run)"})))
        print(f"\ndry run: the inputs are valid; nothing was written (would write {out}/)")
        return 0
    res = build(net, out, clock_mhz=args.clock_mhz, part=args.part, folding=folding,
                target_fps=args.target_fps, lut_budget=args.lut_budget,
                bram36_budget=args.bram_budget, synth=args.synth,
                source=Path(args.network), force_rtl=args.force_rtl, lint=not args.no_lint,
                vivado_jobs=args.jobs, deploy=not args.no_deploy, samples=args.samples,
                arch=args.arch, ddr_layers=args.ddr_layers, hp_ports=args.hp_ports,
                engine_lanes=args.engine_lanes, memory=args.memory)
    print(format_report(res.report))
    print(f"\nwrote {len(res.files)} files to {res.out_dir}/"
          + ("" if res.rtl_written else " (no RTL: see above)"))
    if res.rtl_written:
        print(f"bitstream: sh {res.out_dir}/vivado/run.sh   (Vivado 2022.2; produces "
              f"{res.out_dir}/{net.name}.bit and .hwh)")
    return 0
