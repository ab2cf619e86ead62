"""cocotb testbench of a whole generated design (``lowbit_top``): an AXI-Stream source
plays the DMA's MM2S channel (frames back to back, ``tlast`` on every frame's last beat), a
sink plays S2MM; both can pause at random (``stall`` = probability per cycle).

Configuration (``LOWBIT_TB_CONFIG``, see :func:`lowbit_hdl.sim.runner.tb_config`):
``in_words`` (input beats as hex strings), ``in_beats_per_frame``, ``out_beats`` (beats to
collect), ``passes`` (a list of ``{"stall": p, "seed": s}``), ``timeout_cycles`` (no
handshake on either side for that long fails the run) and ``result_path``. Every pass
resets the design, streams all frames and records the output beats (``tdata``, ``tlast``)
and the cycle of every handshake; the Python side (:func:`lowbit_hdl.flow.simulate_network`)
compares them with the golden model and measures the frame rate.

With ``stall == 0`` the drivers sleep on edges of ``tready``/``tvalid`` instead of waking
every cycle, which keeps long no-stall runs (CNV: ~33k cycles per frame) fast.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_time

from lowbit_hdl.sim.runner import tb_config

CLOCK_NS = 10


def _cycle() -> int:
    return int(get_sim_time(unit="ns")) // CLOCK_NS


class _Progress:
    """Cycle of the last handshake on either side (the watchdog's reference)."""

    def __init__(self) -> None:
        self.last = _cycle()

    def kick(self) -> None:
        self.last = _cycle()


async def _source(dut, words: list[int], per_frame: int, stall: float, rng: random.Random,
                  dog: _Progress, stamps: list[int]) -> None:
    tdata, tvalid, tready, tlast = (dut.s_axis__tdata, dut.s_axis__tvalid,
                                    dut.s_axis__tready, dut.s_axis__tlast)
    i, n = 0, len(words)
    pending = False  # AXI-Stream: once tvalid is high it stays high until the handshake
    while i < n:
        await RisingEdge(dut.clk)
        if not pending and stall and rng.random() < stall:
            tvalid.value = 0
            continue
        pending = True
        tvalid.value = 1
        tdata.value = words[i]
        tlast.value = int((i + 1) % per_frame == 0)
        await ReadOnly()
        if not stall:
            while not int(tready.value):
                await RisingEdge(tready)
                await ReadOnly()
        elif not int(tready.value):
            continue
        stamps.append(_cycle())
        dog.kick()
        pending = False
        i += 1
    await RisingEdge(dut.clk)
    tvalid.value = 0
    tlast.value = 0


async def _sink(dut, count: int, stall: float, rng: random.Random, dog: _Progress,
                data: list[str], lasts: list[int], stamps: list[int]) -> None:
    tdata, tvalid, tready, tlast = (dut.m_axis__tdata, dut.m_axis__tvalid,
                                    dut.m_axis__tready, dut.m_axis__tlast)
    got = 0
    while got < count:
        await RisingEdge(dut.clk)
        ready = not (stall and rng.random() < stall)
        tready.value = int(ready)
        await ReadOnly()
        if not ready:
            continue
        if not stall:
            while not int(tvalid.value):
                await RisingEdge(tvalid)
                await ReadOnly()
        elif not int(tvalid.value):
            continue
        data.append(format(int(tdata.value), "x"))
        lasts.append(int(tlast.value))
        stamps.append(_cycle())
        dog.kick()
        got += 1
    await RisingEdge(dut.clk)
    tready.value = 0


@cocotb.test()
async def stream_frames(dut) -> None:
    """Every configured pass: reset, stream all frames, record the outputs."""
    cfg = tb_config()
    words = [int(w, 16) for w in cfg["in_words"]]
    per_frame = int(cfg["in_beats_per_frame"])
    count = int(cfg["out_beats"])
    limit = int(cfg.get("timeout_cycles", 200_000))
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
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
        dog = _Progress()
        in_stamps: list[int] = []
        out_data: list[str] = []
        out_last: list[int] = []
        out_stamps: list[int] = []
        start = _cycle()
        src = cocotb.start_soon(_source(dut, words, per_frame, stall, rng, dog, in_stamps))
        snk = cocotb.start_soon(_sink(dut, count, stall, random.Random(rng.random()), dog,
                                      out_data, out_last, out_stamps))
        # watchdog: wake every `limit` cycles (not every cycle) and check for progress
        while not snk.done():
            await First(snk.complete, Timer(limit * CLOCK_NS, unit="ns"))
            if not snk.done() and _cycle() - dog.last >= limit:
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
                        "out_data": out_data, "out_last": out_last, "out_cycles": out_stamps})
    Path(cfg["result_path"]).write_text(json.dumps({"passes": results}))
