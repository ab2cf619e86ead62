import cocotb

from lowbit_hdl.sim.runner import tb_config
from lowbit_hdl.sim.stream import StreamSink, StreamSource, start_clock_reset


@cocotb.test()
async def run(dut):
    cfg = tb_config()
    await start_clock_reset(dut)
    n = cfg["n"]
    src = StreamSource(dut, "i", stall=cfg["stall"])
    snk = StreamSink(dut, "o", stall=cfg["stall"])
    cocotb.start_soon(src.send([x & 0xFF for x in range(n)]))
    out = await snk.receive(n)
    assert out == [(x + 1) & 0xFF for x in range(n)]
    if cfg["stall"] == 0:
        assert snk.cycles[-1] - src.accepted_at[0] == n, (src.accepted_at[0], snk.cycles[-1])
