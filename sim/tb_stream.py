"""Generic cocotb testbench for stream units (sliding window, max-pool, top-k, FIFO, width
converter), several units in one top level (``sim/units.py``), all driven concurrently.

Configuration (``lowbit_hdl.sim.runner.tb_config()``): ``units`` maps the unit's port prefix ``k``
(ports ``k_i__*``, ``k_o__*``) to a dict with

* ``runs``: phases run back to back without reset, each with ``inputs`` and ``expected``
  (words), ``stall_in``/``stall_out`` (probabilities) and optional cycle checks:

  - ``cycles``: exact cycles from the start (the first accepted input, or the cycle before the
    first output if that is earlier: units that generate padding may emit before their first
    input) to the last output;
  - ``period``: ``[beats, cycles]``: the last beats of consecutive groups of ``beats`` output
    beats (frames) must be exactly ``cycles`` apart;
  - ``input_every_cycle``: the inputs were accepted on consecutive cycles;

* ``tail``: the words the unit may emit after the last phase (e.g. the next frame's leading
  pad beats of a sliding window); anything else, or more, is an error.
"""

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from lowbit_hdl.sim.runner import tb_config
from lowbit_hdl.sim.stream import CLOCK_NS, StreamSink, StreamSource


async def check_unit(dut, name: str, cfg: dict, seed: int) -> None:
    for k, ph in enumerate(cfg["runs"]):
        src = StreamSource(dut, f"{name}_i", stall=ph["stall_in"], seed=seed + 2 * k)
        snk = StreamSink(dut, f"{name}_o", stall=ph["stall_out"], seed=seed + 2 * k + 1)
        send = cocotb.start_soon(src.send(ph["inputs"]))
        got = await snk.receive(len(ph["expected"]), timeout_cycles=5000)
        await send
        for j, (g, e) in enumerate(zip(got, ph["expected"], strict=True)):
            assert g == e, f"{name} phase {k}, output beat {j}: got {g:#x}, expected {e:#x}"
        if ph.get("input_every_cycle"):
            acc = src.accepted_at
            gaps = [i for i in range(len(acc) - 1) if acc[i + 1] != acc[i] + 1]
            assert not gaps, f"{name} phase {k}: input not accepted after beats {gaps}"
        if ph.get("period") is not None:
            beats, cycles = ph["period"]
            lasts = [snk.cycles[i] for i in range(beats - 1, len(snk.cycles), beats)]
            periods = [b - a for a, b in zip(lasts, lasts[1:], strict=False)]
            assert all(p == cycles for p in periods), (
                f"{name} phase {k}: frame periods {periods}, expected {cycles}")
        if ph.get("cycles") is not None:
            start = min(src.accepted_at[0], snk.cycles[0] - 1)
            measured = snk.cycles[-1] - start
            assert measured == ph["cycles"], (f"{name} phase {k}: {measured} cycles from start "
                                              f"to last output, expected {ph['cycles']}")
    tail = cfg.get("tail", [])
    ready, valid = getattr(dut, f"{name}_o__ready"), getattr(dut, f"{name}_o__valid")
    payload = getattr(dut, f"{name}_o__payload")
    ready.value = 1
    extra = []
    for _ in range(len(tail) + 30):
        await ReadOnly()
        if int(valid.value):
            extra.append(int(payload.value))
        await RisingEdge(dut.clk)
    assert extra == tail, f"{name}: after the expected beats got {extra}, allowed {tail}"


@cocotb.test()
async def run(dut):
    cfg = tb_config()
    for name in cfg["units"]:
        getattr(dut, f"{name}_i__valid").value = 0
        getattr(dut, f"{name}_o__ready").value = 0
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    # the drivers raise valid/ready in the first cycle out of reset (the cycle model's cycle 1)
    tasks = [cocotb.start_soon(check_unit(dut, name, ucfg, 100 * n))
             for n, (name, ucfg) in enumerate(cfg["units"].items())]
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    for t in tasks:
        await t
