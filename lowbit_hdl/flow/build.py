"""The build: a network → an output folder with Verilog, Vivado flow, reports and the files
the runtime needs. :func:`build` is the Python API behind ``python -m lowbit_hdl build``.

Output folder (every file deterministic: the same inputs give byte-identical files)::

    rtl/lowbit_top.v       the stitched accelerator (Amaranth → Verilog; weights inline)
    rtl/lowbit_accel.v     Vivado wrapper: ap_clk, ap_rst_n, s_axis_*, m_axis_*
    rtl/lint_waivers.vlt   Verilator waivers for the generated file (LINT_WAIVERS)
    rtl/lint.log           verilator --lint-only -Wall output
    vivado/build.tcl       project + PYNQ-Z2 block design + bitstream (Vivado 2022.2; static)
    vivado/config.tcl      the build's settings build.tcl sources (network, widths, clock …)
    vivado/run.sh          vivado -mode batch -source build.tcl (static)
    layout.json            stream layout for the runtime (DesignLayout) + IP names
    report.json            per-layer figures, estimate, fit check, Yosys counts (--synth)
    folding.json           the folding used ({layer: {pe, simd}})
    <net>.npz              weights and thresholds used (lowbit_hdl.netfile format)
    network.json           the network description
    source/<file>.py       the topology file the build was started from, if any
    synth/                 Yosys log and statistics (--synth)
    deploy/                the deployment bundle for the board (lowbit_hdl.flow.deploy)

Designs clearly over the part (analytic estimate plus shell above the part by more than the
estimate's error, :data:`ESTIMATE_MARGIN`) get everything but ``rtl/``, ``vivado/`` and
``deploy/``: elaborating e.g. the 80-Mbit weights of an ImageNet network into Verilog would
take long and produce nothing buildable; ``force_rtl`` elaborates them anyway. Designs near
the limit are generated, and the report says whether the estimate fits (``--synth`` tells).
"""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .. import netfile
from ..cost import EngineConfig, engine_split, weight_bytes
from ..errors import OutputError, UsageError, UserError
from ..ir import Network
from ..runtime.ddrimage import DdrLayoutError
from .folding import (
    Folding,
    LayerFolding,
    apply_folding,
    auto_fold,
    fold_for_budget,
    get_folding,
    save_folding,
    target_cycles,
)
from .plan import Plan, plan_network
from .report import make_report
from .resources import XC7Z020, Device, Estimate, device_for_part, estimate_plan, fit_check
from .top import TOP_NAME, NetworkTop, elaborate_verilog
from .vivado import (
    WRAPPER_NAME,
    VivadoConfig,
    weight_ports_of,
    wrapper_verilog,
    write_vivado_files,
)

__all__ = [
    "BuildResult",
    "DesignPlan",
    "build",
    "check_out_dir",
    "plan_design",
    "choose_folding",
    "apply_memory",
    "lint_verilog",
    "lint_waiver_file",
    "LINT_WAIVERS",
    "write_npz_deterministic",
    "normalize_zip",
    "default_samples",
]

#: Verilator -Wall warnings waived for the generated Verilog, and why. All of them are about
#: how Amaranth's backend (Yosys ``write_verilog``) spells a correct netlist; the wrapper
#: (rtl/lowbit_accel.v) is clean without any of them.
LINT_WAIVERS = {
    "DECLFILENAME": "Amaranth writes every submodule into one file",
    "UNUSEDSIGNAL": "s_axis tlast and tdata padding bits are ignored by design; the backend "
                    "keeps unused wires of submodule ports",
    "UNUSEDPARAM": "generated parameters",
    "PINCONNECTEMPTY": "generated instances may leave unused outputs open",
    "PROCASSINIT": "registers get their reset value as an initialiser and are assigned in "
                   "always blocks",
    "WIDTHEXPAND": "the backend relies on Verilog's implicit zero/sign extension in "
                   "expressions; the netlist's widths are exact",
    "WIDTHTRUNC": "the backend relies on Verilog's implicit truncation on assignment",
    "UNSIGNED": "generated range checks compare unsigned values with 0",
    "CASEINCOMPLETE": "an Amaranth Switch without a default case: uncovered values keep the "
                      "assignment made before the case statement",
    "ASCRANGE": "zero-width signals (e.g. Signal(range(1))) are declared [-1:0] and unused",
}

#: a resource over the part by more than this factor (estimate + shell) skips the RTL
ESTIMATE_MARGIN = {"lut": 1.25, "ff": 1.25, "bram36": 1.1, "dsp": 1.0}

Progress = Callable[[str], None]


def _stderr_progress(msg: str) -> None:
    print(f"[build] {msg}", file=sys.stderr, flush=True)


@dataclass
class BuildResult:
    """What :func:`build` produced."""

    out_dir: Path
    network: Network
    plan: Plan
    estimate: Estimate
    report: dict
    rtl_written: bool
    files: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def normalize_zip(path: Path) -> Path:
    """Rewrite a zip file (``.npz``) with sorted entries and fixed timestamps, so the same
    contents always give the same bytes."""
    path = Path(path)
    buf = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in sorted(src.namelist()):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, src.read(name))
    path.write_bytes(buf.getvalue())
    return path


def write_npz_deterministic(net: Network, path: Path) -> Path:
    """:func:`lowbit_hdl.netfile.save` with fixed zip timestamps (byte-identical output)."""
    return normalize_zip(netfile.save(net, path))


#: sample images shipped next to the topologies (``<folder>/data/``), by input shape
DEFAULT_SAMPLES = {(1, 28, 28): "mnist_samples.npz", (3, 32, 32): "cifar10_samples.npz"}


def default_samples(net: Network, source: Path | None) -> Path | None:
    """Sample images for the deployment bundle when none are given: the samples next to
    the topology (``<folder>/data/``) for its input shape (:data:`DEFAULT_SAMPLES`: MNIST for
    1×28×28, CIFAR-10 for 3×32×32), if that file exists."""
    name = DEFAULT_SAMPLES.get(tuple(net.input_shape))
    if source is None or name is None:
        return None
    path = Path(source).resolve().parent / "data" / name
    return path if path.exists() else None


def apply_memory(net: Network, memory: Mapping[str, str]) -> Network:
    """A copy of ``net`` whose named Conv/FC layers get the weight-memory style
    (``ram_style``) of ``memory`` (``{layer: style}``); a :class:`UsageError` names an
    unknown layer or style."""
    from ..ir import NetworkError
    from .folding import check_memory

    try:
        check_memory(net, memory)
    except NetworkError as e:
        raise UsageError(f"--{e}") from None
    return apply_folding(net, Folding({name: LayerFolding(ram_style=style)
                                       for name, style in memory.items()}))


def choose_folding(net: Network, *, folding: Folding | None = None,
                   target_fps: float | None = None, lut_budget: int | None = None,
                   bram36_budget: float | None = None, clock_mhz: float = 100.0,
                   device: Device = XC7Z020, memory: Mapping[str, str] | None = None
                   ) -> tuple[Network, str, dict]:
    """Apply a folding (e.g. from a file), an auto-folding for a frame rate or a budget, or
    keep the network's own; returns (folded network, source description, auto-folding
    details). The auto-folder (:func:`lowbit_hdl.flow.folding.search`) chooses PE, SIMD and
    the weight-memory style of every layer, weighing resources as fractions of ``device``;
    ``memory`` (``{layer: ram_style}``, e.g. from ``--memory``) fixes styles and overrides
    those of a folding file. A budget no design meets raises
    :class:`~lowbit_hdl.errors.BudgetError`."""
    memory = dict(memory or {})
    if folding is not None:
        return apply_memory(apply_folding(net, folding), memory), "file", {}
    if memory:
        net = apply_memory(net, memory)
    if target_fps is not None:
        res = auto_fold(net, target_cycles(clock_mhz, target_fps), device=device,
                        memory=memory)
        return res.network, f"auto (target {target_fps:g} frames/s)", res.to_dict()
    if lut_budget is not None or bram36_budget is not None:
        res = fold_for_budget(net, lut_budget, bram36_budget, device=device, memory=memory)
        what = ", ".join(x for x in (
            f"{lut_budget:,} LUT" if lut_budget is not None else "",
            f"{bram36_budget:g} BRAM36" if bram36_budget is not None else "") if x)
        return res.network, f"auto (budget {what})", res.to_dict()
    return net, "network", {}


def lint_waiver_file(generated: list[str], waivers: dict[str, str] | None = None) -> str:
    """A Verilator configuration file that waives :data:`LINT_WAIVERS` in the generated
    files only (the wrapper gets the full ``-Wall``)."""
    waivers = LINT_WAIVERS if waivers is None else waivers
    lines = ["`verilator_config", "// lowbit-hdl: warnings waived in the Amaranth-generated "
             "Verilog only (see docs/build.md)"]
    for rule in sorted(waivers):
        lines.append(f"// {rule}: {waivers[rule]}")
        for g in generated:
            lines.append(f'lint_off -rule {rule} -file "*{g}"')
    return "\n".join(lines) + "\n"


def lint_verilog(files: list[Path], top: str, waiver_file: Path | None = None
                 ) -> tuple[bool, str]:
    """``verilator --lint-only -Wall`` (plus a waiver ``.vlt`` file); (clean, log).

    Returns ``(False, "not run: …")`` when Verilator is not installed.
    """
    from ..tools import ToolError, setup_simulator_env

    try:
        setup_simulator_env("verilator")
    except ToolError as e:
        return False, f"not run: {e}"
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", top]
    cmd += [str(waiver_file)] if waiver_file is not None else []
    cmd += [str(f) for f in files]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    # keep the log deterministic: no statistics (wall times), no absolute paths
    log = "".join(line for line in (proc.stdout + proc.stderr).splitlines(keepends=True)
                  if not line.startswith(("- V e r i l a t i o n", "- Verilator:")))
    for f in [*files, *([waiver_file] if waiver_file else [])]:
        log = log.replace(str(Path(f).parent) + "/", "")
    return proc.returncode == 0 and "%Warning" not in log and "%Error" not in log, log


def check_out_dir(out_dir: str | Path) -> Path:
    """``out_dir`` as a Path when it can be the build's output folder (an existing folder,
    or a path whose nearest existing parent is a folder); raises :class:`OutputError`
    otherwise. Nothing is created."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"output folder {out} is a file")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"output folder {out}: {parent} is a file, not a folder")
            break
    return out


def _check_options(clock_mhz: object, target_fps: object, lut_budget: object,
                   bram36_budget: object, vivado_jobs: object, sample_count: object) -> None:
    """The numbers of a build: finite, positive (budgets: ≥ 0), ints where counted."""
    def bad(name: str, value: object, rule: str) -> UsageError:
        return UsageError(f"{name}={value!r} must be {rule}")

    def number(v: object) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    for name, v, rule in (("clock_mhz", clock_mhz, "a number > 0 (MHz)"),
                          ("target_fps", target_fps, "a number > 0 (frames/s)")):
        if (v is not None or name == "clock_mhz") and not (number(v) and v > 0):  # type: ignore[operator]
            raise bad(name, v, rule)
    if bram36_budget is not None and not (number(bram36_budget) and bram36_budget >= 0):  # type: ignore[operator]
        raise bad("bram36_budget", bram36_budget, "a number ≥ 0")
    for name, v, lo in (("lut_budget", lut_budget, 0), ("vivado_jobs", vivado_jobs, 1),
                        ("sample_count", sample_count, 1)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < lo):
            raise bad(name, v, f"an int ≥ {lo}")


def _check_samples(samples: str | Path, net: Network, count: int) -> None:
    """The deployment bundle's sample images: a readable test set of the network's input
    size (:class:`UserError` otherwise), checked before the build writes anything."""
    from ..runtime.preprocess import PreprocessError, load_test_set, to_frames

    try:
        images, _ = load_test_set(samples)
        to_frames(images[:count], net.input_shape, net.input_dtype.name)
    except (PreprocessError, ValueError, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise UserError(f"sample images {samples}: {e}") from None


@dataclass
class DesignPlan:
    """What a build decides before it writes anything: the folded network, its stream plan,
    the estimate and the fit on the part (:func:`plan_design`)."""

    network: Network
    plan: Plan
    estimate: Estimate
    fit: dict
    clearly_over: list[str]
    folding_source: str
    auto: dict

    def report(self, part: str, **kwargs: object) -> dict:
        """:func:`~lowbit_hdl.flow.report.make_report` of this design."""
        auto = self.auto
        return make_report(self.plan, self.estimate, part=part,
                           folding=get_folding(self.network),
                           folding_source=self.folding_source,
                           extra={"auto_folding": auto} if auto else None,
                           **kwargs)  # type: ignore[arg-type]


#: ``--arch`` choices: today's all-on-chip pipeline, the hybrid (some layers' weights in
#: DDR), the engine (the middle layers on one runtime-configured engine), or the first of
#: dataflow, hybrid and engine that fits
ARCHS = ("dataflow", "hybrid", "engine", "auto")


def _engine_plan(net: Network, clock_mhz: float, hp_ports: int,
                 ddr_layers: list[str] | None, lanes: tuple[int, int] | None) -> Plan:
    """The engine design of ``net`` (:func:`plan_network` with an engine); its tail layers
    in ``ddr_layers`` read their weights from DDR, and by default every tail layer whose
    weights exceed 64 KiB does; the engine and each DDR tail layer get up to ``hp_ports``
    read masters (:func:`engine_ports`, :func:`~lowbit_hdl.runtime.ddrimage.region_masters`)."""
    pe, simd = (EngineConfig.pe, EngineConfig.simd) if lanes is None else lanes
    cfg = EngineConfig(pe=pe, simd=simd, ports=engine_ports(hp_ports, pe, simd))
    try:
        split = engine_split(net.infer(), cfg.simd, cfg.act_buffer_bits)
        if ddr_layers is None:
            ddr_layers = [i.name for i in split.tail
                          if i.is_mvtu and weight_bytes(i) > ENGINE_TAIL_ONCHIP_BYTES]
        return plan_network(net, clock_mhz, ddr_layers=ddr_layers, hp_ports=hp_ports,
                            engine=cfg, stream_ports=hp_ports)
    except (ValueError, DdrLayoutError) as e:
        raise UserError(f"engine design: {e}") from None


def engine_ports(hp_ports: int, pe: int, simd: int) -> int:
    """Read masters (tile-stream words per beat) of the engine of a design on ``hp_ports``
    HP ports: ``hp_ports``, or the largest of 4, 2, 1 below it that divides the words of a
    weight beat (``pe·simd/64``; a beat is whole tile-stream beats)."""
    words = max(1, pe * simd // 64)
    return next(p for p in (4, 2, 1) if p <= hp_ports and words % p == 0)


#: tail layers (after the engine) with more weight bytes than this read them from DDR
#: (Tiny-YOLO's conv8, 125 KiB, stays on chip; AlexNet's fc2, 3.9 MiB, streams)
ENGINE_TAIL_ONCHIP_BYTES = 256 * 1024


def _plan_arch(net: Network, arch: str, ddr_layers: list[str] | None, hp_ports: int,
               clock_mhz: float, device: Device, say: Callable[[str], None],
               engine_lanes: tuple[int, int] | None = None) -> Plan:
    """The stream plan of ``net`` for ``arch`` (see :data:`ARCHS`)."""
    if arch not in ARCHS:
        raise UsageError(f"--arch {arch!r}: must be one of {', '.join(ARCHS)}")
    if hp_ports not in (1, 2, 4):
        raise UsageError(f"--hp-ports {hp_ports}: must be 1, 2 or 4")
    if ddr_layers and arch == "dataflow":
        raise UsageError("--ddr-layers needs --arch hybrid, engine or auto")
    if engine_lanes is not None and arch not in ("engine", "auto"):
        raise UsageError("--engine-lanes needs --arch engine (or auto)")
    if arch == "engine":
        plan = _engine_plan(net, clock_mhz, hp_ports, ddr_layers, engine_lanes)
        say(f"--arch engine: {len(plan.split.engine)} layers on the engine "
            f"({plan.engine.pe}×{plan.engine.simd} lanes, {plan.engine.ports} read "
            f"master(s)), front "
            f"{', '.join(i.name for i in plan.split.front) or 'none'}, tail "
            f"{', '.join(i.name for i in plan.split.tail) or 'none'}; "
            f"{plan.ddr.bytes_per_frame / 1e6:.2f} MB per frame from DDR")
        return plan
    mvtu = {i.name: i for i in net.infer() if i.is_mvtu}
    for name in ddr_layers or ():
        if name not in mvtu:
            raise UsageError(f"--ddr-layers: {name!r} is not a Conv or FC layer of "
                             f"{net.name} (those are: {', '.join(mvtu)})")
    dataflow = plan_network(net, clock_mhz)
    if arch == "dataflow":
        return dataflow
    if arch == "auto" and not ddr_layers:
        fit = fit_check(estimate_plan(dataflow).total, device)
        if fit["fits"]:
            say("--arch auto: the dataflow design fits the part; weights stay on chip")
            return dataflow
    if ddr_layers:
        names = list(ddr_layers)
    else:
        from .resources import hybrid_placements

        placed = hybrid_placements(net, hp_ports, device)
        names = [n for n, p in placed.items() if p != "onchip"]
    if not names:
        say(f"--arch {arch}: every layer's weights fit on chip; building the dataflow design")
        return dataflow
    try:
        plan = plan_network(net, clock_mhz, ddr_layers=names, hp_ports=hp_ports)
    except DdrLayoutError as e:
        raise UserError(f"hybrid design: {e}") from None
    if arch == "auto" and not ddr_layers \
            and not fit_check(estimate_plan(plan).total, device)["fits"]:
        say("--arch auto: neither the dataflow nor the hybrid design fits the part; "
            "building the engine")
        return _plan_arch(net, "engine", None, hp_ports, clock_mhz, device, say,
                          engine_lanes)
    say(f"--arch {arch}: weights of {', '.join(names)} read from DDR "
        f"({plan.ddr.bytes_per_frame / 1e6:.2f} MB per frame over {hp_ports} HP port(s))")
    return plan


def plan_design(net: Network, *, clock_mhz: float = 100.0, part: str = XC7Z020.part,
                folding: Folding | None = None, target_fps: float | None = None,
                lut_budget: int | None = None, bram36_budget: float | None = None,
                progress: Progress | None = None, arch: str = "dataflow",
                ddr_layers: list[str] | None = None, hp_ports: int = 1,
                engine_lanes: tuple[int, int] | None = None,
                memory: Mapping[str, str] | None = None) -> DesignPlan:
    """Check ``net`` (parameters attached and valid) and the options, fold, plan, estimate:
    everything :func:`build` does before writing a file. Raises a
    :class:`~lowbit_hdl.errors.UserError` (naming the layer and rule) for a bad input.

    ``arch`` (:data:`ARCHS`), ``ddr_layers`` and ``hp_ports``: where weights live. A hybrid
    design reads the weights of ``ddr_layers`` (default: the layers the BRAM-budget rule of
    :func:`lowbit_hdl.flow.resources.hybrid_placements` moves) from DDR over ``hp_ports``
    Zynq HP ports."""
    say = progress or (lambda _msg: None)
    _check_options(clock_mhz, target_fps, lut_budget, bram36_budget, 1, 1)
    net.infer(check_params=True)
    try:
        device = device_for_part(part)
    except ValueError as e:
        raise UsageError(str(e)) from None
    net, folding_source, auto = choose_folding(
        net, folding=folding, target_fps=target_fps, lut_budget=lut_budget,
        bram36_budget=bram36_budget, clock_mhz=clock_mhz, device=device, memory=memory)
    if auto and not auto.get("met", True):
        say(f"target not met: layers {', '.join(auto['unmet_layers'])} cannot reach it even "
            f"fully parallel; the cheapest of the fastest designs is used")
    plan = _plan_arch(net, arch, ddr_layers, hp_ports, clock_mhz, device, say, engine_lanes)
    if plan.uses_ddr:
        try:  # the block design's limits (e.g. masters per SmartConnect), before any file
            VivadoConfig.from_plan(plan, part)
        except ValueError as e:
            raise UserError(f"{plan.arch} design: {e}") from None
    est = estimate_plan(plan)
    fit = fit_check(est.total, device)
    # the estimate is good to about ±20 % in LUTs: only designs clearly over the part skip
    # the RTL (elaborating e.g. 80 Mbit of ImageNet weights takes long and fits nothing)
    clearly_over = [k for k, m in ESTIMATE_MARGIN.items()
                    if fit["resources"][k]["total"] > m * fit["resources"][k]["available"]]
    return DesignPlan(net, plan, est, fit, clearly_over, folding_source, auto)


def build(net: Network, out_dir: str | Path, *, clock_mhz: float = 100.0,
          part: str = XC7Z020.part, folding: Folding | None = None,
          target_fps: float | None = None, lut_budget: int | None = None,
          bram36_budget: float | None = None, synth: bool = False,
          source: Path | None = None, force_rtl: bool = False, lint: bool = True,
          check_tcl: bool = True, vivado_jobs: int = 4, library: dict | None = None,
          deploy: bool = True, samples: str | Path | None = None, sample_count: int = 100,
          progress: Progress | None = _stderr_progress, arch: str = "dataflow",
          ddr_layers: list[str] | None = None, hp_ports: int = 1,
          engine_lanes: tuple[int, int] | None = None,
          memory: Mapping[str, str] | None = None) -> BuildResult:
    """Build ``net`` (parameters attached) into ``out_dir``; see the module docstring.

    Every input is checked before anything is written (:func:`plan_design`,
    :func:`check_out_dir`); a bad one raises a :class:`~lowbit_hdl.errors.UserError`.
    Random parameters (:attr:`Network.random_weights`) are announced and recorded in
    ``report.json`` and the deployment bundle.
    ``library`` replaces stage constructors (see :class:`~lowbit_hdl.flow.top.NetworkTop`).
    ``deploy`` writes the deployment bundle (``deploy/``, see
    :func:`lowbit_hdl.flow.deploy.write_deploy_bundle`) with ``sample_count`` images from
    ``samples`` (a test-set file; default :func:`default_samples`, else random images).
    """
    say = progress or (lambda _msg: None)
    _check_options(clock_mhz, target_fps, lut_budget, bram36_budget, vivado_jobs, sample_count)
    design = plan_design(net, clock_mhz=clock_mhz, part=part, folding=folding,
                         target_fps=target_fps, lut_budget=lut_budget,
                         bram36_budget=bram36_budget, progress=say, arch=arch,
                         ddr_layers=ddr_layers, hp_ports=hp_ports, engine_lanes=engine_lanes,
                         memory=memory)
    if deploy and samples is not None:
        _check_samples(samples, design.network, sample_count)
    note = netfile.random_weights_note(design.network)
    if note:
        say(note)
    out = check_out_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    net, plan, est, fit = design.network, design.plan, design.estimate, design.fit
    clearly_over = design.clearly_over
    fits = fit["fits"]
    files: list[Path] = []

    def wrote(p: Path) -> Path:
        files.append(p)
        return p

    # parameters and description
    wrote(write_npz_deterministic(net, out / f"{net.name}.npz"))
    wrote(out / "network.json").write_text(
        json.dumps(netfile.to_json(net), indent=2, sort_keys=True) + "\n")
    if source is not None and Path(source).suffix == ".py":
        (out / "source").mkdir(exist_ok=True)
        wrote(Path(shutil.copyfile(source, out / "source" / Path(source).name)))
    used = get_folding(net)
    wrote(save_folding(used, out / "folding.json"))

    rtl_info: dict = {}
    rtl_written = False
    synth_info: dict = {}
    if not fits and not clearly_over:
        say("the estimate is over the part by less than its error margin: generating the RTL "
            "anyway; check with --synth")
    if not clearly_over or force_rtl:
        rtl = out / "rtl"
        rtl.mkdir(exist_ok=True)
        say(f"elaborating {len(plan.stages)} stages of {net.name} to Verilog")
        t0 = time.monotonic()
        top = NetworkTop(net, plan, library=library)
        text = elaborate_verilog(top, TOP_NAME)
        timings["elaborate_s"] = time.monotonic() - t0
        say(f"elaborated in {timings['elaborate_s']:.1f} s "
            f"({len(text) / 1e6:.1f} MB of Verilog)")
        top_v = wrote(rtl / f"{TOP_NAME}.v")
        top_v.write_text(text)
        wrap_v = wrote(rtl / f"{WRAPPER_NAME}.v")
        wrap_v.write_text(wrapper_verilog(plan.input.tdata_bits, plan.output.tdata_bits,
                                          net.name, weight_ports_of(plan)))
        rtl_info = {"top": TOP_NAME, "wrapper": WRAPPER_NAME,
                    "files": [f"rtl/{TOP_NAME}.v", f"rtl/{WRAPPER_NAME}.v"],
                    "verilog_bytes": len(text)}
        if lint:
            say("linting with verilator --lint-only -Wall")
            t0 = time.monotonic()
            vlt = wrote(rtl / "lint_waivers.vlt")
            vlt.write_text(lint_waiver_file([top_v.name]))
            clean, log = lint_verilog([top_v, wrap_v], WRAPPER_NAME, vlt)
            timings["lint_s"] = time.monotonic() - t0
            wrote(rtl / "lint.log").write_text(
                f"verilator --lint-only -Wall --top-module {WRAPPER_NAME} lint_waivers.vlt "
                f"{top_v.name} {wrap_v.name}\n" + (log or "(no messages)\n"))
            rtl_info["lint"] = ("clean (-Wall; waivers for the generated file: "
                                + ", ".join(sorted(LINT_WAIVERS)) + ")") if clean else \
                "warnings, see rtl/lint.log"
            if not clean:
                say("lint found warnings: see rtl/lint.log")
        cfg = VivadoConfig.from_plan(plan, part, vivado_jobs)
        for p in write_vivado_files(out / "vivado", cfg, rtl_info["files"]):
            wrote(p)
        tcl = out / "vivado" / "build.tcl"
        if check_tcl:
            from .tclcheck import dry_run, tclsh_available

            if tclsh_available():
                run = dry_run(tcl)
                rtl_info["tcl_dry_run"] = f"ok ({len(run.calls)} Vivado calls recorded)"
        rtl_written = True
        if synth:
            from .synth import SynthError, synthesize

            try:
                res = synthesize([top_v], TOP_NAME, out / "synth", progress=say)
                timings["synth_s"] = res.seconds
                say(f"synthesised in {res.seconds:.0f} s")
                synth_info = res.to_dict()
                synth_info.pop("seconds")
            except SynthError as e:
                synth_info = {"error": str(e)}
                say(f"synthesis failed: {str(e).splitlines()[0]}")
    else:
        over = ", ".join(f"{k.upper()} {fit['resources'][k]['percent']:g}%"
                         for k in clearly_over)
        why = (f"the design does not fit {part} by the analytic estimate, clearly ({over} "
               f"with the shell); RTL and Vivado files were not generated (force with "
               "--force-rtl)")
        rtl_info = {"skipped": why}
        say(why)
        if synth:
            synth_info = {"error": "not run: no RTL (design does not fit)"}

    layout = plan.layout()  # with the block design's cell names (ip_names)
    layout.save(wrote(out / "layout.json"))
    if deploy and rtl_written:
        from .deploy import write_deploy_bundle

        say("writing the deployment bundle (deploy/)")
        if samples is None:
            samples = default_samples(net, source)
        bundle = write_deploy_bundle(out, net, layout, samples=samples,
                                     sample_count=sample_count,
                                     bitfile=out / f"{net.name}.bit")
        for p in sorted(bundle.rglob("*")):
            if p.is_file():
                if p.suffix == ".npz":
                    normalize_zip(p)
                wrote(p)
        rtl_info["deploy"] = {"folder": "deploy", "samples": Path(samples).name if samples
                              else f"{sample_count} random images"}
    rep = design.report(part, synth=synth_info, rtl=rtl_info)
    wrote(out / "report.json").write_text(json.dumps(rep, indent=2, sort_keys=True) + "\n")
    return BuildResult(out, net, plan, est, rep, rtl_written, files, timings)
