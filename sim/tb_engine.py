"""cocotb bench of the engine datapath (``lowbit_hdl.hw.engine.EngineDatapath``).

Configuration (``tb_config()``): ``frames``, each a dict with

* ``load``: words of the load stream (``[]``: the buffer is not loaded), ``stall_load``,
  ``load_cycles`` (first accepted beat to ``load_done``, or None), ``overlap`` (start the
  first layer with the load instead of after ``load_done``: its ``done`` must not come
  before ``load_done``);
* ``layers``: each ``{"cfg": descriptor bits, "tiles": words, "stall": p, "raw": expected
  raw beats or None, "cycles": expected start→done cycles or None, "stall_count": expected
  increase of the ``stall`` counter or None, "error": the expected ``error`` code at
  ``done`` (default 0; a rejected descriptor has no tiles)}``;
* ``drain``: expected drain words (``None``: no drain in this frame), ``stall_drain``,
  ``drain_cycles`` (last layer's ``done`` to the last drain word, or None).

A layer is started with a one-cycle ``start`` pulse; its ``tiles`` words are sent with random
stalls ``stall`` and its raw beats received with the same stall probability. Cycles are
counted from the cycle ``start`` is high to the cycle ``done`` is high.
"""

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from lowbit_hdl.sim.runner import tb_config
from lowbit_hdl.sim.stream import StreamSink, StreamSource, cycle, start_clock_reset


async def wait_pulse(dut, name: str, limit: int = 200_000) -> int:
    sig = getattr(dut, name)
    for _ in range(limit):
        await RisingEdge(dut.clk)
        await ReadOnly()
        if int(sig.value):
            return cycle()
    raise TimeoutError(f"no {name} pulse in {limit} cycles")


@cocotb.test()
async def engine(dut):
    cfg = tb_config()
    dut.start.value = 0
    dut.cfg.value = 0
    await start_clock_reset(dut)
    seed = 10
    for fi, frame in enumerate(cfg["frames"]):
        await RisingEdge(dut.clk)
        if frame["load"]:
            src = StreamSource(dut, "load", stall=frame.get("stall_load", 0.0), seed=seed)
            seed += 1
            cocotb.start_soon(src.send(frame["load"]))
            if frame.get("overlap"):
                loading = cocotb.start_soon(wait_pulse(dut, "load_done"))
            else:
                t_load = await wait_pulse(dut, "load_done")
            if frame.get("load_cycles") is not None and not frame.get("overlap"):
                n = t_load - src.accepted_at[0]
                assert n == frame["load_cycles"], (f"frame {fi}: load took {n} cycles, "
                                                   f"expected {frame['load_cycles']}")
        drain = None
        for li, lay in enumerate(frame["layers"]):
            await RisingEdge(dut.clk)
            dut.cfg.value = lay["cfg"]
            dut.start.value = 1
            # the tile stream is valid from the cycle after start on (as the sequencer's)
            tsrc = StreamSource(dut, "tiles", stall=lay["stall"], seed=seed)
            seed += 1
            if lay["tiles"]:
                cocotb.start_soon(tsrc.send(lay["tiles"]))
            await ReadOnly()
            t0 = cycle()
            s0 = int(dut.stall.value)
            await RisingEdge(dut.clk)
            dut.start.value = 0
            if lay.get("raw") is not None:
                snk = StreamSink(dut, "raw", stall=lay["stall"], seed=seed)
                seed += 1
                rtask = cocotb.start_soon(snk.receive(len(lay["raw"]), timeout_cycles=100_000))
            if lay.get("last") and frame.get("drain") is not None:
                dsnk = StreamSink(dut, "drain", stall=frame.get("stall_drain", 0.0), seed=seed)
                seed += 1
                drain = cocotb.start_soon(dsnk.receive(len(frame["drain"]),
                                                       timeout_cycles=100_000))
            await ReadOnly()
            t1 = cycle() if int(dut.done.value) else await wait_pulse(dut, "done")
            ds = int(dut.stall.value) - s0
            where = f"frame {fi} layer {li}"
            if frame.get("overlap") and li == 0:
                assert loading.done(), f"{where}: done before the map was loaded"
                t_load = loading.result()
                assert t_load < t1, f"{where}: done at {t1}, map loaded at {t_load}"
                dut._log.info(f"{where}: map loaded {t_load - t0} cycles after start, "
                              f"done after {t1 - t0}")
            err = int(dut.error.value)
            assert err == lay.get("error", 0), f"{where}: error {err}, expected {lay.get('error')}"
            if lay.get("raw") is not None:
                got = await rtask
                for j, (g, e) in enumerate(zip(got, lay["raw"], strict=True)):
                    assert g == e, f"{where}: raw beat {j}: got {g:#x}, expected {e:#x}"
            if lay.get("cycles") is not None:
                assert t1 - t0 == lay["cycles"], (f"{where}: {t1 - t0} cycles, expected "
                                                  f"{lay['cycles']}")
            if lay.get("stall_count") is not None:
                assert ds == lay["stall_count"], (f"{where}: stall {ds}, expected "
                                                  f"{lay['stall_count']}")
            dut._log.info(f"{where}: {t1 - t0} cycles")
        if drain is not None:
            got = await drain
            if frame.get("drain_cycles") is not None:
                n = dsnk.cycles[-1] - t1
                assert n == frame["drain_cycles"], (f"frame {fi}: drain took {n} cycles, "
                                                    f"expected {frame['drain_cycles']}")
            for j, (g, e) in enumerate(zip(got, frame["drain"], strict=True)):
                assert g == e, f"frame {fi}: drain word {j}: got {g:#x}, expected {e:#x}"
