"""Whole-network verification: the generated design under cocotb against the golden model.

:func:`simulate_network` elaborates the top level, streams ``frames`` random (or given)
frames through it back to back — once without stalls (for the frame-rate measurement) and,
with ``stall > 0``, once more with random pauses on both AXI-Stream sides — and checks every
output beat bit-exactly against :func:`lowbit_hdl.golden.forward`, and ``tlast`` on exactly
the last beat of every output frame.

Measured cycles per frame are the steady-state spacing of output frame ends in the no-stall
pass: ``(end[N-1] - end[N-1-k]) / k`` over the last ``k = ⌈(N-1)/2⌉`` frames, so the pipeline
fill does not count. They are compared with the plan's analytic figure
(:attr:`~lowbit_hdl.flow.plan.Plan.cycles_per_frame`, the cost model's bottleneck).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..flow.plan import Plan, StageKind, plan_network
from ..golden import forward
from ..ir import Network
from ..runtime.words import words_from_bytes, words_to_bytes

__all__ = ["SimResult", "simulate_network", "random_frames", "TB_MODULE"]

TB_MODULE = "tb_network"


@dataclass
class SimResult:
    """Outcome of :func:`simulate_network` (outputs as NCHW integers)."""

    network: str
    simulator: str
    frames: int
    stall: float
    outputs: np.ndarray
    expected: np.ndarray
    mismatched_frames: list[int]
    framing_errors: list[str]
    cycles_per_frame: float | None
    analytic_cycles: int
    first_frame_latency: int | None
    total_cycles: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    #: hybrid designs: the control block's read-only registers after each pass
    registers: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatched_frames and not self.framing_errors

    @property
    def throughput_ratio(self) -> float | None:
        """Analytic / measured cycles per frame (1.0 = the analytic bound is reached)."""
        if not self.cycles_per_frame:
            return None
        return self.analytic_cycles / self.cycles_per_frame

    def summary(self, clock_mhz: float = 100.0) -> str:
        lines = [f"{self.network} on {self.simulator}: {self.frames} frames, "
                 + ("all outputs bit-exact" if self.ok else
                    f"MISMATCH in frames {self.mismatched_frames} "
                    + "; ".join(self.framing_errors))]
        if self.cycles_per_frame:
            m, a = self.cycles_per_frame, self.analytic_cycles
            lines.append(f"cycles per frame: measured {m:,.1f} (steady state, no stalls), "
                         f"analytic {a:,} ({100 * (m - a) / a:+.2f}%) → "
                         f"{clock_mhz * 1e6 / m:,.1f} frames/s at {clock_mhz:g} MHz")
        if self.first_frame_latency is not None:
            lines.append(f"first-frame latency: {self.first_frame_latency:,} cycles "
                         f"(first input beat → last output beat)")
        for name, cyc in self.total_cycles.items():
            lines.append(f"pass {name}: {cyc:,} cycles")
        lines.append(f"wall time: {self.wall_seconds:.1f} s")
        return "\n".join(lines)




def random_frames(net: Network, n: int, seed: int = 0) -> np.ndarray:
    """``n`` random input frames (NCHW) over the input type's whole range."""
    rng = np.random.default_rng(seed)
    dt = net.input_dtype
    shape = (n, *net.input_shape)
    if dt.is_bipolar:
        return rng.choice(np.array([-1, 1]), size=shape).astype(np.int64)
    return rng.integers(dt.min, dt.max + 1, size=shape).astype(np.int64)


#: where the simulated DDR holds the image of a hybrid design (not 0, so the base register
#: is exercised)
SIM_DDR_BASE = 0x10000


def _ddr_config(net: Network, plan: Plan, frames: int, folder: Path) -> dict:
    """The DDR part of the bench configuration: the packed image in a file, its base, the
    memory size and the number of read ports."""
    from ..flow.deploy import ddr_parameters
    from ..runtime.control import split_ddr_parameters
    from ..runtime.ddrimage import REGION_ALIGN, pack_image

    infos = {i.name: i for i in plan.infos}
    image = pack_image(plan.ddr, *split_ddr_parameters(ddr_parameters(plan.ddr, infos.values())))
    path = folder / "ddr_image.bin"
    path.write_bytes(image)
    size = -(-(SIM_DDR_BASE + len(image) + REGION_ALIGN) // REGION_ALIGN) * REGION_ALIGN
    return {"image_path": str(path), "base": SIM_DDR_BASE, "size": size,
            "ports": len(plan.ddr.master_hps), "frames": frames}


def _hex_words(data: np.ndarray, beat_bytes: int) -> list[str]:
    """Stream bytes → one hex string per beat (the testbench's configuration form)."""
    return [format(w, "x") for w in words_from_bytes(data, beat_bytes)]


def simulate_network(net: Network, frames: int = 10, simulator: str = "verilator",
                     stall: float = 0.0, seed: int = 0, images: np.ndarray | None = None,
                     clock_mhz: float = 100.0, plan: Plan | None = None,
                     verilog: str | None = None, build_root: Path | None = None,
                     timeout_cycles: int | None = None, library: dict | None = None,
                     waves: Path | None = None) -> SimResult:
    """Simulate the generated design of ``net`` on ``frames`` frames (see the module doc).

    ``images`` (NCHW) replaces the random frames; ``verilog`` reuses an elaborated top level
    (``lowbit_top``) of the same ``plan``; ``library`` replaces the stage constructors (see
    :class:`~lowbit_hdl.flow.top.NetworkTop`); ``waves`` writes a waveform of the run there
    (see :func:`~lowbit_hdl.sim.runner.run_cocotb`). Progress (frames received) goes to
    stderr. Raises :class:`lowbit_hdl.sim.runner.CosimError` when
    the simulation fails (e.g. the watchdog sees no handshake for ``timeout_cycles``).
    """
    from ..flow.top import TOP_NAME, NetworkTop, elaborate_verilog
    from .benches import BENCH_DIR
    from .runner import run_cocotb

    t0 = time.monotonic()
    if plan is None:
        plan = plan_network(net, clock_mhz)
    if verilog is None:
        verilog = elaborate_verilog(NetworkTop(net, plan, library=library), TOP_NAME)
    x = random_frames(net, frames, seed) if images is None else np.asarray(images, np.int64)
    frames = x.shape[0]
    expected = forward(net, x, keep=False).output
    lin, lout = plan.input, plan.output
    in_words = _hex_words(lin.pack(x), lin.beat_bytes)
    out_beats = frames * lout.beats_per_frame
    if timeout_cycles is None:
        work = sum(s.cycles for s in plan.stages if s.kind is not StageKind.FIFO)
        timeout_cycles = max(20_000, 4 * plan.cycles_per_frame + 4 * work)
    passes = [{"stall": 0.0, "seed": seed}]
    if stall > 0:
        passes.append({"stall": float(stall), "seed": seed + 1})
    with tempfile.TemporaryDirectory(prefix="lowbit_sim_") as tmp:
        result_path = Path(tmp) / "result.json"
        progress_path = Path(tmp) / "progress"
        cfg = {"in_words": in_words, "in_beats_per_frame": lin.beats_per_frame,
               "out_beats": out_beats, "passes": passes, "timeout_cycles": timeout_cycles,
               "result_path": str(result_path), "progress_path": str(progress_path)}
        if plan.uses_ddr:
            cfg["ddr"] = _ddr_config(net, plan, frames, Path(tmp))

        def detail() -> str:
            p, np_, got, _ = (int(v) for v in progress_path.read_text().split())
            return (f"pass {p + 1}/{np_}, {got // lout.beats_per_frame:,}/{frames:,} "
                    "frames")

        run_cocotb(verilog, TOP_NAME, TB_MODULE, BENCH_DIR, cfg, simulator=simulator,
                   build_root=build_root, seed=seed + 1,
                   timeout_note=f" (network {net.name})", waves=waves, detail=detail)
        res = json.loads(result_path.read_text())
    mismatched: set[int] = set()
    framing: list[str] = []
    outputs = None
    measured = None
    latency = None
    totals: dict[str, int] = {}
    registers: dict[str, dict[str, int]] = {}
    bpf = lout.beats_per_frame
    for p in res["passes"]:
        name = f"stall {p['stall']:g}"
        got = lout.unpack(words_to_bytes((int(w, 16) for w in p["out_data"]),
                                         lout.beat_bytes))
        if outputs is None:
            outputs = got
        bad = np.nonzero(np.any(got.reshape(frames, -1) != expected.reshape(frames, -1),
                                axis=1))[0]
        mismatched.update(int(b) for b in bad)
        want_last = [int((i + 1) % bpf == 0) for i in range(out_beats)]
        if p["out_last"] != want_last:
            wrong = [i for i, (a, b) in enumerate(zip(p["out_last"], want_last, strict=True))
                     if a != b]
            framing.append(f"{name}: tlast wrong on output beats {wrong[:8]}")
        ends = [c for c, last in zip(p["out_cycles"], want_last, strict=True) if last]
        totals[name] = p["out_cycles"][-1] - p["start_cycle"]
        if p.get("registers"):
            registers[name] = p["registers"]
        if p["stall"] == 0.0:
            if frames >= 2:
                k = math.ceil((frames - 1) / 2)
                measured = (ends[-1] - ends[-1 - k]) / k
            latency = ends[0] - p["in_cycles"][0]
    assert outputs is not None
    return SimResult(net.name, simulator, frames, stall, outputs, expected,
                     sorted(mismatched), framing, measured, plan.cycles_per_frame, latency,
                     totals, time.monotonic() - t0, registers)
