"""The simulated board: a :class:`~lowbit_hdl.runtime.backend.Backend` whose DMA feeds the
generated Verilog running under Verilator (or Icarus) through cocotb.

Each :meth:`SimBoard.stream` call is one simulation (builds are cached by
:func:`lowbit_hdl.sim.runner.run_cocotb`): the testbench
(``lowbit_hdl/sim/benches/tb_simboard.py``) models the AXI DMA in simple mode exactly as
:class:`~lowbit_hdl.runtime.backend.PynqBackend` drives it — MM2S transfers become ``tdata``
beats with ``tlast`` on each transfer's last beat (every frame's last beat with
``per_frame``), one S2MM transfer per output frame ending at ``tlast`` — with optional random
stalls on both sides. With ``engine="fast"`` the same DMA model runs in the C++ harness of
:mod:`lowbit_hdl.sim.fast` (Verilator only, no Python per cycle). The received bytes go back
into the receive buffer and through the same unpacking code as on the board; a wrong
``tlast`` position, too many or too few output beats, X/Z data (cocotb engine only:
Verilator's fast build is two-state) or a stall raise :class:`SimBoardError`. The number of
simulated clock cycles comes back in the stream statistics.

Hybrid designs (``layout.ddr``: weights in DDR) run on both engines: the board's
:meth:`~SimBoard.allocate` buffers get distinct, 4 KiB aligned fake physical addresses, and
every simulation serves the design's ``m_axi<k>`` read ports from that physical memory (the
DDR image the runtime wrote, at the address it wrote to ``WEIGHTS_BASE``): cocotbext-axi
read slaves on the cocotb engine, the C++ harness's DDR model on the fast one. The runtime's
control-register accesses (:class:`~lowbit_hdl.runtime.control.HybridControl`) reach the
RTL's own register file through the bench's (or the harness's) AXI4-Lite master, batched
around the simulations, because each simulation starts from reset:

* :meth:`~SimBoard.write_control` queues the write; the next simulation performs, after the
  reset and before any DMA transfer, first the writes to read/write registers of earlier
  simulations (the latest value of each: the state the register file would hold), then the
  queued writes in order (e.g. ``FRAMES`` and ``CTRL.START`` of the batch);
* after the batch's last output frame the bench polls ``STATUS`` (bounded) for ``DONE`` or
  ``ERROR`` and reads every register; :meth:`~SimBoard.read_control` answers from that
  snapshot; a read while writes are queued (or before any simulation: the ``ID`` check)
  runs a short simulation without frames that performs them and reads the registers.

What differs from the board: registers are read after the batch, not while it runs (the
runtime only reads them before ``START`` and after its DMA transfers, so it sees the same
values); a run started without frames does not outlive its simulation; a read outside every
buffer answers ``SLVERR`` (the Zynq interconnect answers ``DECERR``); every read port has
its own memory model (ports sharing an HP port on the board do not share its bandwidth
here) with the model's latency, not DDR's.

Development machine only: imports cocotb and Amaranth (through the build flow) lazily.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..progress import Reporter
from ..runtime.backend import Backend, BackendError, Framing, StreamStats
from ..runtime.layout import DesignLayout

__all__ = ["SimBoard", "SimBoardError", "MAX_TRANSFER_BYTES"]

#: the Vivado flow sets a 26-bit DMA length register
MAX_TRANSFER_BYTES = (1 << 26) - 1
#: the first fake physical address of the board's buffers
_FIRST_ADDRESS = 0x1000_0000
#: cycles the bench polls STATUS for DONE/ERROR after a batch's last output frame
_POLL_CYCLES = 2000


class _SimBuffer(np.ndarray):
    """A buffer of the simulated board: an ndarray with a fake ``physical_address``."""

    physical_address: int


class SimBoardError(BackendError):
    """The simulated design broke the stream contract (framing, widths, stalls)."""


class SimBoard(Backend):
    """A board made of the generated Verilog and a simulated AXI DMA.

    ``verilog`` is Verilog text or file paths with module ``toplevel``; ``layout`` is the
    design's :class:`DesignLayout` (checked against the ports at the first transfer).
    ``stall`` is the probability per cycle of the DMA pausing either stream;
    ``rearm_cycles`` the cycles between two receive transfers (the CPU re-arming S2MM;
    0 by default so that cycles per image measure the design). ``engine`` is ``"cocotb"``
    (the cocotb bench) or ``"fast"`` (the Verilator C++ harness, same DMA model).
    ``waves`` (cocotb engine only) records a waveform of every :meth:`stream` call: the first
    to that file, the ``k``-th (from 1) to ``<stem>.batch<k><suffix>`` beside it.
    ``reporter`` shows each call (a DMA round trip, one batch) as a progress line; ``batches``
    is the number of calls expected, for the line's ``k/N``.
    """

    requires_bitstream = False
    simulated = True

    def __init__(self, verilog: str | Path | list[Path], layout: DesignLayout,
                 toplevel: str = "lowbit_top", simulator: str = "verilator",
                 stall: float = 0.0, seed: int = 1, rearm_cycles: int = 0,
                 timeout_cycles: int | None = None, build_root: Path | None = None,
                 max_transfer_bytes: int = MAX_TRANSFER_BYTES, engine: str = "cocotb",
                 waves: Path | None = None, reporter: Reporter | None = None,
                 batches: int | None = None) -> None:
        if not 0.0 <= stall < 1.0:
            raise ValueError(f"stall={stall} must be in [0, 1)")
        if engine not in ("cocotb", "fast"):
            raise ValueError(f"engine={engine!r} must be 'cocotb' or 'fast'")
        if engine == "fast" and simulator != "verilator":
            raise ValueError("the fast engine runs on Verilator only")
        if engine == "fast" and waves is not None:
            raise ValueError("the fast engine records no waveforms: use the cocotb engine")
        self.waves = None if waves is None else Path(waves)
        self.reporter = reporter
        self.batches = batches
        self.engine = engine
        self._exe: Path | None = None
        self.verilog = verilog
        self.layout = layout
        self.toplevel = toplevel
        self.simulator = simulator
        self.stall = stall
        self.seed = seed
        self.rearm_cycles = rearm_cycles
        # the watchdog (cycles without a handshake at the stream ports): long enough for a
        # design that computes for a whole frame between its input and its output (an engine)
        self.timeout_cycles = timeout_cycles if timeout_cycles is not None else \
            max(100_000, 4 * layout.cycles_per_frame)
        self.build_root = build_root
        self.max_transfer_bytes = max_transfer_bytes
        self.loaded = False
        self.runs = 0
        self.total_cycles = 0
        self._buffers: list[_SimBuffer] = []
        self._next_address = _FIRST_ADDRESS
        self._control: str | None = None
        #: queued control writes (offset, value), performed by the next simulation
        self._pending: list[tuple[int, int]] = []
        #: read/write registers written in earlier simulations: {offset: value}
        self._rw_state: dict[int, int] = {}
        #: the register file as read at the end of the last simulation: {offset: value}
        self._registers: dict[int, int] | None = None

    @classmethod
    def from_network(cls, net: Any, clock_mhz: float = 100.0, library: dict | None = None,
                     plan: Any = None, **kwargs: Any) -> SimBoard:
        """Elaborate ``net`` (parameters attached) with the build flow
        (:class:`lowbit_hdl.flow.top.NetworkTop`, the same top level ``build`` writes to
        ``rtl/``) and simulate that. ``library`` replaces stage constructors (see
        ``NetworkTop``); ``plan`` is the design's :class:`~lowbit_hdl.flow.plan.Plan`
        (default: :func:`~lowbit_hdl.flow.plan.plan_network` of ``net``, a dataflow design;
        pass a hybrid plan for weights in DDR). The board's :attr:`layout` is the one the
        build writes to layout.json."""
        from ..flow.top import TOP_NAME, NetworkTop, elaborate_verilog

        top = NetworkTop(net, plan, clock_mhz=clock_mhz, library=library)
        layout = top.plan.layout()
        return cls(elaborate_verilog(top, TOP_NAME), layout, toplevel=TOP_NAME, **kwargs)

    @classmethod
    def from_build(cls, build_dir: str | Path, **kwargs: Any) -> SimBoard:
        """The design of a build folder: ``rtl/lowbit_top.v`` and ``layout.json``."""
        build_dir = Path(build_dir)
        top = build_dir / "rtl" / "lowbit_top.v"
        if not top.exists():
            raise FileNotFoundError(f"{top} does not exist: the build wrote no RTL")
        layout = DesignLayout.load(build_dir / "layout.json")
        return cls(top.read_text(), layout, toplevel="lowbit_top", **kwargs)

    def load(self, bitfile: Path | None, dma_name: str) -> None:
        self.loaded = True

    def allocate(self, nbytes: int) -> np.ndarray:
        buf = np.zeros(int(nbytes), dtype=np.uint8).view(_SimBuffer)
        buf.physical_address = self._next_address
        self._next_address += -(-max(buf.nbytes, 1) // 4096) * 4096 + 4096
        self._buffers.append(buf)
        return buf

    def physical_address(self, buf: np.ndarray) -> int:
        if not any(buf is b for b in self._buffers):
            raise SimBoardError("the buffer was not allocated by this board (allocate())")
        return int(buf.physical_address)

    # -- the control port of hybrid designs ------------------------------------------------

    def _check_hybrid(self) -> None:
        if self.layout.ddr is None:
            raise SimBoardError("the design has no control port: layout.json describes no "
                                "DDR image (not a hybrid design)")

    def open_control(self, name: str) -> None:
        if not self.loaded:
            raise SimBoardError("load() the (simulated) overlay before opening the control "
                                "port")
        self._check_hybrid()
        self._control = name

    def read_control(self, offset: int) -> int:
        if self._control is None:
            raise SimBoardError("open_control() before reading control registers")
        if self._registers is None or self._pending:  # a run without frames
            if self.engine == "fast":
                self._stream_fast(np.zeros(0, np.uint8), [], [], Framing.for_layout(self.layout))
            else:
                self._stream_cocotb(np.zeros(0, np.uint8), [], [], None, 0)
        assert self._registers is not None
        if offset not in self._registers:
            raise SimBoardError(f"no control register at offset 0x{offset:X}")
        return self._registers[offset]

    def write_control(self, offset: int, value: int) -> None:
        if self._control is None:
            raise SimBoardError("open_control() before writing control registers")
        self._pending.append((int(offset), int(value)))

    def _control_config(self) -> dict:
        """The bench's ``control`` entry: the replayed writes (rw state, then queued)."""
        from ..runtime import regs

        writes = [[o, v] for o, v in self._rw_state.items()] + \
            [[o, v] for o, v in self._pending]
        for o, v in self._pending:
            if regs.CONTROL_REGISTERS[o // regs.REGISTER_BYTES].access == "rw":
                self._rw_state[o] = v
        self._pending = []
        return {"writes": writes, "poll_cycles": _POLL_CYCLES}

    def _ddr_config(self, work: Path) -> dict:
        """The bench's ``ddr`` entry: every buffer at its physical address."""
        assert self.layout.ddr is not None
        buffers = []
        for k, buf in enumerate(self._buffers):
            path = work / f"buffer{k}.npy"
            np.save(path, np.asarray(buf, np.uint8).reshape(-1))
            buffers.append([int(buf.physical_address), str(path)])
        return {"ports": len(self.layout.ddr.master_hps), "buffers": buffers}

    # -- one simulation per call -------------------------------------------------------------

    @contextlib.contextmanager
    def _first_build_lock(self) -> Iterator[None]:
        """Serialise the first (building) run of a design across processes (pytest -n)."""
        from .runner import DEFAULT_BUILD_ROOT

        root = Path(self.build_root) if self.build_root is not None else DEFAULT_BUILD_ROOT
        root.mkdir(parents=True, exist_ok=True)
        text = self.verilog if isinstance(self.verilog, str) else "".join(
            Path(p).read_text() for p in ([self.verilog] if isinstance(self.verilog, Path)
                                          else self.verilog))
        key = hashlib.sha256((self.simulator + self.toplevel + text).encode()).hexdigest()[:16]
        stamp = root / f".simboard-{self.toplevel}-{key}.ok"
        if stamp.exists():
            yield
            return
        with open(root / f".simboard-{self.toplevel}-{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
                stamp.touch()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def stream(self, send: np.ndarray, recv: np.ndarray, frames: int, framing: Framing,
               timeout_s: float = 10.0) -> StreamStats:
        if not self.loaded:
            raise SimBoardError("load() the (simulated) overlay before streaming")
        f = framing
        if f.per_frame:
            sends = [[k * f.in_stride, f.in_frame_bytes, k] for k in range(frames)]
        else:
            sends = [[0, frames * f.in_frame_bytes, 0]]
        recvs = [[k * f.out_stride, f.out_frame_bytes] for k in range(frames)]
        for _, n, _ in sends:
            if n > self.max_transfer_bytes:
                raise SimBoardError(f"MM2S transfer of {n} bytes exceeds the DMA maximum "
                                    f"{self.max_transfer_bytes}")
        what = (f"batch {self.runs + 1}{f'/{self.batches}' if self.batches else ''}: "
                f"{frames} frame(s) through the simulated board ({self.engine})")
        if self.engine == "fast":
            with (self.reporter.ticking(what) if self.reporter is not None
                  else contextlib.nullcontext()):
                res = self._stream_fast(send, sends, recvs, f)
        else:  # run_cocotb reports its build and run on the same reporter
            if self.reporter is not None:
                self.reporter.update(what, force=True)
            res = self._stream_cocotb(send, sends, recvs, f, frames)
        return self._collect(res, recv, frames, f, len(sends), len(recvs))

    def _stream_fast(self, send: np.ndarray, sends: list, recvs: list, f: Framing) -> dict:
        from .fast import axi_ports, build_harness, dma_transfers, port_width

        if self._exe is None:
            text = self.verilog if isinstance(self.verilog, str) else "".join(
                Path(p).read_text() for p in ([self.verilog] if isinstance(self.verilog, Path)
                                              else self.verilog))
            for port, nbytes in (("s_axis__tdata", f.in_beat_bytes),
                                 ("m_axis__tdata", f.out_beat_bytes)):
                width = port_width(text, self.toplevel, port)
                if width is None:
                    raise SimBoardError(f"the design has no port {port}; the top level needs "
                                        "s_axis__*/m_axis__* AXI-Stream ports, clk and rst")
                if width != 8 * nbytes:
                    raise SimBoardError(f"{port} is {width} bits wide but layout.json says "
                                        f"{8 * nbytes} bits")
            if self.layout.ddr is not None:
                ports = axi_ports(text, self.toplevel)
                if len(ports.read) < len(self.layout.ddr.master_hps) or not ports.lite:
                    raise SimBoardError(
                        f"layout.json has {len(self.layout.ddr.master_hps)} DDR read master(s) "
                        "but the "
                        f"design has {len(ports.read)} m_axi<k>__* read port(s)"
                        + ("" if ports.lite else " and no AXI4-Lite control port s_axil__*"))
            self._exe = build_harness(text, self.toplevel, self.build_root)
        work = Path(tempfile.mkdtemp(prefix="simboard-fast-"))
        try:
            extra: dict = {}
            if self.layout.ddr is not None:
                extra = self._fast_ddr_args(work, bool(recvs))
            res = dma_transfers(self._exe, send, sends, recvs, f.in_beat_bytes,
                                f.out_beat_bytes, f.in_frame_bytes // f.in_beat_bytes,
                                self.stall, self.seed + self.runs, self.rearm_cycles,
                                self.timeout_cycles,
                                2 * (f.out_frame_bytes // f.out_beat_bytes) + 32, **extra)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if recvs:
            self.runs += 1
        if "error" in res:
            raise SimBoardError(res["error"])
        if self.layout.ddr is not None:
            self._registers = {int(o): int(v) for o, v in res["registers"].items()}
        return res

    def _fast_ddr_args(self, work: Path, frames: bool) -> dict:
        """The harness's DDR regions (every buffer at its physical address) and control
        accesses (the replayed writes; after frames a STATUS poll; every register read)."""
        from ..runtime import regs

        ddr = []
        for k, buf in enumerate(self._buffers):
            path = work / f"buffer{k}.bin"
            np.asarray(buf, np.uint8).reshape(-1).tofile(path)
            ddr.append((int(buf.physical_address), path))
        args: dict = {"ddr": ddr, "control_reads": list(regs.OFFSETS.values())}
        if self._control is not None:
            control = self._control_config()
            args["control_writes"] = [(int(o), int(v)) for o, v in control["writes"]]
            if frames:
                args["poll"] = (regs.offset("STATUS"), regs.STATUS_DONE | regs.STATUS_ERROR,
                                int(control["poll_cycles"]))
        return args

    def _stream_cocotb(self, send: np.ndarray, sends: list, recvs: list, f: Framing | None,
                       frames: int) -> dict:
        """One simulation; ``f`` is ``None`` for a control-register access without frames."""
        from .benches import BENCH_DIR
        from .runner import CosimError, run_cocotb

        work = Path(tempfile.mkdtemp(prefix="simboard-"))
        try:
            lay = self.layout
            if f is None:  # no frames: the layout's beats (the bench checks the widths)
                f = Framing.for_layout(lay)
            np.save(work / "mm2s.npy", np.asarray(send[:f.send_bytes(frames)], np.uint8))
            config = {
                "mm2s": str(work / "mm2s.npy"), "results": str(work / "results.json"),
                "in_beat_bytes": f.in_beat_bytes, "out_beat_bytes": f.out_beat_bytes,
                "in_frame_beats": f.in_frame_bytes // f.in_beat_bytes,
                "sends": sends, "recvs": recvs, "stall": self.stall,
                "seed": self.seed + self.runs, "rearm_cycles": self.rearm_cycles,
                "timeout_cycles": self.timeout_cycles,
                "drain_cycles": 2 * (f.out_frame_bytes // f.out_beat_bytes) + 32,
            }
            if lay.ddr is not None:
                config["ddr"] = self._ddr_config(work)
                if self._control is not None:
                    config["control"] = self._control_config()
            waves = self.waves
            if waves is not None and self.runs:
                waves = waves.with_name(f"{waves.stem}.batch{self.runs}{waves.suffix}")
            if frames:
                self.runs += 1
            else:  # a control-register access: no waveform, not a batch
                waves = None
            try:
                with self._first_build_lock():
                    run_cocotb(self.verilog, self.toplevel, "tb_simboard", BENCH_DIR, config,
                               simulator=self.simulator, build_root=self.build_root,
                               seed=self.seed, waves=waves, reporter=self.reporter)
            except CosimError as e:
                res_path = work / "results.json"
                if res_path.exists():
                    err = json.loads(res_path.read_text()).get("error")
                    if err:
                        raise SimBoardError(err) from None
                raise SimBoardError(str(e)) from e
            res = json.loads((work / "results.json").read_text())
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if res.get("registers"):
            self._registers = {int(o): int(v) for o, v in res["registers"].items()}
        return res

    def _collect(self, res: dict, recv: np.ndarray, frames: int, f: Framing, nsends: int,
                 nrecvs: int) -> StreamStats:
        got = res["recvs"]
        if len(got) != frames:
            raise SimBoardError(f"{len(got)} output frames received, {frames} expected")
        for k, r in enumerate(got):
            if r["transferred"] != f.out_frame_bytes:
                raise SimBoardError(f"output frame {k}: tlast after {r['transferred']} bytes, "
                                    f"layout.json says {f.out_frame_bytes} bytes per frame")
            recv[r["start"]:r["start"] + r["transferred"]] = np.frombuffer(
                bytes.fromhex(r["bytes"]), np.uint8)
        first_in = res["in_first_cycles"]
        done = [r["cycle"] for r in got]
        cycles = done[-1] - first_in[0] + 1
        latency = [d - s + 1 for s, d in zip(first_in, done, strict=True)]
        self.total_cycles += cycles
        return StreamStats(frames, cycles / (self.layout.clock_mhz * 1e6), nsends,
                           nrecvs, simulated=True, cycles=cycles, latency_cycles=latency,
                           extra={"sim_cycles_total": res.get("cycles")})
