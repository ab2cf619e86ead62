"""cocotb bench of the engine's sequencer and datapath together (a test wrapper of
``EngineSequencer`` + ``EngineDatapath``) against cocotbext-axi's ``AxiRamRead`` holding a
compiled engine image (``lowbit_hdl.runtime.engine.engine_image``).

Configuration: ``mem_size``, ``seed``, ``base`` and ``image`` (64-bit words at ``base``),
``pause`` (probability of AR/R pauses), ``stall`` (load source and output sink) and
``frames``, each with ``load`` (the load stream's words) and ``raw`` or ``drain`` (the
expected output words). One run of ``len(frames)`` frames: each frame's map is loaded, the
outputs are compared, then the next frame's map is loaded; the run must end with ``done``,
one ``frame_done`` per frame and no error.
"""

import random

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge
from cocotbext.axi import AxiRamRead, AxiReadBus
from tb_axi import pauses

from lowbit_hdl.sim.runner import tb_config
from lowbit_hdl.sim.stream import StreamSink, StreamSource, start_clock_reset


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def system(dut):
    cfg = tb_config()
    dut.start.value = 0
    dut.base.value = cfg["base"]
    dut.frames.value = len(cfg["frames"])
    bus = AxiReadBus.from_prefix(dut, "m_axi", bus_separator="__")
    ram = AxiRamRead(bus, dut.clk, dut.rst, size=cfg["mem_size"])
    ram.write(cfg["base"], b"".join(int(w).to_bytes(8, "little") for w in cfg["image"]))
    ram.ar_channel.set_pause_generator(pauses(random.Random(1), cfg["pause"]))
    ram.r_channel.set_pause_generator(pauses(random.Random(2), cfg["pause"]))
    frame_dones = []
    run_done = []

    async def watch():
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            if int(dut.frame_done.value):
                frame_dones.append(1)
            if int(dut.done.value):
                run_done.append(1)

    await start_clock_reset(dut)
    cocotb.start_soon(watch())
    await RisingEdge(dut.clk)
    dut.start.value = 1
    await RisingEdge(dut.clk)
    dut.start.value = 0
    for k, fr in enumerate(cfg["frames"]):
        src = StreamSource(dut, "load", stall=cfg["stall"], seed=10 + k)
        port, want = ("raw", fr["raw"]) if fr.get("raw") is not None else ("drain", fr["drain"])
        snk = StreamSink(dut, port, stall=cfg["stall"], seed=20 + k)
        cocotb.start_soon(src.send(fr["load"]))
        got = await snk.receive(len(want), timeout_cycles=20000)
        for j, (g, e) in enumerate(zip(got, want, strict=True)):
            assert g == e, f"frame {k}: {port} word {j}: got {g:#x}, expected {e:#x}"
        dut._log.info("frame %d: %d %s words match", k, len(want), port)
    for _ in range(2000):
        await RisingEdge(dut.clk)
        if run_done:
            break
    await ReadOnly()
    assert run_done, "no done after the last frame"
    assert not int(dut.error.value), f"error code {int(dut.error_code.value)}"
    assert len(frame_dones) == len(cfg["frames"]), f"{len(frame_dones)} frame_done pulses"
