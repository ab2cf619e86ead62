"""cocotb testbench of a whole generated design (``lowbit_top``): an AXI-Stream source
plays the DMA's MM2S channel (frames back to back, ``tlast`` on every frame's last beat), a
sink plays S2MM; both can pause at random (``stall`` = probability per cycle).

Configuration (``LOWBIT_TB_CONFIG``, see :func:`lowbit_hdl.sim.runner.tb_config`):
``in_words`` (input beats as hex strings), ``in_beats_per_frame``, ``out_beats`` (beats to
collect), ``passes`` (a list of ``{"stall": p, "seed": s}``), ``timeout_cycles`` (no
handshake on either side for that long fails the run), ``result_path`` and optionally
``progress_path`` (rewritten as the run goes: pass, passes, output beats received and
expected). Every pass
resets the design, streams all frames and records the output beats (``tdata``, ``tlast``)
and the cycle of every handshake; the Python side (:func:`lowbit_hdl.sim.network.simulate_network`)
compares them with the golden model and measures the frame rate.

Hybrid designs (``ddr`` in the configuration: ``image_path``, ``base``, ``size``, ``ports``,
``frames``): every ``m_axi<k>`` read port is served by a cocotbext-axi ``AxiRamRead`` over one
shared memory holding the DDR image at ``base``, pausing its AR and R channels at random with
the pass's ``stall``; before streaming, an ``AxiLiteMaster`` writes ``WEIGHTS_BASE_LO``,
``FRAMES`` and ``CTRL.START``, and after the last output it reads the status and performance
registers into the pass's result (``registers``).

With ``stall == 0`` the drivers sleep on edges of ``tready``/``tvalid`` instead of waking
every cycle, which keeps long no-stall runs (CNV: ~33k cycles per frame) fast.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import First, RisingEdge, Timer

from lowbit_hdl.sim.runner import tb_config
from lowbit_hdl.sim.stream import AXIS, CLOCK_NS, StreamSink, StreamSource, cycle


def _pauses(rng: random.Random, p: float):
    """Endless pause pattern: True with probability ``p`` each cycle."""
    while True:
        yield rng.random() < p


class _Ddr:
    """The DDR model and the control master of a hybrid design."""

    def __init__(self, dut, cfg: dict) -> None:
        import mmap

        from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiRamRead, AxiReadBus

        self.cfg = cfg
        size = int(cfg["size"])
        self.mem = mmap.mmap(-1, size)
        image = Path(cfg["image_path"]).read_bytes()
        base = int(cfg["base"])
        self.mem[base:base + len(image)] = image
        self.rams = [AxiRamRead(AxiReadBus.from_prefix(dut, f"m_axi{k}", bus_separator="__"),
                                dut.clk, dut.rst, size=size, mem=self.mem)
                     for k in range(int(cfg["ports"]))]
        self.lite = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__"),
                                  dut.clk, dut.rst)

    def set_stall(self, stall: float, rng: random.Random) -> None:
        for ram in self.rams:
            for ch in (ram.ar_channel, ram.r_channel):
                if stall > 0:
                    ch.set_pause_generator(_pauses(random.Random(rng.random()), stall))
                else:
                    ch.clear_pause_generator()

    async def start(self) -> None:
        from lowbit_hdl.runtime import regs

        await self.lite.write_dword(regs.offset("WEIGHTS_BASE_LO"), int(self.cfg["base"]))
        await self.lite.write_dword(regs.offset("FRAMES"), int(self.cfg["frames"]))
        await self.lite.write_dword(regs.offset("CTRL"), regs.CTRL_START)

    async def registers(self) -> dict[str, int]:
        from lowbit_hdl.runtime import regs

        return {r.name: int(await self.lite.read_dword(regs.offset(r.name)))
                for r in regs.CONTROL_REGISTERS if r.access == "ro"}


class _Progress:
    """Cycle of the last handshake on either side (the watchdog's reference)."""

    def __init__(self) -> None:
        self.last = cycle()

    def kick(self) -> None:
        self.last = cycle()


@cocotb.test()
async def stream_frames(dut) -> None:
    """Every configured pass: reset, stream all frames, record the outputs."""
    cfg = tb_config()
    words = [int(w, 16) for w in cfg["in_words"]]
    per_frame = int(cfg["in_beats_per_frame"])
    count = int(cfg["out_beats"])
    lasts = [int((i + 1) % per_frame == 0) for i in range(len(words))]
    limit = int(cfg.get("timeout_cycles", 200_000))
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    ddr = _Ddr(dut, cfg["ddr"]) if cfg.get("ddr") else None
    results = []
    for npass, p in enumerate(cfg["passes"]):
        stall = float(p.get("stall", 0.0))
        rng = random.Random(int(p.get("seed", 1)) * 7919 + npass)
        dut.s_axis__tvalid.value = 0
        dut.s_axis__tlast.value = 0
        dut.s_axis__tdata.value = 0
        dut.m_axis__tready.value = 0
        dut.rst.value = 1
        for _ in range(4):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)
        if ddr is not None:
            ddr.set_stall(stall, rng)
            await ddr.start()
        dog = _Progress()
        start = cycle()
        source = StreamSource(dut, "s_axis", stall, rng.random(), extra=("tlast",), names=AXIS,
                              on_handshake=dog.kick)
        sink = StreamSink(dut, "m_axis", stall, rng.random(), extra=("tlast",), names=AXIS,
                          on_handshake=dog.kick)
        in_stamps, out_stamps = source.accepted_at, sink.cycles
        src = cocotb.start_soon(source.send(words, {"tlast": lasts}))
        snk = cocotb.start_soon(sink.receive(count, timeout_cycles=None))
        # watchdog: wake every `limit` cycles (not every cycle) and check for progress
        step = max(1, min(limit, 20_000))
        while not snk.done():
            await First(snk.complete, Timer(step * CLOCK_NS, unit="ns"))
            if cfg.get("progress_path"):
                Path(cfg["progress_path"]).write_text(
                    f"{npass} {len(cfg['passes'])} {len(out_stamps)} {count}")
            if not snk.done() and cycle() - dog.last >= limit:
                src.cancel()
                snk.cancel()
                raise AssertionError(
                    f"pass {npass} (stall {stall}): no AXI-Stream handshake for {limit} "
                    f"cycles: {len(in_stamps)} of {len(words)} input beats accepted, "
                    f"{len(out_stamps)} of {count} output beats received")
        if not src.done():
            await First(src.complete, Timer(limit * CLOCK_NS, unit="ns"))
            if not src.done():
                src.cancel()
                raise AssertionError(f"pass {npass}: all outputs arrived but only "
                                     f"{len(in_stamps)} of {len(words)} inputs were taken")
        results.append({"stall": stall, "start_cycle": start, "in_cycles": in_stamps,
                        "out_data": [format(w, "x") for w in sink.words],
                        "out_last": sink.extra["tlast"], "out_cycles": out_stamps,
                        "registers": await ddr.registers() if ddr is not None else {}})
    Path(cfg["result_path"]).write_text(json.dumps({"passes": results}))
