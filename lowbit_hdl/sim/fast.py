"""Fast whole-network simulation: the generated Verilog compiled by Verilator together with a
C++ harness (``harness/stream_harness.cpp``) that drives the AXI-Stream ports itself, so no
Python runs per clock cycle.

The harness plays the AXI DMA in simple mode: MM2S transfers (``tlast`` on each transfer's
last beat), S2MM transfers of a fixed number of beats ending at ``tlast``, random stalls on
both sides from a seeded generator (``tvalid`` never depends on ``tready``; a beat is held
until accepted), a watchdog, and a drain phase that catches surplus output beats. It records
every output beat with its cycle and ``tlast``, and the cycle at which each input frame's
first beat was accepted. Python packs the inputs (:class:`~lowbit_hdl.runtime.layout.StreamLayout`)
and compares the outputs with the golden model in bulk.

Designs that read DDR (hybrid designs: AXI4 read masters ``m_axi<k>__*`` and an AXI4-Lite
control slave ``s_axil__*``, found by :func:`axi_ports` and bound by the generated header of
:func:`ports_header`) get a DDR model in the harness, an AXI4 read slave per port over shared
memory regions, and an AXI4-Lite master that writes registers before the first frame and
reads them after the last (see :func:`run_harness`).

* :func:`build_harness` compiles the design inside :func:`reset_wrapper` (cached by a hash
  of the Verilog, the wrapper, the harness source, the options, the Verilator version,
  the C++ compiler's version and the host CPU; parallel callers share one build).
* :func:`run_harness` runs one batch of transfers (one process, the design reset at its
  start) and returns a :class:`HarnessRun`; ``wait=False`` returns a handle so the caller can
  compute the golden model meanwhile.
* :func:`simulate_fast` is :func:`lowbit_hdl.sim.network.simulate_network` on the fast path
  (same passes, same checks, same steady-state measurement), streaming big image sets in
  chunks of ``chunk`` frames so memory stays bounded and progress can be reported.

Cycle stamps differ from the cocotb bench's by a constant offset (the reset sequence), so
differences between stamps, and thus cycles per frame and latency, are identical.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..flow.plan import Plan, plan_network
from ..golden import forward
from ..ir import Network
from ..progress import Reporter
from ..tools import ToolError, setup_simulator_env
from .network import SimResult, random_frames
from .runner import DEFAULT_BUILD_ROOT, CosimError

__all__ = ["HARNESS_SOURCE", "WRAPPER", "AxiPorts", "DDR_LATENCY", "DDR_OUTSTANDING",
           "FastProgress", "FastSimResult", "HarnessRun", "PendingRun", "axi_ports",
           "build_harness", "dma_transfers", "fast_available", "port_width", "ports_header",
           "reset_wrapper", "run_harness", "simulate_fast", "verilator_options"]

#: the C++ harness, shipped as package data
HARNESS_SOURCE = Path(__file__).resolve().parent / "harness" / "stream_harness.cpp"

_WARNINGS = ("-Wno-fatal", "-Wno-WIDTH", "-Wno-UNUSED", "-Wno-UNOPTFLAT",
             "-Wno-PINCONNECTEMPTY", "-Wno-CASEINCOMPLETE")


#: C++ options of every object: ``-march=native`` was 10 % faster on CNV-W1A1 (the build
#: cache key holds the host CPU, :func:`_host_cpu`); C++17 (gcc 12's default) so that
#: ``new`` aligns the model for its vector stores (a clang 14 build, C++14 by default,
#: crashed on a misaligned store)
CXX_OPT = "-march=native -std=gnu++17"
#: optimisation levels (Verilator's make variables): the per-cycle code (``OPT_FAST``) and
#: the runtime library at ``-O2`` (``-O3`` was 8 % slower than ``-O2``, clang 14 at ``-O2``
#: 50 % slower than gcc 12); the code that runs once (constructors, ROM contents, initial
#: values: ``OPT_SLOW``) at ``-O1``, which compiles faster
CXX_LEVELS = "OPT_FAST=-O2 OPT_SLOW=-O1 OPT_GLOBAL=-O2"
#: the C++ compiler of the build: Verilator's make files (``verilated.mk``) set ``CXX = c++``,
#: which overrides a ``$CXX`` in the environment
CXX = "c++"


def verilator_options(threads: int | None = None, x_initial: str = "fast") -> list[str]:
    """Verilator options of a fast build: ``-O3``, ``--x-assign fast``, ``--x-initial``
    (``fast`` by default: every register of the generated design has an initial value and a
    synchronous reset, so no state is left undefined; ``unique`` with the runtime option
    ``+verilator+rand+reset+2`` randomises what is not, to check that), C++ with
    :data:`CXX_OPT` at :data:`CXX_LEVELS`."""
    opts = ["-O3", "--x-assign", "fast", "--x-initial", x_initial, *_WARNINGS,
            "-CFLAGS", CXX_OPT, "-MAKEFLAGS", CXX_LEVELS]
    if threads and threads > 1:
        opts += ["--threads", str(threads)]
    return opts


def fast_available() -> bool:
    """Whether Verilator (and a C++ compiler) are here for the fast path."""
    try:
        setup_simulator_env("verilator")
    except ToolError:
        return False
    return shutil.which(CXX) is not None


_DECL_RE = r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(\[\d+:0\]\s+)?([A-Za-z_]\w*)\s*;"

#: top module of the fast build: the design with its reset input taken through a register
WRAPPER = "lowbit_fast_top"


def reset_wrapper(verilog: str, toplevel: str) -> str:
    """Verilog of :data:`WRAPPER`: module ``toplevel`` of ``verilog`` with the same ports,
    its ``rst`` driven by a register that loads the wrapper's ``rst`` (initially 1).

    The design sees at every clock edge the ``rst`` the harness drove one cycle before (the
    harness deasserts it one cycle early, so the design's reset sequence is unchanged). What
    changes is Verilator's schedule: a synchronous reset that is a top-level input makes
    every register's next-state logic depend on an input, so the whole design is evaluated
    again in the input phase of every ``eval()``; from a register it is evaluated once, at
    the clock edge.
    """
    import re

    start = verilog.find(f"module {toplevel}(")
    if start < 0:
        raise ValueError(f"no module {toplevel} in the Verilog")
    body = verilog[start:verilog.find("endmodule", start)]
    ports = re.findall(_DECL_RE, body, flags=re.MULTILINE)
    if ("input", "", "rst") not in ports or ("input", "", "clk") not in ports:
        raise ValueError(f"module {toplevel} has no 1-bit clk and rst inputs")
    decls = "".join(f"  {d} {w}{n};\n" for d, w, n in ports)
    conns = ", ".join(f".{n}({'rst_q' if n == 'rst' else n})" for _, _, n in ports)
    return (f"module {WRAPPER}({', '.join(n for _, _, n in ports)});\n{decls}"
            "  reg rst_q = 1'b1;\n  always @(posedge clk) rst_q <= rst;\n"
            f"  {toplevel} dut ({conns});\nendmodule\n")


def _top_ports(verilog: str, toplevel: str) -> dict[str, tuple[str, int]]:
    """``{name: (direction, width)}`` of the ports of module ``toplevel``."""
    import re

    start = verilog.find(f"module {toplevel}(")
    if start < 0:
        raise ValueError(f"no module {toplevel} in the Verilog")
    body = verilog[start:verilog.find("endmodule", start)]
    return {n: (d, int(w.strip()[1:].split(":")[0]) + 1 if w else 1)
            for d, w, n in re.findall(_DECL_RE, body, flags=re.MULTILINE)}


#: members of an AXI4 read master the harness drives or reads (direction at the design);
#: ``arid``/``rid`` are optional (ID 0 without them), ``arcache``/``arprot`` are ignored
_AXI_READ = {"araddr": "output", "arlen": "output", "arsize": "output", "arburst": "output",
             "arvalid": "output", "arready": "input", "rdata": "input", "rresp": "input",
             "rlast": "input", "rvalid": "input", "rready": "output"}
_AXI_READ_OPTIONAL = {"arid": "output", "rid": "input"}
#: members of the AXI4-Lite slave (``awprot``/``arprot`` stay 0)
_AXI_LITE = {"awaddr": "input", "awvalid": "input", "awready": "output", "wdata": "input",
             "wstrb": "input", "wvalid": "input", "wready": "output", "bresp": "output",
             "bvalid": "output", "bready": "input", "araddr": "input", "arvalid": "input",
             "arready": "output", "rdata": "output", "rresp": "output", "rvalid": "output",
             "rready": "input"}

#: the harness's DDR model: cycles from a burst's AR handshake to its first R beat, and
#: bursts a read port accepts before it holds ARREADY low (see :func:`run_harness`); these
#: defaults behave as the cocotb path's cocotbext-axi read slaves, so no-stall runs agree
#: with it cycle for cycle, the STALL_CYCLES counter included
DDR_LATENCY = 2
DDR_OUTSTANDING = 2


@dataclass(frozen=True)
class AxiPorts:
    """The AXI ports of a design's top level that the harness serves: the ``m_axi<k>``
    read masters (``k``, its data width in bytes, whether it has ``arid``/``rid``) and
    whether ``s_axil`` is there."""

    read: tuple[tuple[int, int, bool], ...] = ()
    lite: bool = False


def axi_ports(verilog: str, toplevel: str) -> AxiPorts:
    """Find the AXI4 read masters ``m_axi<k>__*`` and the AXI4-Lite slave ``s_axil__*`` among
    the ports of module ``toplevel`` (as :func:`reset_wrapper` finds ``clk``/``rst``).

    Raises
    ------
    ValueError
        If a port set misses a member, has one in the wrong direction, or ``rdata`` is not a
        whole number of bytes from 1 to 8 (the harness's ports are at most 64 bits).
    """
    import re

    ports = _top_ports(verilog, toplevel)

    def check(prefix: str, members: dict[str, str], optional: dict[str, str]) -> None:
        for m, d in (members | optional).items():
            got = ports.get(f"{prefix}__{m}")
            if got is None and m in optional:
                continue
            if got is None or got[0] != d:
                raise ValueError(f"{prefix}__{m} must be an {d} of {toplevel}"
                                 + ("" if got is None else f", not an {got[0]}"))
            if got[1] > 64:
                raise ValueError(f"{prefix}__{m} is {got[1]} bits wide: the fast harness "
                                 "drives AXI ports of at most 64 bits")

    read = []
    for k in sorted(int(m.group(1)) for n in ports
                    if (m := re.fullmatch(r"m_axi(\d+)__araddr", n))):
        check(f"m_axi{k}", _AXI_READ, _AXI_READ_OPTIONAL)
        width = ports[f"m_axi{k}__rdata"][1]
        if width % 8 or width & (width - 1):
            raise ValueError(f"m_axi{k}__rdata is {width} bits wide: the fast harness needs "
                             "8, 16, 32 or 64")
        has_id = f"m_axi{k}__arid" in ports and f"m_axi{k}__rid" in ports
        read.append((k, width // 8, has_id))
    lite = "s_axil__awaddr" in ports
    if lite:
        check("s_axil", _AXI_LITE, {})
    return AxiPorts(tuple(read), lite)


def _cxx_name(port: str) -> str:
    """The member of the Verilated model for Verilog port ``port`` (Verilator escapes the
    second underscore of ``__``)."""
    return port.replace("__", "___05F")


def ports_header(ports: AxiPorts) -> str:
    """``harness_ports.h`` of the harness: ``kAxiPorts``, ``kAxiLite`` and the functions that
    bind the model's AXI ports (``bind_axi``, ``bind_axil``)."""
    lines = ["// generated by lowbit_hdl.sim.fast.ports_header: the design's AXI ports",
             "#pragma once", "namespace {",
             f"constexpr int kAxiPorts = {len(ports.read)};",
             f"constexpr bool kAxiLite = {'true' if ports.lite else 'false'};",
             "template <typename Top>", "void bind_axi(Top& top, AxiIO* io) {",
             "    (void)top;", "    (void)io;"]
    for i, (k, nbytes, has_id) in enumerate(ports.read):
        for m in [*_AXI_READ, *(_AXI_READ_OPTIONAL if has_id else ())]:
            lines.append(f"    io[{i}].{m} = ref(top.{_cxx_name(f'm_axi{k}__{m}')});")
        lines.append(f"    io[{i}].data_bytes = {nbytes};")
    lines += ["}", "template <typename Top>", "void bind_axil(Top& top, AxilIO& io) {",
              "    (void)top;", "    (void)io;"]
    if ports.lite:
        lines += [f"    io.{m} = ref(top.{_cxx_name(f's_axil__{m}')});" for m in _AXI_LITE]
    lines += ["}", "}  // namespace", ""]
    return "\n".join(lines)


def _host_cpu() -> str:
    """The CPU model and feature flags (Linux ``/proc/cpuinfo``; else ``platform``): an
    executable built with ``-march=native`` runs on this CPU only."""
    import platform

    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    keep = [ln for ln in lines if ln.split(":")[0].strip() in ("model name", "flags")]
    return "\n".join(sorted(set(keep))) or f"{platform.machine()} {platform.processor()}"


def _verilator_version() -> str:
    out = subprocess.run(["verilator", "--version"], capture_output=True, text=True)
    return out.stdout.strip()


def _cxx_version() -> str:
    """``c++ --version`` (:data:`CXX`): a compiler upgrade makes a new build."""
    try:
        out = subprocess.run([CXX, "--version"], capture_output=True, text=True)
    except OSError:
        return ""
    return out.stdout.strip()


def build_harness(verilog: str, toplevel: str = "lowbit_top", build_root: Path | None = None,
                  threads: int | None = None, x_initial: str = "fast",
                  log: Callable[[str], None] | None = None) -> Path:
    """Compile ``verilog`` (top module ``toplevel``) with the stream harness and the header
    that binds its AXI ports (:func:`axi_ports`, :func:`ports_header`); returns the
    executable. Cached under ``build_root`` (default: the cocotb runner's ``sim_build``) by
    a hash of the Verilog, the wrapper (:func:`reset_wrapper`), the harness and its header,
    the options, the Verilator version, the C++ compiler's version (:data:`CXX`) and the
    host CPU."""
    try:
        setup_simulator_env("verilator")
    except ToolError as e:
        raise CosimError(str(e)) from None
    opts = verilator_options(threads, x_initial)
    harness = HARNESS_SOURCE.read_text()
    try:
        wrapper = reset_wrapper(verilog, toplevel)
        header = ports_header(axi_ports(verilog, toplevel))
    except ValueError as e:
        raise CosimError(f"the fast harness cannot drive this design: {e}") from None
    h = hashlib.sha256()
    for part in (toplevel, verilog, wrapper, harness, header, " ".join(opts),
                 _verilator_version(),
                 _cxx_version(), _host_cpu()):
        h.update(part.encode())
        h.update(b"\0")
    root = Path(build_root) if build_root is not None else DEFAULT_BUILD_ROOT
    build_dir = root / f"fast-{toplevel}-{h.hexdigest()[:16]}"
    exe = build_dir / "Vharness"
    if exe.exists():
        return exe
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:  # parallel callers share one build
        fcntl.flock(lock, fcntl.LOCK_EX)
        if exe.exists():
            return exe
        src = build_dir / f"{toplevel}.v"
        src.write_text(verilog)
        top = build_dir / f"{WRAPPER}.v"
        top.write_text(wrapper)
        shutil.copyfile(HARNESS_SOURCE, build_dir / HARNESS_SOURCE.name)
        (build_dir / "harness_ports.h").write_text(header)
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", str(os.cpu_count() or 2),
               "--top-module", WRAPPER, "--prefix", "Vtop", "--Mdir", str(build_dir / "obj"),
               "-o", str(exe), *opts, str(top), str(src), str(build_dir / HARNESS_SOURCE.name)]
        if log is not None:
            log(f"compiling {toplevel} with Verilator (once; cached in {build_dir})")
        t0 = time.monotonic()
        with open(build_dir / "build.log", "w") as out, \
                Reporter("[sim]").ticking(f"building the fast harness of {toplevel}"):
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                                  preexec_fn=_die_with_parent)
        if proc.returncode != 0 or not exe.exists():
            tail = (build_dir / "build.log").read_text(errors="replace")[-4000:]
            raise CosimError(f"building the fast harness of {toplevel} failed:\n{tail}")
        (build_dir / "build_seconds").write_text(f"{time.monotonic() - t0:.1f}\n")
        shutil.rmtree(build_dir / "obj", ignore_errors=True)  # keep the executable only
    return exe


def _die_with_parent() -> None:
    """In a child process before ``exec``: get SIGTERM when the parent dies (Linux
    ``prctl(PR_SET_PDEATHSIG)``), so that killing a simulation stops its harness processes
    and compilers. Elsewhere nothing is done."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


@dataclass
class HarnessRun:
    """What one harness run recorded (cycles count from the first cycle after reset)."""

    out_data: np.ndarray  # (beats, out_beat_bytes) uint8
    out_cycles: np.ndarray  # (beats,) int64
    out_last: np.ndarray  # (beats,) uint8
    in_first: np.ndarray  # (input frames started,) int64
    status: str  # "ok", "timeout", "protocol" (an AXI read burst the model refuses) or
    # "control" (an AXI4-Lite access timed out or was answered with an error)
    cycles: int  # simulated cycles after the control writes, drain included
    inputs_left: bool  # the receive transfers completed before every input was taken
    extra_beats: int  # output beats seen in the drain phase
    seconds: float  # wall time of the cycle loop (harness's own clock)
    stderr: str = ""
    registers: dict[int, int] = field(default_factory=dict)  # control reads {offset: value}
    error: str = ""  # what went wrong with status "protocol" or "control"
    setup_cycles: int = 0  # cycles of the control writes before the first transfer
    ddr_beats: int = 0  # R beats the DDR model delivered
    ddr_error_beats: int = 0  # of which answered with an error response


@dataclass
class PendingRun:
    """A harness run in progress (:func:`run_harness` with ``wait=False``)."""

    proc: subprocess.Popen
    work: Path
    out_beat_bytes: int

    def wait(self) -> HarnessRun:
        try:
            _, err = self.proc.communicate()
            prefix = self.work / "out"
            summary_path = prefix.with_suffix(".json")
            if not summary_path.exists():
                raise CosimError(f"the fast harness failed (exit status "
                                 f"{self.proc.returncode}):\n{err[-4000:]}")
            s = json.loads(summary_path.read_text())
            data = np.fromfile(prefix.with_suffix(".data"), np.uint8)
            return HarnessRun(
                data.reshape(-1, self.out_beat_bytes),
                np.fromfile(prefix.with_suffix(".cycle"), np.int64),
                np.fromfile(prefix.with_suffix(".last"), np.uint8),
                np.fromfile(prefix.with_suffix(".infirst"), np.int64),
                s["status"], int(s["cycles"]), bool(s["inputs_left"]),
                int(s["extra_beats"]), float(s["seconds"]), err,
                {int(o): int(v) for o, v in s["registers"].items()}, s["error"],
                int(s["setup_cycles"]), int(s["ddr_beats"]), int(s["ddr_error_beats"]))
        finally:
            shutil.rmtree(self.work, ignore_errors=True)


def run_harness(exe: Path, stream: np.ndarray, in_beat_bytes: int, out_beat_bytes: int,
                in_frame_beats: int, sends: np.ndarray, recvs: int, recv_beats: int,
                stall: float = 0.0, seed: int = 1, timeout_cycles: int = 100_000,
                rearm_cycles: int = 0, drain_cycles: int = 64, wait: bool = True,
                extra_args: tuple[str, ...] = (), ddr: Sequence[tuple[int, Path]] = (),
                ddr_errors: Sequence[tuple[int, int, int]] = (),
                ddr_latency: int = DDR_LATENCY, ddr_outstanding: int = DDR_OUTSTANDING,
                control_writes: Sequence[tuple[int, int]] = (),
                control_reads: Sequence[int] = (),
                poll: tuple[int, int, int] | None = None) -> HarnessRun | PendingRun:
    """Run the harness once (see ``harness/stream_harness.cpp`` for the DMA and DDR models).

    ``stream`` holds the input beats' bytes; ``sends`` is (transfers, 3) int64 rows
    ``(first_beat, beats, after_recv)``; ``recvs`` receive transfers of up to
    ``recv_beats`` beats each end at ``tlast``. ``extra_args`` go to the Verilated model
    (e.g. ``+verilator+rand+reset+2``).

    Designs with AXI ports (:func:`axi_ports`): ``ddr`` lists memory regions
    ``(byte address, file of its bytes)`` that every ``m_axi<k>`` read port serves (a beat
    outside them answers SLVERR); beats overlapping a ``ddr_errors`` range
    ``(lo, hi, rresp)`` (``[lo, hi)``, RRESP 2 SLVERR or 3 DECERR) answer that response with
    zero data; ``ddr_latency`` cycles from an AR handshake to the burst's first beat, up to
    ``ddr_outstanding`` bursts queued per port; with ``stall > 0`` the AR and R channels
    pause at random too. ``control_writes`` ``(offset, value)`` go over ``s_axil`` after the
    reset, before the first transfer; after the drain ``poll = (offset, mask, cycles)`` reads
    ``offset`` until ``value & mask`` (at most ``cycles`` cycles) and ``control_reads`` are
    read into :attr:`HarnessRun.registers`.
    """
    if not 0.0 <= stall < 1.0:
        raise ValueError(f"stall={stall} must be in [0, 1)")
    for name, v in (("ddr_latency", ddr_latency), ("ddr_outstanding", ddr_outstanding)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"{name}={v!r} must be an int")
        if v < 1:
            raise ValueError(f"{name}={v} must be at least 1")
    for lo, hi, resp in ddr_errors:
        if not 0 <= lo < hi or resp not in (2, 3):
            raise ValueError(f"DDR error range ({lo}, {hi}, {resp}): needs 0 <= lo < hi and "
                             "a response of 2 (SLVERR) or 3 (DECERR)")
    work = Path(tempfile.mkdtemp(prefix="lowbit_fast_"))
    np.ascontiguousarray(stream, np.uint8).tofile(work / "in.bin")
    np.ascontiguousarray(sends, np.int64).reshape(-1, 3).tofile(work / "sends.bin")
    args = [str(exe), f"in={work / 'in.bin'}", f"sends={work / 'sends.bin'}",
            f"out={work / 'out'}", f"in_beat_bytes={in_beat_bytes}",
            f"out_beat_bytes={out_beat_bytes}", f"in_frame_beats={in_frame_beats}",
            f"recvs={recvs}", f"recv_beats={recv_beats}", f"stall={stall!r}",
            f"seed={seed}", f"timeout={timeout_cycles}", f"rearm={rearm_cycles}",
            f"drain={drain_cycles}", f"ddr_latency={ddr_latency}",
            f"ddr_outstanding={ddr_outstanding}",
            *(f"ddr={int(a)}:{Path(f)}" for a, f in ddr),
            *(f"ddr_error={int(lo)}:{int(hi)}:{int(r)}" for lo, hi, r in ddr_errors),
            *(f"wr={int(o)}:{int(v)}" for o, v in control_writes),
            *(f"rd={int(o)}" for o in control_reads),
            *([f"poll={int(poll[0])}:{int(poll[1])}:{int(poll[2])}"] if poll else []),
            *extra_args]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_die_with_parent)
    pending = PendingRun(proc, work, out_beat_bytes)
    return pending.wait() if wait else pending


@dataclass
class FastSimResult(SimResult):
    """:class:`~lowbit_hdl.sim.network.SimResult` of the fast path, plus its speed."""

    sim_cycles: int = 0  # simulated cycles over every pass and chunk
    sim_seconds: float = 0.0  # wall time from the first harness start to the last one's end
    harness_seconds: float = 0.0  # the harness runs' cycle loops, added up
    harness_cpu_seconds: float = 0.0  # CPU time of the harness processes (load-independent)
    workers: int = 1  # harness processes run side by side
    build_seconds: float = 0.0  # elaboration and (uncached) compilation

    @property
    def cycles_per_second(self) -> float:
        """Simulated cycles per wall-clock second of the simulation phase (all workers)."""
        return self.sim_cycles / self.sim_seconds if self.sim_seconds else 0.0

    @property
    def cycles_per_second_per_process(self) -> float:
        """Simulated cycles per second of one harness process's cycle loop."""
        return self.sim_cycles / self.harness_seconds if self.harness_seconds else 0.0

    @property
    def cycles_per_cpu_second(self) -> float:
        """Simulated cycles per CPU second of the harness processes: what one process gets
        from a core of its own, whatever else the machine is doing."""
        return self.sim_cycles / self.harness_cpu_seconds if self.harness_cpu_seconds else 0.0

    def summary(self, clock_mhz: float = 100.0) -> str:
        return (super().summary(clock_mhz) + f"\nsimulated {self.sim_cycles:,} cycles in "
                f"{self.sim_seconds:.1f} s: {self.cycles_per_second:,.0f} cycles/s "
                f"({self.workers} harness process(es), "
                f"{self.cycles_per_second_per_process:,.0f} cycles/s each; "
                f"{self.cycles_per_cpu_second:,.0f} cycles per CPU second)")


@dataclass
class FastProgress:
    """Where :func:`simulate_fast` stands after a chunk."""

    done: int  # frames through, over all passes
    total: int  # frames to go through, over all passes
    sim_cycles: int  # simulated cycles so far
    sim_seconds: float  # wall time of the simulation phase so far
    mismatches: int  # frames that differ from the golden model so far
    outputs: np.ndarray  # outputs of the first frames of the no-stall pass (the ones done)


def _children_cpu() -> float:
    """CPU seconds of this process's finished child processes (the harness runs)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _steady_cycles(ends: np.ndarray) -> float | None:
    """Steady-state spacing of frame ends (the rule of simulate_network)."""
    n = len(ends)
    if n < 2:
        return None
    k = math.ceil((n - 1) / 2)
    return float(ends[-1] - ends[-1 - k]) / k


def simulate_fast(net: Network, frames: int = 10, stall: float = 0.0, seed: int = 0,
                  images: np.ndarray | None = None, clock_mhz: float = 100.0,
                  plan: Plan | None = None, verilog: str | None = None,
                  build_root: Path | None = None, timeout_cycles: int | None = None,
                  library: dict | None = None, chunk: int | None = None,
                  expected: np.ndarray | None = None,
                  progress: Callable[[FastProgress], None] | None = None,
                  log: Callable[[str], None] | None = None, threads: int | None = None,
                  x_initial: str = "fast", workers: int = 1,
                  ddr_errors: Sequence[tuple[int, int, int]] = (),
                  ddr_latency: int = DDR_LATENCY,
                  ddr_outstanding: int = DDR_OUTSTANDING) -> FastSimResult:
    """:func:`~lowbit_hdl.sim.network.simulate_network` on the fast path.

    Same arguments and checks: a no-stall pass (measured cycles per frame, latency) and,
    with ``stall > 0``, a second pass over the same frames with random stalls on both sides;
    every output beat compared with the golden model, ``tlast`` on exactly the last beat of
    every output frame, no surplus beats. ``images`` are NCHW integer frames of the network
    input type. Frames go through in chunks of ``chunk`` frames (default: an even share per
    worker, at most about 4M cycles' worth), the design reset at the start of each chunk, up
    to ``workers`` harness processes side by side; the steady-state
    figure is the frame-weighted mean of the chunks'. ``expected`` replaces the golden
    model's outputs (e.g. to plant a mismatch). ``progress`` is called with a
    :class:`FastProgress` after every chunk. ``x_initial="unique"`` builds with
    ``--x-initial unique`` and starts every run from random initial state
    (``+verilator+rand+reset+2``, seeded), to check that reset defines all state.

    Hybrid designs (``plan.ddr``: weights in DDR) run as on the cocotb path: the packed DDR
    image at :data:`~lowbit_hdl.sim.network.SIM_DDR_BASE` is served to every ``m_axi<k>``
    port by the harness's DDR model (``ddr_latency``, ``ddr_outstanding``, AR/R pauses in
    the stall pass; beats in a ``ddr_errors`` range ``(lo, hi, rresp)`` answer an error),
    each chunk writes ``WEIGHTS_BASE_LO``, ``FRAMES`` and ``CTRL.START`` first and reads the
    read-only registers after its last frame. :attr:`~lowbit_hdl.sim.network.SimResult.registers`
    holds per pass the counters summed over the chunks, ``STATUS`` OR-ed, the first nonzero
    ``ERROR``; a chunk that does not end with ``STATUS.DONE`` or reports ``STATUS.ERROR`` is a
    framing error (the run is not ``ok``).
    """
    from ..flow.top import TOP_NAME, NetworkTop, elaborate_verilog

    t0 = time.monotonic()
    if plan is None:
        plan = plan_network(net, clock_mhz)
    if verilog is None:
        verilog = elaborate_verilog(NetworkTop(net, plan, library=library), TOP_NAME)
    exe = build_harness(verilog, TOP_NAME, build_root, threads=threads, x_initial=x_initial,
                        log=log)
    build_s = time.monotonic() - t0
    with tempfile.TemporaryDirectory(prefix="lowbit_fast_ddr_") as tmp:
        hybrid = _HybridRuns.make(net, plan, verilog, Path(tmp))
        return _simulate_fast(net, plan, exe, hybrid, t0, build_s, frames, stall, seed,
                              images, timeout_cycles, chunk, expected, progress, x_initial,
                              workers, ddr_errors, ddr_latency, ddr_outstanding)


#: cycles the harness polls STATUS for DONE/ERROR after a hybrid run's last frame
_POLL_CYCLES = 2000


@dataclass
class _HybridRuns:
    """The DDR image and the control sequence of a hybrid design's harness runs."""

    image: Path
    base: int

    @classmethod
    def make(cls, net: Network, plan: Plan, verilog: str, folder: Path) -> _HybridRuns | None:
        from ..flow.top import TOP_NAME
        from .network import _ddr_config

        if not plan.uses_ddr:
            return None
        ports = axi_ports(verilog, TOP_NAME)
        if len(ports.read) < len(plan.ddr.master_hps) or not ports.lite:
            raise CosimError(f"{net.name}: the plan has {len(plan.ddr.master_hps)} DDR read "
                             f"master(s) but the design has {len(ports.read)} m_axi read "
                             f"port(s){'' if ports.lite else ' and no s_axil control port'}")
        cfg = _ddr_config(net, plan, 0, folder)
        return cls(Path(cfg["image_path"]), int(cfg["base"]))

    def harness_args(self, frames: int) -> dict:
        """:func:`run_harness` arguments of a run of ``frames`` frames."""
        from ..runtime import regs

        return {"ddr": [(self.base, self.image)],
                "control_writes": [(regs.offset("WEIGHTS_BASE_LO"), self.base),
                                   (regs.offset("FRAMES"), frames),
                                   (regs.offset("CTRL"), regs.CTRL_START)],
                "control_reads": [regs.offset(r.name) for r in regs.CONTROL_REGISTERS
                                  if r.access == "ro"],
                "poll": (regs.offset("STATUS"), regs.STATUS_DONE | regs.STATUS_ERROR,
                         _POLL_CYCLES)}

    @staticmethod
    def named(values: dict[int, int]) -> dict[str, int]:
        from ..runtime import regs

        return {regs.CONTROL_REGISTERS[o // regs.REGISTER_BYTES].name: v
                for o, v in values.items()}

    @staticmethod
    def merge(into: dict[str, int], chunk: dict[str, int]) -> None:
        """Counters add up over chunks, STATUS bits OR, the first error code stays."""
        for name, v in chunk.items():
            if name in ("CYCLES", "STALL_CYCLES", "BYTES_READ"):
                into[name] = into.get(name, 0) + v
            elif name == "STATUS":
                into[name] = into.get(name, 0) | v
            elif name == "ERROR":
                into[name] = into.get(name) or v
            else:
                into[name] = v

    @staticmethod
    def problem(values: dict[str, int]) -> str | None:
        """What a chunk's registers say went wrong, if anything."""
        from ..runtime import regs

        status = values.get("STATUS", 0)
        if status & regs.STATUS_ERROR:
            code = values.get("ERROR", 0)
            return (f"the control block reports a DDR read error (STATUS 0x{status:X}, ERROR "
                    f"{code}: {regs.ERROR_CODES.get(code, 'unknown code')})")
        if not status & regs.STATUS_DONE:
            return f"STATUS 0x{status:X} is not DONE after the last frame"
        return None


#: most cycles' worth of frames in one chunk (bounds a harness process' buffers)
CHUNK_CYCLES = 4 << 20


def _even_chunk(frames: int, workers: int, cycles_per_frame: int) -> int:
    """Frames per chunk: at most :data:`CHUNK_CYCLES` worth, and as many chunks as a
    multiple of ``workers`` of near-equal size, so that the processes finish together
    (400 CNV frames on 2 workers: 4 chunks of 100, not 128 + 128 + 128 + 16)."""
    cap = max(1, CHUNK_CYCLES // max(1, cycles_per_frame))
    rounds = -(-frames // (workers * cap))
    return max(1, -(-frames // (workers * rounds)))


def _simulate_fast(net: Network, plan: Plan, exe: Path, hybrid: _HybridRuns | None,
                   t0: float, build_s: float, frames: int, stall: float, seed: int,
                   images: np.ndarray | None, timeout_cycles: int | None, chunk: int | None,
                   expected: np.ndarray | None,
                   progress: Callable[[FastProgress], None] | None, x_initial: str,
                   workers: int, ddr_errors: Sequence[tuple[int, int, int]],
                   ddr_latency: int, ddr_outstanding: int) -> FastSimResult:
    """:func:`simulate_fast` after the build."""
    x = random_frames(net, frames, seed) if images is None else np.asarray(images, np.int64)
    n = x.shape[0]
    if n < 1:
        raise ValueError("no frames to simulate")
    if expected is not None and len(expected) != n:
        raise ValueError(f"{len(expected)} expected outputs for {n} frames")
    lin, lout = plan.input, plan.output
    workers = max(1, workers)
    if chunk is None:
        chunk = _even_chunk(n, workers, plan.cycles_per_frame)
    if timeout_cycles is None:
        timeout_cycles = max(20_000, 4 * plan.cycles_per_frame
                             + 4 * sum(s.cycles for s in plan.stages if s.kind != "fifo"))
    bpf_in, bpf_out = lin.beats_per_frame, lout.beats_per_frame
    passes = [(0.0, seed)] + ([(float(stall), seed + 1)] if stall > 0 else [])
    bounds = [(s, min(n, s + chunk)) for s in range(0, n, chunk)]
    rand = ("+verilator+rand+reset+2", f"+verilator+seed+{seed + 1}") \
        if x_initial == "unique" else ()
    jobs = [(p, c) for p in range(len(passes)) for c in range(len(bounds))]

    def launch(job: tuple[int, int]) -> PendingRun:
        p, c = job
        lo, hi = bounds[c]
        k = hi - lo
        sends = np.stack([np.arange(k) * bpf_in, np.full(k, bpf_in), np.zeros(k, np.int64)],
                         axis=1)
        ddr = {} if hybrid is None else hybrid.harness_args(k)
        return run_harness(exe, lin.pack(x[lo:hi]), lin.beat_bytes, lout.beat_bytes, bpf_in,
                           sends, recvs=k, recv_beats=bpf_out, stall=passes[p][0],
                           seed=passes[p][1] * 100_003 + c + 1, timeout_cycles=timeout_cycles,
                           drain_cycles=2 * bpf_out + 32, wait=False, extra_args=rand,
                           ddr_errors=ddr_errors, ddr_latency=ddr_latency,
                           ddr_outstanding=ddr_outstanding, **ddr)

    outputs = np.zeros((n, *lout.shape), np.int64)
    gold = np.zeros_like(outputs) if expected is None else np.asarray(expected, np.int64)
    mismatched: set[int] = set()
    framing: list[str] = []
    measured: list[tuple[float, int]] = []
    latency = None
    totals: dict[str, int] = {}
    registers: dict[str, dict[str, int]] = {}
    sim_cycles, harness_s, done = 0, 0.0, 0
    running: dict[int, PendingRun] = {}
    queued = iter(range(len(jobs)))

    def fill() -> None:
        while len(running) < workers:
            j = next(queued, None)
            if j is None:
                return
            running[j] = launch(jobs[j])

    def stop_all() -> None:
        for r in running.values():
            r.proc.kill()
            r.wait()
        running.clear()

    t_sim = time.monotonic()
    cpu0 = _children_cpu()
    fill()
    for j, (p, c) in enumerate(jobs):
        lo, hi = bounds[c]
        k = hi - lo
        try:
            if p == 0 and expected is None:  # golden model while the harness runs
                gold[lo:hi] = forward(net, x[lo:hi], keep=False).output
            run = running.pop(j).wait()
            fill()
        except BaseException:
            stop_all()
            raise
        name = f"stall {passes[p][0]:g}"
        where = f"{name}, frames {lo}..{hi - 1}"
        sim_cycles += run.cycles
        harness_s += run.seconds
        sim_seconds = time.monotonic() - t_sim
        chunk_regs = _HybridRuns.named(run.registers)
        if run.status in ("protocol", "control"):
            stop_all()
            what = "DDR read" if run.status == "protocol" else "control (AXI4-Lite) access"
            raise CosimError(f"{net.name} ({where}): {what} failed: {run.error}")
        if run.status != "ok":
            stop_all()
            why = _HybridRuns.problem(chunk_regs) if chunk_regs else None
            raise CosimError(f"{net.name} ({where}): no AXI-Stream handshake for "
                             f"{timeout_cycles} cycles: {len(run.in_first)} of {k} input "
                             f"frames started, {len(run.out_cycles)} of {k * bpf_out} output "
                             "beats received" + (f"; {why}" if why else ""))
        if hybrid is not None:
            _HybridRuns.merge(registers.setdefault(name, {}), chunk_regs)
            why = _HybridRuns.problem(chunk_regs)
            if why:
                framing.append(f"{where}: {why}")
        beats = len(run.out_last)
        want_last = (np.arange(k * bpf_out) + 1) % bpf_out == 0
        if beats != k * bpf_out:
            framing.append(f"{where}: {beats} output beats, {k * bpf_out} expected")
        elif not np.array_equal(run.out_last.astype(bool), want_last):
            wrong = np.flatnonzero(run.out_last.astype(bool) != want_last)
            framing.append(f"{where}: tlast wrong on output beats {(wrong[:8]).tolist()}")
        if run.inputs_left:
            framing.append(f"{where}: all outputs arrived before every input was taken")
        if run.extra_beats:
            framing.append(f"{where}: {run.extra_beats} output beat(s) after the last frame")
        whole = min(k, beats // bpf_out)
        got = lout.unpack(run.out_data[:whole * bpf_out].reshape(-1)) if whole else \
            np.zeros((0, *lout.shape), np.int64)
        bad = np.flatnonzero(np.any(got.reshape(whole, -1)
                                    != gold[lo:lo + whole].reshape(whole, -1), axis=1))
        mismatched.update(int(lo + b) for b in bad)
        mismatched.update(range(lo + whole, hi))
        if p == 0:
            outputs[lo:lo + whole] = got
            if beats == k * bpf_out:
                ends = run.out_cycles[bpf_out - 1::bpf_out]
                m = _steady_cycles(ends)
                if m is not None:
                    measured.append((m, k))
                if c == 0 and len(run.in_first):
                    latency = int(ends[0] - run.in_first[0])
        totals[name] = totals.get(name, 0) + int(run.out_cycles[-1] + 1 if beats else 0)
        done += k
        if progress is not None:
            progress(FastProgress(done, n * len(passes), sim_cycles, sim_seconds,
                                  len(mismatched), outputs[:min(done, n)]))
    per_frame = (sum(m * k for m, k in measured) / sum(k for _, k in measured)
                 if measured else None)
    return FastSimResult(net.name, "verilator-fast", n, stall, outputs, gold,
                         sorted(mismatched), framing, per_frame, plan.cycles_per_frame,
                         latency, totals, time.monotonic() - t0, sim_cycles=sim_cycles,
                         sim_seconds=sim_seconds, harness_seconds=harness_s,
                         harness_cpu_seconds=_children_cpu() - cpu0,
                         workers=min(workers, len(jobs)), build_seconds=build_s,
                         registers=registers)


_PORT_RE = r"(?:input|output)\s+(?:wire\s+|reg\s+)?(?:\[(\d+):0\]\s+)?{name}\s*[;,)]"


def port_width(verilog: str, toplevel: str, name: str) -> int | None:
    """Width of port ``name`` of module ``toplevel`` in Verilog text (``None``: no such port)."""
    import re

    start = verilog.find(f"module {toplevel}")
    body = verilog[start:verilog.find("endmodule", start)] if start >= 0 else ""
    m = re.search(_PORT_RE.format(name=re.escape(name)), body)
    if m is None:
        return None
    return int(m.group(1)) + 1 if m.group(1) else 1


def dma_transfers(exe: Path, send: np.ndarray, sends: list[list[int]],
                  recvs: list[list[int]], in_beat_bytes: int, out_beat_bytes: int,
                  in_frame_beats: int, stall: float, seed: int, rearm_cycles: int,
                  timeout_cycles: int, drain_cycles: int, **harness: object) -> dict:
    """The simulated board's DMA transfers on the fast path.

    ``sends`` are MM2S transfers ``[start_byte, nbytes, after_recv]`` out of ``send``,
    ``recvs`` S2MM transfers ``[start_byte, nbytes]`` (the model of
    ``benches/tb_simboard.py``; none: a run for the control accesses only). ``harness``
    goes to :func:`run_harness` (the DDR regions and control accesses of a hybrid design).
    Returns what that bench writes: ``recvs`` (per completed receive transfer its
    ``start``, ``bytes`` as hex, ``transferred`` and the ``cycle`` of its last beat),
    ``in_first_cycles``, ``cycles`` and ``registers`` (``{offset: value}`` of the control
    reads), or ``error`` with a message.
    """
    parts, rows, beat = [], [], 0
    for start, nbytes, after in sends:
        if nbytes % in_beat_bytes:
            return {"error": f"MM2S transfer of {nbytes} bytes is not whole "
                             f"{in_beat_bytes}-byte beats"}
        parts.append(np.asarray(send[start:start + nbytes], np.uint8))
        rows.append((beat, nbytes // in_beat_bytes, after))
        beat += nbytes // in_beat_bytes
    recv_bytes = {n for _, n in recvs} or {out_beat_bytes}
    if len(recv_bytes) != 1 or next(iter(recv_bytes)) % out_beat_bytes:
        raise ValueError("the fast path needs receive transfers of one size in whole beats")
    nbytes = recv_bytes.pop()
    run = run_harness(exe, np.concatenate(parts) if parts else np.zeros(0, np.uint8),
                      in_beat_bytes, out_beat_bytes, in_frame_beats,
                      np.array(rows, np.int64).reshape(-1, 3), len(recvs),
                      nbytes // out_beat_bytes, stall, seed, timeout_cycles, rearm_cycles,
                      drain_cycles, **harness)  # type: ignore[arg-type]
    assert isinstance(run, HarnessRun)
    res: dict = {"recvs": [], "in_first_cycles": run.in_first.tolist(), "cycles": run.cycles,
                 "registers": run.registers}
    if run.status in ("protocol", "control"):
        res["error"] = run.error
        return res
    i = 0
    ends = run.out_last.astype(bool)
    for ri, (start, n) in enumerate(recvs):  # a transfer ends at tlast or when full
        j = i
        while j < len(ends) and not ends[j] and (j - i + 1) * out_beat_bytes < n:
            j += 1
        if j >= len(ends):
            break
        got = run.out_data[i:j + 1].reshape(-1)
        if not ends[j]:
            res["error"] = (f"S2MM transfer {ri} ({n} bytes) filled before tlast: the design "
                            "sends longer frames than layout.json says (the DMA flags an "
                            "internal error)")
            return res
        if len(got) < n:
            res["error"] = (f"output frame {ri}: tlast after {len(got)} bytes, layout.json "
                            f"says {n} bytes per frame")
            return res
        res["recvs"].append({"start": start, "bytes": got.tobytes().hex(),
                             "transferred": len(got), "cycle": int(run.out_cycles[j])})
        i = j + 1
    if run.status != "ok":
        why = _HybridRuns.problem(_HybridRuns.named(run.registers)) if run.registers else None
        res["error"] = (f"no handshake for {timeout_cycles} cycles: sent "
                        f"{len(run.in_first)} input frame(s) of {len(sends)} transfer(s), "
                        f"received {len(res['recvs'])} of {len(recvs)} output frames"
                        + (f"; {why}" if why else ""))
    elif run.inputs_left:
        res["error"] = (f"the design produced all {len(recvs)} output frames before every "
                        "input beat was taken")
    elif run.extra_beats:
        res["error"] = (f"the design sent {run.extra_beats} output beat(s) more than "
                        f"{len(recvs)} frames")
    return res
