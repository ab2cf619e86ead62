"""cocotb testbench of lowbit_hdl.hw.swu.SlidingWindow: random frames back to back, random
stalls on both sides, output compared with lowbit_hdl.golden.im2col; with no stalls the
cycle count is checked against the documented formula and latency."""

import cocotb
import numpy as np
from cocotb.triggers import Combine

from lowbit_hdl.cosim import tb_config
from lowbit_hdl.golden import im2col
from lowbit_hdl.tb import StreamSink, StreamSource, pack, start_clock_reset


@cocotb.test()
async def run(dut):
    cfg = tb_config()
    c, h, w = cfg["in_shape"]
    k, s, p = cfg["kernel"], cfg["stride"], cfg["padding"]
    simd, eb, frames = cfg["simd"], cfg["elem_bits"], cfg["frames"]
    rng = np.random.default_rng(cfg["seed"])
    x = rng.integers(0, 1 << eb, size=(frames, h, w, c))
    cols = im2col(x, k, s, p, cfg["pad_bits"])  # (F, OH·OW, K·K·C)
    words_in = [pack(x[f, i, j, g * simd:(g + 1) * simd], eb)
                for f in range(frames) for i in range(h) for j in range(w)
                for g in range(c // simd)]
    flat = cols.reshape(-1, simd)
    expect = [pack(v, eb) for v in flat]

    await start_clock_reset(dut)
    src = StreamSource(dut, "i", stall=cfg["stall_in"], seed=cfg["seed"] + 1)
    snk = StreamSink(dut, "o", stall=cfg["stall_out"], seed=cfg["seed"] + 2)
    send = cocotb.start_soon(src.send(words_in))
    got = await snk.receive(len(expect), timeout_cycles=5000)
    await Combine(send)
    for n, (a, b) in enumerate(zip(got, expect, strict=True)):
        if a != b:
            per = len(expect) // frames
            vec, beat = divmod(n % per, cols.shape[2] // simd)
            raise AssertionError(f"beat {n} (frame {n // per}, vector {vec}, beat {beat}): "
                                 f"got {a:#x}, expected {b:#x}")
    if cfg["stall_in"] == 0 and cfg["stall_out"] == 0:
        per = len(expect) // frames
        lasts = [snk.cycles[(f + 1) * per - 1] for f in range(frames)]
        periods = [b - a for a, b in zip(lasts, lasts[1:], strict=False)]
        assert all(q == cfg["cycles_per_frame"] for q in periods), (
            f"frame periods {periods}, expected {cfg['cycles_per_frame']}")
        # pad beats need no input: the unit may start emitting them one cycle before the
        # source's first beat is accepted (the source starts a cycle after reset)
        start = min(src.accepted_at[0], snk.cycles[0] - 1)
        total = snk.cycles[-1] - start
        assert total == frames * cfg["cycles_per_frame"] + cfg["latency"], (
            f"{frames} frames took {total} cycles, expected {frames} × "
            f"{cfg['cycles_per_frame']} + {cfg['latency']}")
