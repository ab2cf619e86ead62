"""cocotb side of the simulated board: a cycle-level model of the AXI DMA (simple mode) in
front of the generated design's AXI-Stream ports.

Configuration (from :func:`lowbit_hdl.sim.runner.tb_config`):

* ``mm2s``: path of a ``.npy`` with the send buffer bytes; ``in_beat_bytes``,
  ``out_beat_bytes``, ``in_frame_beats`` (for cycle stamps);
* ``sends``: MM2S transfers ``[start, nbytes, after_recv]`` in order: a transfer starts
  when the previous one is complete and ``after_recv`` receive transfers are done (the
  runtime's waits); its bytes become ``tdata`` beats (little endian) with ``tlast`` on the
  transfer's last beat;
* ``recvs``: S2MM transfers ``[start, nbytes]``: the first is armed at the start, each next
  one ``rearm_cycles`` after the previous completes; a transfer completes at ``tlast``
  (possibly short) and fails when its buffer fills before ``tlast``;
* ``stall``: probability per cycle of MM2S holding ``tvalid`` low and S2MM ``tready`` low;
* ``timeout_cycles``: cycles without any handshake before giving up;
* ``results``: path of the JSON written at the end (also on failure, with ``error``).

Hybrid designs (weights in DDR) also get:

* ``ddr``: ``{"ports": k, "buffers": [[physical_address, path of a .npy], ...]}``: every
  ``m_axi<k>`` read port is served by a cocotbext-axi ``AxiSlaveRead`` over the physical
  memory made of those buffers (the runtime's ``allocate`` buffers at their addresses); a
  read outside every buffer answers ``SLVERR``; with ``stall`` its AR and R channels pause
  at random too;
* ``control``: ``{"writes": [[offset, value], ...], "poll_cycles": n}``: after the reset an
  ``AxiLiteMaster`` on ``s_axil`` performs the writes in order (the runtime's register writes,
  replayed) before the first DMA transfer; after the last output frame it polls ``STATUS``
  until ``DONE`` or ``ERROR`` (at most ``poll_cycles`` cycles, only when frames ran) and reads
  every register into ``registers`` (``{offset: value}``) of the results.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from lowbit_hdl.runtime.words import words_from_bytes, words_to_bytes
from lowbit_hdl.sim.runner import tb_config
from lowbit_hdl.sim.stream import cycle as cycle_now
from lowbit_hdl.sim.stream import start_clock_reset

PORTS = ("s_axis__tdata", "s_axis__tvalid", "s_axis__tready", "s_axis__tlast",
         "m_axis__tdata", "m_axis__tvalid", "m_axis__tready", "m_axis__tlast", "clk", "rst")


class BoardError(AssertionError):
    """The design or the transfers did not behave as the DMA needs."""


@cocotb.test()
async def board(dut) -> None:
    cfg = tb_config()
    results: dict = {"recvs": [], "in_first_cycles": [], "send_done_cycles": [],
                     "registers": {}}
    try:
        await _run(dut, cfg, results)
    except BoardError as e:
        results["error"] = str(e)
        raise
    finally:
        Path(cfg["results"]).write_text(json.dumps(results))


async def _run(dut, cfg: dict, results: dict) -> None:
    missing = [p for p in PORTS if not hasattr(dut, p)]
    if missing:
        raise BoardError(f"the design has no port(s) {missing}; the top level needs "
                         "s_axis__*/m_axis__* AXI-Stream ports, clk and rst")
    ib, ob = int(cfg["in_beat_bytes"]), int(cfg["out_beat_bytes"])
    for port, nbytes in (("s_axis__tdata", ib), ("m_axis__tdata", ob)):
        width = len(getattr(dut, port))
        if width != 8 * nbytes:
            raise BoardError(f"{port} is {width} bits wide but layout.json says "
                             f"{8 * nbytes} bits")
    data = np.load(cfg["mm2s"]).astype(np.uint8)
    sends = [tuple(int(v) for v in s) for s in cfg["sends"]]
    recvs = [tuple(int(v) for v in r) for r in cfg["recvs"]]
    bpf = int(cfg["in_frame_beats"])
    stall = float(cfg.get("stall", 0.0))
    rearm_cycles = int(cfg.get("rearm_cycles", 0))
    timeout = int(cfg.get("timeout_cycles", 100_000))
    rng = random.Random(int(cfg.get("seed", 1)))

    s_data, s_valid, s_ready, s_last = (dut.s_axis__tdata, dut.s_axis__tvalid,
                                        dut.s_axis__tready, dut.s_axis__tlast)
    m_data, m_valid, m_ready, m_last = (dut.m_axis__tdata, dut.m_axis__tvalid,
                                        dut.m_axis__tready, dut.m_axis__tlast)
    s_valid.value = 0
    s_last.value = 0
    s_data.value = 0
    m_ready.value = 0
    lite = _attach_ddr(dut, cfg, rng, stall) if cfg.get("ddr") else None
    await start_clock_reset(dut)
    control = cfg.get("control")
    if control is not None:
        if lite is None:
            raise BoardError("control register writes need the design's DDR ports (ddr)")
        for off, value in control["writes"]:
            await lite.write_dword(int(off), int(value))

    def beats_of(start: int, nbytes: int) -> list[int]:
        if nbytes % ib:
            raise BoardError(f"MM2S transfer of {nbytes} bytes is not whole {ib}-byte beats")
        return words_from_bytes(data[start:start + nbytes], ib)

    si, words, sb, send_active, offered = 0, [], 0, False, False
    in_beats = 0
    ri, armed, rearm, rbuf = 0, True, 0, bytearray()
    cycle, idle = 0, 0
    total_in = sum(n for _, n, _ in sends) // ib

    while ri < len(recvs):
        await RisingEdge(dut.clk)
        cycle += 1
        if not send_active and si < len(sends) and ri >= sends[si][2]:
            words, sb, send_active = beats_of(sends[si][0], sends[si][1]), 0, True
        if not armed and ri < len(recvs):
            if rearm <= 0:
                armed = True
            else:
                rearm -= 1
        if send_active and not offered:
            offered = rng.random() >= stall
        if send_active and offered:
            s_data.value = words[sb]
            s_last.value = int(sb == len(words) - 1)
        s_valid.value = int(send_active and offered)
        ready = armed and rng.random() >= stall
        m_ready.value = int(ready)
        await ReadOnly()
        progress = False
        if send_active and offered and int(s_ready.value):
            if in_beats % bpf == 0:
                results["in_first_cycles"].append(cycle)
            in_beats += 1
            sb += 1
            offered = False
            progress = True
            if sb == len(words):
                send_active = False
                si += 1
                results["send_done_cycles"].append(cycle)
        if ready and int(m_valid.value):
            v = m_data.value
            if not v.is_resolvable:
                raise BoardError(f"m_axis__tdata is {v} (X/Z) on a valid beat, output frame "
                                 f"{ri}")
            rbuf += words_to_bytes([v.to_unsigned()], ob)
            last = int(m_last.value)
            progress = True
            start, nbytes = recvs[ri]
            if last or len(rbuf) >= nbytes:
                if len(rbuf) < nbytes:
                    raise BoardError(f"output frame {ri}: tlast after {len(rbuf)} bytes, "
                                     f"layout.json says {nbytes} bytes per frame")
                if not last:
                    raise BoardError(
                        f"S2MM transfer {ri} ({nbytes} bytes) filled before tlast: the design "
                        "sends longer frames than layout.json says (the DMA flags an "
                        "internal error)")
                results["recvs"].append({"start": start, "bytes": rbuf.hex(),
                                         "transferred": len(rbuf), "cycle": cycle})
                ri += 1
                armed, rearm, rbuf = False, rearm_cycles, bytearray()
        idle = 0 if progress else idle + 1
        if idle > timeout:
            raise BoardError(f"no handshake for {timeout} cycles: sent {in_beats} of "
                             f"{total_in} input beats, received {ri} of {len(recvs)} output "
                             f"frames (+{len(rbuf)} bytes)")
    if si < len(sends):
        raise BoardError(f"the design produced all {len(recvs)} output frames after only "
                         f"{in_beats} of {total_in} input beats")
    # anything more coming out would land in the next batch: watch the output a while
    await RisingEdge(dut.clk)
    s_valid.value = 0
    m_ready.value = 1
    extra = 0
    for _ in range(int(cfg.get("drain_cycles", 64))):
        await ReadOnly()
        if int(m_valid.value):
            extra += 1
        await RisingEdge(dut.clk)
    m_ready.value = 0
    if extra:
        raise BoardError(f"the design sent {extra} output beat(s) more than "
                         f"{len(recvs)} frames")
    results["cycles"] = cycle
    if control is not None:
        results["registers"] = await _read_registers(lite, int(control.get("poll_cycles", 0))
                                                     if recvs else 0)


class _PhysicalMemory:
    """The runtime's buffers at their (fake) physical addresses, read by the AXI slaves;
    an address outside every buffer raises, which the slave answers with SLVERR."""

    def __init__(self, buffers: list) -> None:
        self.buffers = sorted((int(a), bytes(np.load(path).astype(np.uint8).tobytes()))
                              for a, path in buffers)

    async def read(self, address: int, length: int) -> bytes:
        for lo, data in self.buffers:
            if lo <= address and address + length <= lo + len(data):
                return data[address - lo:address - lo + length]
        raise BoardError(f"DDR read of {length} bytes at 0x{address:X}: no buffer there")


def _pauses(rng: random.Random, p: float):
    while True:
        yield rng.random() < p


def _attach_ddr(dut, cfg: dict, rng: random.Random, stall: float):
    """AXI4 read slaves on every ``m_axi<k>`` port and an AXI4-Lite master on ``s_axil``."""
    from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiReadBus, AxiSlaveRead

    ddr = cfg["ddr"]
    memory = _PhysicalMemory(ddr["buffers"])
    for k in range(int(ddr["ports"])):
        if not hasattr(dut, f"m_axi{k}__araddr"):
            raise BoardError(f"the design has no port m_axi{k}__araddr but layout.json has a "
                             f"DDR region on read port {k}")
        slave = AxiSlaveRead(AxiReadBus.from_prefix(dut, f"m_axi{k}", bus_separator="__"),
                             dut.clk, dut.rst, target=memory)
        if stall > 0:
            for ch in (slave.ar_channel, slave.r_channel):
                ch.set_pause_generator(_pauses(random.Random(rng.random()), stall))
    if not hasattr(dut, "s_axil__awaddr"):
        raise BoardError("the design has no AXI4-Lite control port s_axil__* but layout.json "
                         "describes a DDR image (a hybrid design)")
    return AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__"),
                         dut.clk, dut.rst)


async def _read_registers(lite, poll_cycles: int) -> dict[str, int]:
    """Poll STATUS (DONE or ERROR, at most ``poll_cycles`` cycles), then read every
    register; ``{offset (as str): value}``."""
    from lowbit_hdl.runtime import regs

    t0 = cycle_now()
    while cycle_now() - t0 < poll_cycles:
        st = int(await lite.read_dword(regs.offset("STATUS")))
        if st & (regs.STATUS_DONE | regs.STATUS_ERROR):
            break
    return {str(off): int(await lite.read_dword(off)) for off in regs.OFFSETS.values()}
