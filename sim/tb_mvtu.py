"""cocotb testbench for stream-in/stream-out compute units (MVTU, ThresholdUnit), several
units in one top level (see ``sim/units.py``), all driven concurrently.

Configuration (``lowbit_hdl.sim.runner.tb_config()``): ``units``, a dict from the unit's port
prefix ``k`` (ports ``k_i__*``, ``k_o__*``) to a dict with ``runs``, a list of phases run
back to back, each with ``inputs`` (input words), ``expected`` (output words),
``stall_in``/``stall_out`` (probabilities) and ``cycles`` (exact cycles from the first
accepted input to the last output, checked when not ``None``), and optionally ``weights``
(words for the weight stream ``k_w__*``, with ``stall_w``); and ``out_bits``,
``out_count``, ``out_signed`` to print mismatches element-wise.
"""

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from lowbit_hdl.sim.runner import tb_config
from lowbit_hdl.sim.stream import StreamSink, StreamSource, start_clock_reset, unpack


async def check_unit(dut, name: str, cfg: dict, seed: int) -> None:
    ob, oc, osg = cfg["out_bits"], cfg["out_count"], cfg["out_signed"]
    for k, ph in enumerate(cfg["runs"]):
        src = StreamSource(dut, f"{name}_i", stall=ph["stall_in"], seed=seed + 2 * k)
        snk = StreamSink(dut, f"{name}_o", stall=ph["stall_out"], seed=seed + 2 * k + 1)
        cocotb.start_soon(src.send(ph["inputs"]))
        if "weights" in ph:
            wsrc = StreamSource(dut, f"{name}_w", stall=ph["stall_w"], seed=seed + 2 * k + 50)
            cocotb.start_soon(wsrc.send(ph["weights"]))
        got = await snk.receive(len(ph["expected"]), timeout_cycles=5000)
        assert len(got) == len(ph["expected"])
        for j, (g, e) in enumerate(zip(got, ph["expected"], strict=True)):
            assert g == e, (f"{name} phase {k}, output beat {j}: got "
                            f"{unpack(g, ob, oc, osg)}, expected {unpack(e, ob, oc, osg)}")
        if ph.get("cycles") is not None:
            measured = snk.cycles[-1] - src.accepted_at[0]
            assert measured == ph["cycles"], (f"{name} phase {k}: {measured} cycles from first "
                                              f"input to last output, expected {ph['cycles']}")
    # nothing beyond the expected beats may come out
    ready, valid = getattr(dut, f"{name}_o__ready"), getattr(dut, f"{name}_o__valid")
    ready.value = 1
    for _ in range(20):
        await RisingEdge(dut.clk)
        await ReadOnly()
        assert not int(valid.value), f"{name}: extra output beat after the expected ones"


@cocotb.test()
async def run(dut):
    cfg = tb_config()
    await start_clock_reset(dut)
    tasks = [cocotb.start_soon(check_unit(dut, name, ucfg, 100 * n))
             for n, (name, ucfg) in enumerate(cfg["units"].items())]
    for t in tasks:
        await t
