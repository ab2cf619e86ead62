# amaranth: UnusedElaboratable=no
"""Replay and transpose buffers (the buffers of a tiled convolution): co-simulation on Verilator
and Icarus (blocks/frames back to back, random stalls on both sides, exact cycles and periods),
formula sweeps in Amaranth's simulator, the tiled-convolution dataflow (replay → sliding window
→ golden MVTU in tile order → transpose = the golden convolution), constructor checks."""

# (the line above: constructor checks and figure queries build components that are never
# elaborated)
from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth import Module
from amaranth.hdl import signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lowbit_hdl.cost import replay_cycles, transpose_cycles
from lowbit_hdl.golden import conv2d, im2col, matvec
from lowbit_hdl.hw.payload import vector
from lowbit_hdl.hw.replay import ReplayBuffer
from lowbit_hdl.hw.swu import SlidingWindow
from lowbit_hdl.hw.transpose import TransposeBuffer
from lowbit_hdl.runtime.dtypes import BIPOLAR, UINT
from lowbit_hdl.sim.runner import available_simulators
from lowbit_hdl.sim.stream import pack
from sim.units import phase, run_amaranth, run_amaranth_timed, simulate_streams

SIMS = available_simulators()


def replayed(words: list[int], block: int, repeats: int) -> list[int]:
    """Expected output of a replay buffer: every block of ``words`` ``repeats`` times."""
    return [w for b in range(0, len(words), block)
            for _ in range(repeats) for w in words[b:b + block]]


def transposed(words: list[int], rows: int, cols: int) -> list[int]:
    """Expected output of a transpose buffer: each frame read row-major, written
    column-major (beat ``c·rows + r`` of a frame is output beat ``r·cols + c``)."""
    n = rows * cols
    return [words[f + c * rows + r] for f in range(0, len(words), n)
            for r in range(rows) for c in range(cols)]


class ReplayWindow(wiring.Component):
    """Feature-map replay buffer in front of a sliding window (a tiled convolution's input)."""

    def __init__(self, swu: SlidingWindow, repeats: int, buffers: int) -> None:
        self.swu = swu
        c, h, w = swu.in_shape
        layout = swu.i.payload.shape()
        self.replay = ReplayBuffer(layout, h * w * c // swu.simd, repeats, buffers)
        super().__init__({"i": In(stream.Signature(layout)),
                          "o": Out(stream.Signature(layout))})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.replay, m.submodules.swu = self.replay, self.swu
        wiring.connect(m, wiring.flipped(self.i), self.replay.i)
        wiring.connect(m, self.replay.o, self.swu.i)
        wiring.connect(m, self.swu.o, wiring.flipped(self.o))
        return m


# -- co-simulation ------------------------------------------------------------------------------

# name: (payload shape, block, repeats, buffers)
REPLAY = {
    "r_b5_r3_x2": (8, 5, 3, 2),
    "r_b4_r2_x1": (8, 4, 2, 1),  # next block written behind the last replay
    "r_b1_r3_x1": (5, 1, 3, 1),  # the one case with a gap: period repeats + 1
    "r_b1_r2_x2": (5, 1, 2, 2),
    "r_b6_r1_x1": (7, 6, 1, 1),  # repeats = 1: a FIFO of one block
    "r_layout": (vector(signed(3), 4), 6, 2, 2),  # an ArrayLayout payload
}
# name: (payload shape, rows, cols, buffers)
TRANSPOSE = {
    "t_r4_c3_x2": (8, 4, 3, 2),
    "t_r5_c2_x1": (8, 5, 2, 1),
    "t_r1_c4_x2": (6, 1, 4, 2),  # one row: order unchanged
    "t_r3_c1_x1": (6, 3, 1, 1),  # one column: order unchanged
    "t_layout": (vector(signed(8), 2), 6, 3, 2),
}
# the feature map of a small tiled convolution: (C, H, W), K, stride, padding, SIMD, NF, buffers
CHAIN = {"tiled": ((4, 4, 5), 3, 1, 0, 2, 3, 2)}


def make_chain(name: str) -> ReplayWindow:
    shape, k, s, p, simd, nf, buffers = CHAIN[name]
    return ReplayWindow(SlidingWindow(shape, k, s, p, 0, simd, 2), nf, buffers)


def build_replay(name: str, rng: random.Random):
    shape, block, repeats, buffers = REPLAY[name]
    unit = ReplayBuffer(shape, block, repeats, buffers)
    runs = []
    for blocks, stall in ((4, 0.0), (3, 0.3), (2, 0.6)):
        words = [rng.getrandbits(unit.width) for _ in range(blocks * block)]
        checks = {}
        if stall == 0:
            checks = {"cycles": unit.cycles(blocks),
                      "period": [block * repeats, unit.cycles_per_block]}
        runs.append(phase(words, replayed(words, block, repeats), stall, **checks))
    return unit, runs, []


def build_transpose(name: str, rng: random.Random):
    shape, rows, cols, buffers = TRANSPOSE[name]
    unit = TransposeBuffer(shape, rows, cols, buffers)
    runs = []
    for frames, stall in ((4, 0.0), (3, 0.3), (2, 0.6)):
        words = [rng.getrandbits(unit.width) for _ in range(frames * rows * cols)]
        checks = {}
        if stall == 0:  # with 2 buffers the writer never waits
            checks = {"cycles": unit.cycles(frames),
                      "period": [rows * cols, unit.cycles_per_frame],
                      "input_every_cycle": buffers == 2}
        runs.append(phase(words, transposed(words, rows, cols), stall, **checks))
    return unit, runs, []


def build_chain(name: str, rng: np.random.Generator):
    unit = make_chain(name)
    swu, nf = unit.swu, unit.replay.repeats
    c, h, w = swu.in_shape
    runs = []
    for frames, stall in ((3, 0.0), (2, 0.3)):
        x = rng.integers(0, 4, size=(frames, h, w, c))
        ins = [pack(v, 2) for v in x.reshape(-1, swu.simd)]
        cols = im2col(x, swu.kernel, swu.stride, swu.padding, 0)  # (frames, P, K·K·C)
        outs = [pack(v, 2) for f in range(frames) for _ in range(nf)
                for v in cols[f].reshape(-1, swu.simd)]
        # the window runs back to back through the NF replays: NF·cycles_per_frame per frame,
        # plus the window's latency and the replay buffer's (no padding: no output before the
        # first input)
        checks = {}
        if not stall:
            checks = {"cycles": frames * nf * swu.cycles_per_frame + swu.latency
                      + ReplayBuffer.latency,
                      "period": [nf * swu.out_beats, nf * swu.cycles_per_frame]}
        runs.append(phase(ins, outs, stall, **checks))
    return unit, runs, []


@pytest.mark.parametrize("sim", SIMS)
def test_replay_transpose_cosim(sim):
    rng = random.Random(13)
    units = {n: build_replay(n, rng) for n in REPLAY}
    units |= {n: build_transpose(n, rng) for n in TRANSPOSE}
    units |= {n: build_chain(n, np.random.default_rng(13)) for n in CHAIN}
    simulate_streams(units, "replay_bundle", sim)


# -- formula sweeps (Amaranth's simulator) ------------------------------------------------------

@pytest.mark.parametrize("buffers", [1, 2])
def test_replay_sweep(buffers):
    """Every small block/repeats/blocks combination: data exact with stalls, and with none the
    cycles of :func:`lowbit_hdl.cost.replay_cycles` exactly."""
    rng = random.Random(buffers)
    for block in (1, 2, 3, 7):
        for repeats in (1, 2, 4):
            blocks = rng.randint(1, 3)
            words = [rng.getrandbits(4) for _ in range(blocks * block)]
            expect = replayed(words, block, repeats)
            got, cycles = run_amaranth_timed(ReplayBuffer(4, block, repeats, buffers), words,
                                             len(expect), stall=0.0)
            case = f"block={block} repeats={repeats} buffers={buffers} blocks={blocks}"
            assert got == expect, case
            assert cycles == replay_cycles(block, repeats, buffers, blocks), case
            got = run_amaranth(ReplayBuffer(4, block, repeats, buffers), words, len(expect),
                               stall=0.4, seed=block * repeats)
            assert got == expect, case


@pytest.mark.parametrize("buffers", [1, 2])
def test_transpose_sweep(buffers):
    """Every small rows × cols: data exact with stalls, and with none the cycles of
    :func:`lowbit_hdl.cost.transpose_cycles` exactly."""
    rng = random.Random(10 + buffers)
    for rows in (1, 2, 3, 5):
        for cols in (1, 2, 4):
            frames = rng.randint(1, 3)
            words = [rng.getrandbits(4) for _ in range(frames * rows * cols)]
            expect = transposed(words, rows, cols)
            got, cycles = run_amaranth_timed(TransposeBuffer(4, rows, cols, buffers), words,
                                             len(expect), stall=0.0)
            case = f"rows={rows} cols={cols} buffers={buffers} frames={frames}"
            assert got == expect, case
            assert cycles == transpose_cycles(rows, cols, buffers, frames), case
            got = run_amaranth(TransposeBuffer(4, rows, cols, buffers), words, len(expect),
                               stall=0.4, seed=rows * cols)
            assert got == expect, case


def test_replay_producer_waits():
    """``buffers=1`` takes block n+1 only during the last replay of block n, behind the reader;
    ``buffers=2`` takes it at once: with the consumer stalled, the input stops after one block
    (two blocks with ``buffers=2``)."""
    from amaranth.sim import Simulator

    for buffers in (1, 2):
        dut = ReplayBuffer(8, 4, 3, buffers)
        sim = Simulator(dut)
        sim.add_clock(1e-8)
        accepted = []

        async def bench(ctx, dut=dut, accepted=accepted):
            ctx.set(dut.o.ready, 0)
            ctx.set(dut.i.valid, 1)
            for cyc in range(20):
                ctx.set(dut.i.payload, len(accepted))
                if ctx.get(dut.i.ready):
                    accepted.append(cyc)
                await ctx.tick()

        sim.add_testbench(bench)
        sim.run()
        assert len(accepted) == 4 * buffers, buffers


def slow_producer(dut, n_in: int, n_out: int, interval: int) -> tuple[int, list[int]]:
    """Feed ``n_in`` beats, each offered ``interval`` cycles after the previous one was accepted
    (a producer such as the MVTU in tile order or a DDR read), into an always-ready consumer.
    Returns (cycles the producer waited with a beat, cycles of the output beats)."""
    from amaranth.sim import Simulator

    waited, outs = [0], []
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def bench(ctx):
        i = due = cyc = 0
        ctx.set(dut.o.ready, 1)
        while len(outs) < n_out:
            valid = i < n_in and cyc >= due
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.i.payload, i & 0xF)
            _, _, i_ready, o_valid = await ctx.tick().sample(dut.i.ready, dut.o.valid)
            if valid and i_ready:
                i, due = i + 1, cyc + interval
            elif valid:
                waited[0] += 1
            if o_valid:
                outs.append(cyc)
            cyc += 1
            assert cyc < 50 * (n_in + n_out)

    sim.add_testbench(bench)
    sim.run()
    return waited[0], outs


def periods(outs: list[int], beats: int) -> list[int]:
    """Cycles between the last beats of consecutive groups of ``beats`` output beats."""
    lasts = outs[beats - 1::beats]
    return [b - a for a, b in zip(lasts[:-1], lasts[1:], strict=True)]


@pytest.mark.parametrize("block,repeats,interval", [(4, 3, 1), (4, 3, 2), (4, 3, 3), (5, 2, 5),
                                                    (6, 4, 5)])
def test_replay_double_buffer_slow_producer(block, repeats, interval):
    """With ``buffers=2`` and a producer offering a beat every ``interval`` cycles, a block takes
    ``block·max(repeats, interval)`` cycles, and the producer never waits when it is not faster
    than the replay (``interval ≥ repeats``): the weight-tile cache fed from DDR."""
    blocks = 5
    waited, outs = slow_producer(ReplayBuffer(4, block, repeats, 2), blocks * block,
                                 blocks * block * repeats, interval)
    assert set(periods(outs, block * repeats)) == {block * max(repeats, interval)}
    assert (waited == 0) == (interval >= repeats)


@pytest.mark.parametrize("rows,cols", [(3, 4), (5, 3), (4, 1), (1, 4)])
def test_transpose_slow_producer(rows, cols):
    """A producer offering a beat every ``max(cols, 2)`` cycles (the MVTU in tile order offers one
    every SF cycles) never waits with ``buffers=1``; one at full rate never waits with
    ``buffers=2``; frames take ``rows·cols·interval`` cycles."""
    frames, n = 3, rows * cols
    for buffers, interval in ((1, max(cols, 2)), (2, 1)):
        waited, outs = slow_producer(TransposeBuffer(4, rows, cols, buffers), frames * n,
                                     frames * n, interval)
        assert waited == 0, (buffers, interval)
        assert set(periods(outs, n)) == {n * interval}, (buffers, interval)
    if rows >= cols > 2:  # faster than one beat per cols cycles: single-buffered, it waits
        assert slow_producer(TransposeBuffer(4, rows, cols, 1), frames * n, frames * n,
                             cols - 1)[0] > 0


# -- the tiled convolution's dataflow -----------------------------------------------------------

@pytest.mark.parametrize("buffers", [1, 2])
def test_tiled_conv_dataflow(buffers):
    """Input feature map → ReplayBuffer(frame, repeats=NF) → SlidingWindow (hardware) → MVTU in
    tile order (the golden model, weight tile nf on replay nf) → TransposeBuffer(P, NF)
    (hardware) gives the golden convolution's accumulators in pixel-major order, PE channels
    per beat, for two frames back to back with random stalls."""
    xdt, wdt = UINT(2), BIPOLAR
    c, h, w, k, s, p, pad, simd = 4, 5, 5, 3, 1, 1, 1, 2
    oc, pe = 6, 2
    nf = oc // pe
    frames = 2
    rng = np.random.default_rng(buffers)
    x = rng.integers(0, 4, size=(frames, h, w, c))
    wt = rng.choice(np.array([-1, 1]), size=(oc, c, k, k))

    swu = SlidingWindow((c, h, w), k, s, p, int(xdt.encode(pad)), simd, xdt.bits)
    chain = ReplayWindow(swu, nf, buffers)
    ins = [pack(v, xdt.bits) for v in xdt.encode(x).reshape(-1, simd)]
    n_vec = swu.out_beats // (k * k * c // simd)  # P output pixels
    got = run_amaranth(chain, ins, frames * nf * swu.out_beats, stall=0.3, seed=buffers)
    # the window's stream, unpacked: (frames, NF replays, P pixels, K·K·C)
    elems = np.array([[(word >> (j * xdt.bits)) & 3 for j in range(simd)] for word in got])
    vecs = xdt.decode(elems).reshape(frames, nf, n_vec, k * k * c)
    ref_cols = im2col(x, k, s, p, pad)  # (frames, P, K·K·C)
    for f in range(frames):
        for t in range(nf):
            assert np.array_equal(vecs[f, t], ref_cols[f]), (f, t)

    # golden MVTU in tile order: tile t uses weight rows t·PE … t·PE+PE−1 on replay t
    wm = wt.transpose(0, 2, 3, 1).reshape(oc, k * k * c)
    acc_shape = signed(8)
    tile_major = [pack(row, 8) for f in range(frames) for t in range(nf)
                  for row in matvec(wm[t * pe:(t + 1) * pe], vecs[f, t], wdt, xdt)]
    tp = TransposeBuffer(vector(acc_shape, pe), n_vec, nf, buffers)
    out = run_amaranth(tp, tile_major, len(tile_major), stall=0.3, seed=10 + buffers)

    ref = conv2d(x, wt, wdt, xdt, s, p, pad)  # (frames, OH, OW, OC): pixel-major
    assert [pack(v, 8) for v in ref.reshape(-1, pe)] == out


# -- figures and checks -------------------------------------------------------------------------

def test_figures():
    r = ReplayBuffer(vector(unsigned(2), 3), 10, 4, 2)
    assert r.i.payload.shape() == vector(unsigned(2), 3) == r.o.payload.shape()
    assert (r.width, r.depth, r.buffer_bits) == (6, 20, 120)
    assert (r.cycles_per_block, r.cycles(1), r.cycles(3)) == (40, 41, 121)
    assert ReplayBuffer(3, 1, 4, 1).cycles_per_block == 5
    t = TransposeBuffer(16, 9, 4, 1)
    assert (t.frame_beats, t.depth, t.buffer_bits) == (36, 36, 576)
    assert (t.cycles_per_frame, t.cycles(1), t.cycles(2)) == (61, 61, 122)
    assert TransposeBuffer(16, 9, 4).cycles_per_frame == 36


@pytest.mark.parametrize("make,exc,msg", [
    (lambda: ReplayBuffer(8, 0, 2), ValueError, "block=0 must be ≥ 1"),
    (lambda: ReplayBuffer(8, 4, 0), ValueError, "repeats=0 must be ≥ 1"),
    (lambda: ReplayBuffer(8, 4, 2, 3), ValueError, "buffers=3 must be 1 or 2"),
    (lambda: ReplayBuffer(8, 4, 2, 0), ValueError, "buffers=0 must be ≥ 1"),
    (lambda: ReplayBuffer(8, 4, 2, ram_style="ultra"), ValueError, "ram_style"),
    (lambda: ReplayBuffer(0, 4, 2), ValueError, "ReplayBuffer: width=0 must be ≥ 1"),
    (lambda: ReplayBuffer("8", 4, 2), TypeError, "ReplayBuffer: shape='8' must be a bit"),
    (lambda: ReplayBuffer(8, 4.0, 2), TypeError, "block=4.0 must be an int"),
    (lambda: ReplayBuffer(8, 4, 2, True), TypeError, "buffers=True must be an int"),
    (lambda: ReplayBuffer(8, 4, 2).cycles(0), ValueError, "blocks=0 must be ≥ 1"),
    (lambda: TransposeBuffer(8, 0, 2), ValueError, "rows=0 must be ≥ 1"),
    (lambda: TransposeBuffer(8, 2, 0), ValueError, "cols=0 must be ≥ 1"),
    (lambda: TransposeBuffer(8, 2, 2, 4), ValueError, "buffers=4 must be 1 or 2"),
    (lambda: TransposeBuffer(None, 2, 2), TypeError, "TransposeBuffer: shape=None"),
    (lambda: TransposeBuffer(8, "2", 2), TypeError, "rows='2' must be an int"),
    (lambda: TransposeBuffer(8, 2, 2, ram_style=1), TypeError, "ram_style=1 must be a str"),
])
def test_constructor_checks(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make()
