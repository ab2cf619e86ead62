"""Analytic cost model: cycles per frame, memory and operations per layer and network.

This module is the one owner of the cycle formulas: the hardware modules
(:mod:`lowbit_hdl.hw`), the auto-folder, the pipeline plan and the reports all call the
functions below. Steady state, one frame after another, no stalls:

* MVTU (:func:`mvtu_cycles`): ``NF · SF · vectors`` with ``NF = MH/PE``, ``SF = MW/SIMD``.
* Sliding window (:func:`window_cycles`): ``max(OH·OW·K²·C/SIMD, H·W·C/SIMD)`` (output and
  input beats per frame).
* Conv layer = sliding window + MVTU: ``max(NF · SF · OH · OW, H · W · C / SIMD)`` (the
  window's output beats, ``SF·OH·OW``, never exceed the MVTU's cycles).
* Max-pool (:func:`pool_cycles`): one input beat of PE channels per cycle, ``H · W · C / PE``;
  with bottom/right padding that two windows would share, plus one cycle per generated
  padded position (:func:`pool_extra`): ``(H + E_h) · (W + E_w) · C / PE``.
* Top-k (:func:`topk_cycles`): one input beat per cycle, and a frame's last beat waits until
  the previous frame's ``k`` indices have left, ``max(N / fold, k)``.
* AXI4 read master (:func:`axi_read_cycles`, :func:`ddr_read_cycles`): ``N`` beats read in
  ``N + L_mem + 4`` cycles (one beat per cycle after the memory's latency ``L_mem`` and the
  master's own :data:`AXI_READ_MASTER_LATENCY`).
* Replay buffer (:func:`replay_period`): ``block·repeats`` per block; transpose buffer
  (:func:`transpose_period`): ``rows·cols`` per frame when double-buffered.

:func:`layer_cycles` applies them to a layer (at its own or a trial folding). The bottleneck
layer sets the frame rate: ``fps = f_clk / max(cycles)``.

The sliding window's buffer rows (:func:`window_rows`) come from a cycle-exact model of its
control (:func:`window_schedule`), pure Python so that the resource estimate and the
hardware module (:class:`lowbit_hdl.hw.swu.SlidingWindow`) size the buffer the same way.

The architectures for networks larger than the chip (hybrid dataflow with weights streamed
from DDR, and the one-engine alternative) are costed in :mod:`lowbit_hdl.ddrcost`; this
module re-exports its API (``hybrid_cost``, ``engine_cost``, ``choose_placements``, …), so
callers import every cost formula from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache

from .ir import FC, Conv, LayerInfo, MaxPool, Network, TopK
from .runtime.engine import DESCRIPTOR_WORDS

__all__ = [
    "AXI_READ_MASTER_LATENCY",
    "DDR_READ_LATENCY",
    "ENGINE_FIFO_DEPTH",
    "ENGINE_FIRST_ISSUE",
    "ENGINE_LATENCY",
    "ENGINE_RELEASE",
    "ENGINE_SEQUENCER_STATES",
    "ENGINE_TILE_START",
    "LayerCost",
    "NetworkCost",
    "WindowGeometry",
    "axi_read_cycles",
    "axi_read_full_rate",
    "ddr_read_cycles",
    "engine_descriptor_cycles",
    "engine_drain_cycles",
    "engine_layer_cycles",
    "engine_map_release",
    "engine_load_cycles",
    "engine_region_latency",
    "engine_tile_load_cycles",
    "engine_tile_stall_cycles",
    "engine_writer_cycles",
    "layer_cost",
    "layer_cycles",
    "mvtu_cycles",
    "network_cost",
    "pool_cycles",
    "pool_extra",
    "replay_bits",
    "tiled_output_period",
    "tiled_period",
    "replay_cycles",
    "replay_period",
    "topk_cycles",
    "transpose_bits",
    "transpose_cycles",
    "transpose_period",
    "window_cycles",
    "window_rows",
    "window_schedule",
]


# -- cycle formulas ---------------------------------------------------------------------------

def mvtu_cycles(mh: int, mw: int, pe: int, simd: int, vectors: int = 1) -> int:
    """Steady-state cycles of an MVTU for ``vectors`` input vectors: ``NF·SF·vectors``.

    Parameters
    ----------
    mh, mw : int
        Matrix height (neurons) and width (synapses per neuron).
    pe, simd : int
        Processing elements (dividing ``mh``) and SIMD lanes (dividing ``mw``).
    vectors : int
        Input vectors (output pixels of a convolution, 1 for a fully connected layer).
    """
    return (mh // pe) * (mw // simd) * vectors


@dataclass(frozen=True)
class WindowGeometry:
    """Geometry of a sliding window: input ``h × w`` pixels of ``cs = C/SIMD`` beats each,
    ``k × k`` kernel, stride ``s`` and padding ``p``."""

    h: int
    w: int
    cs: int
    k: int
    s: int
    p: int

    @property
    def oh(self) -> int:
        return (self.h + 2 * self.p - self.k) // self.s + 1

    @property
    def ow(self) -> int:
        return (self.w + 2 * self.p - self.k) // self.s + 1

    @property
    def in_beats(self) -> int:
        """Input beats per frame: ``H·W·C/SIMD``."""
        return self.h * self.w * self.cs

    @property
    def out_beats(self) -> int:
        """Output beats per frame: ``OH·OW·K²·C/SIMD``."""
        return self.oh * self.ow * self.k * self.k * self.cs


def window_cycles(g: WindowGeometry) -> int:
    """Steady-state cycles per frame of a sliding window: ``max(OH·OW·K²·C/SIMD, H·W·C/SIMD)``."""
    return max(g.in_beats, g.out_beats)


def pool_extra(n: int, kernel: int, stride: int, before: int, after: int) -> int:
    """Padded positions past the end of an axis of ``n`` pixels that a max-pool steps through.

    Padding holds the input type's minimum, so it never changes a max: a window is clipped
    to its real pixels and completes at its last one. Only where two windows would then
    complete at the same pixel (the last two ending in the padding) does the unit step
    through the first ``E = (OH − 2)·s − before + k + 1 − n`` padded positions after the
    axis (``OH`` pooled pixels), so that each window completes at a step of its own;
    ``E = 0`` otherwise (and always ``E ≤ after``). E.g. k = 2, s = 1, "same" on 13 pixels
    (Tiny-YOLO's sixth pool): E = 1; k = 3, s = 2, "same" on 54 or 27 pixels: E = 0.
    """
    out = (n + before + after - kernel) // stride + 1
    if out < 2:
        return 0
    return max(0, (out - 2) * stride - before + kernel + 1 - n)


def pool_cycles(in_shape: tuple[int, int, int], pe: int, kernel: int = 1,
                stride: int | None = None, pads: tuple[int, int, int, int] = (0, 0, 0, 0)
                ) -> int:
    """Cycles per frame of a max-pool taking ``pe`` channels per beat:
    ``(H + E_h)·(W + E_w)·C/PE`` with ``E`` the padded rows (columns) it steps through
    (:func:`pool_extra`; 0 without padding, giving ``H·W·C/PE``).

    ``pads`` is (top, bottom, left, right) (``LayerInfo.pads``); ``stride`` defaults to
    ``kernel``.
    """
    c, h, w = in_shape
    s = kernel if stride is None else stride
    pt, pb, pl, pr = pads
    eh = pool_extra(h, kernel, s, pt, pb) if pt or pb else 0
    ew = pool_extra(w, kernel, s, pl, pr) if pl or pr else 0
    return (h + eh) * (w + ew) * c // pe


def topk_cycles(n: int, fold: int, k: int) -> int:
    """Cycles per frame of a top-``k`` over ``n`` values, ``fold`` per beat: ``max(n/fold, k)``."""
    return max(n // fold, k)


#: cycles :class:`lowbit_hdl.hw.axi.AXI4ReadMaster` adds to the memory's latency: command
#: register, address register, FIFO write, FIFO output register
AXI_READ_MASTER_LATENCY = 4
#: planning assumption (not a measurement): fabric cycles from a read address handshake on a
#: Zynq-7000 HP port to its first data beat, DDR3 page miss included
DDR_READ_LATENCY = 40


def axi_read_cycles(beats: int, mem_latency: int = DDR_READ_LATENCY) -> int:
    """Cycles of an :class:`~lowbit_hdl.hw.axi.AXI4ReadMaster` reading ``beats`` words:
    ``beats + mem_latency + AXI_READ_MASTER_LATENCY`` (0 for no beats).

    Counted from the command handshake to the last output beat, both included, with the
    consumer always ready, a memory that answers ``mem_latency`` cycles after an address
    handshake and then returns one beat per cycle, and a master sized for that latency
    (:func:`axi_read_full_rate`). Commands queued back to back, each of at least 2 beats,
    count as one of their total length.

    Parameters
    ----------
    beats : int
        Words of ``data_width`` bits (≥ 0).
    mem_latency : int
        Memory latency in cycles (≥ 0), default :data:`DDR_READ_LATENCY`.
    """
    if beats < 0 or mem_latency < 0:
        raise ValueError(f"axi_read_cycles: beats={beats} and mem_latency={mem_latency} "
                         "must be ≥ 0")
    return beats + mem_latency + AXI_READ_MASTER_LATENCY if beats else 0


def axi_read_full_rate(mem_latency: int, max_burst: int, max_outstanding: int,
                       fifo_depth: int) -> bool:
    """Whether an :class:`~lowbit_hdl.hw.axi.AXI4ReadMaster` keeps one beat per cycle (so
    :func:`axi_read_cycles` holds) behind a memory of latency ``mem_latency``: the bursts in
    flight and the FIFO credits must cover the round trip,
    ``max_outstanding · max_burst ≥ mem_latency + max_burst + 1`` and
    ``fifo_depth ≥ mem_latency + max_burst + 3`` (exact bounds for full-length bursts,
    measured in the tests). The defaults (16 × 4, 64 words) hold up to 45 cycles.
    """
    return (max_outstanding * max_burst >= mem_latency + max_burst + 1
            and fifo_depth >= mem_latency + max_burst + 3)


def ddr_read_cycles(nbytes: int, ports: int = 1, data_width: int = 64,
                    mem_latency: int = DDR_READ_LATENCY) -> int:
    """Cycles to read ``nbytes`` from DDR over ``ports`` AXI4 read masters working in
    parallel on equal shares: :func:`axi_read_cycles` of ``ceil(nbytes / (ports ·
    data_width/8))`` beats.

    Parameters
    ----------
    nbytes : int
        Bytes to read (≥ 0).
    ports : int
        HP ports, each with its own master (≥ 1).
    data_width : int
        Bits per beat of a port (a multiple of 8; 64 on the Zynq-7000 HP ports).
    mem_latency : int
        Memory latency in cycles, default :data:`DDR_READ_LATENCY`.
    """
    if nbytes < 0 or ports < 1 or data_width < 8 or data_width % 8:
        raise ValueError(f"ddr_read_cycles: nbytes={nbytes} must be ≥ 0, ports={ports} ≥ 1 "
                         f"and data_width={data_width} a multiple of 8")
    per_cycle = ports * data_width // 8
    return axi_read_cycles(-(-nbytes // per_cycle), mem_latency)


# -- buffers of the tiled convolution (hw/replay.py, hw/transpose.py) --------------------------
# Counted with the producer always valid and the consumer always ready, from the first accepted
# input beat to the last output beat (as the benches measure).

def replay_period(block: int, repeats: int, buffers: int) -> int:
    """Steady-state cycles per block of a replay buffer: ``block·repeats``.

    The buffer stores ``block`` beats and emits them ``repeats`` times. With ``buffers=2`` the
    next block is written while the current one is replayed; with ``buffers=1`` the next block
    is written behind the reader during the last replay, so a fast producer keeps the output
    busy too, except for ``block = 1`` (one more cycle per block: the single word is written
    after its last read).
    """
    return block * repeats + (1 if buffers == 1 and block == 1 else 0)


def tiled_period(nf: int, t_tile: int, t_in: int, buffers: int = 2) -> int:
    """Cycles per frame of a tiled convolution behind its replay buffer, ``T_tile`` being
    one replay's time (the window's cycles for one pass, ``P·SF`` MVTU steps) and ``T_in``
    the time one input frame takes to arrive.

    ``buffers=2``: the next frame is written while this one is replayed,
    ``max(NF·T_tile, T_in)`` (exact). ``buffers=1``: the next frame is written only behind
    the reader's last replay, so a slow input costs more; ``max(NF·T_tile,
    T_in + max(NF − 2, 0)·T_tile)`` is an upper bound (the window's row buffer lets the
    reader run ahead of its output, which the bound ignores: measured 711 against 864 for
    NF 4, T_tile 144, T_in 576).
    """
    if nf < 1 or t_tile < 0 or t_in < 0 or buffers not in (1, 2):
        raise ValueError(f"tiled_period: nf={nf} must be ≥ 1, t_tile={t_tile} and "
                         f"t_in={t_in} ≥ 0, buffers={buffers} 1 or 2")
    if buffers == 2:
        return max(nf * t_tile, t_in)
    return max(nf * t_tile, t_in + max(nf - 2, 0) * t_tile)


def tiled_output_period(nf: int, t_tile: int, n: int, buffers: int = 1) -> int:
    """Cycles per frame of a tiled convolution's MVTU behind its transpose buffer, ``n =
    P·NF`` output beats a frame, ``T_tile`` one tile's time.

    The buffer emits a frame pixel-major from the start of the last tile on, one beat per
    cycle. ``buffers=2``: the next frame is written meanwhile, ``max(NF·T_tile, n)``.
    ``buffers=1``: the MVTU's first write of the next frame waits until that read is done,
    ``(NF − 1)·T_tile + max(T_tile, n)`` (consumer always ready).
    """
    if nf < 1 or t_tile < 0 or n < 0 or buffers not in (1, 2):
        raise ValueError(f"tiled_output_period: nf={nf} must be ≥ 1, t_tile={t_tile} and "
                         f"n={n} ≥ 0, buffers={buffers} 1 or 2")
    if buffers == 2:
        return max(nf * t_tile, n)
    return (nf - 1) * t_tile + max(t_tile, n)


def replay_cycles(block: int, repeats: int, buffers: int, blocks: int = 1) -> int:
    """Cycles of ``blocks`` back-to-back blocks through a replay buffer:
    ``(blocks − 1)·replay_period + block·repeats + 1`` (the ``+ 1``: an output beat is valid
    two cycles after its input beat was accepted)."""
    return (blocks - 1) * replay_period(block, repeats, buffers) + block * repeats + 1


def replay_bits(width: int, block: int, buffers: int) -> int:
    """RAM bits of a replay buffer: ``buffers·block·width``."""
    return buffers * block * width


def transpose_period(rows: int, cols: int, buffers: int) -> int:
    """Steady-state cycles per frame of a transpose buffer (``rows·cols`` beats in column-major
    order, out in row-major order).

    ``buffers=2``: ``rows·cols``, the writer never waits. ``buffers=1``: the next frame is
    written only after the last read of the current one, ``2·rows·cols − rows − cols + 2``.
    """
    n = rows * cols
    return n if buffers == 2 else 2 * n - rows - cols + 2


def transpose_cycles(rows: int, cols: int, buffers: int, frames: int = 1) -> int:
    """Cycles of ``frames`` back-to-back frames through a transpose buffer:
    ``(frames − 1)·transpose_period + 2·rows·cols − rows − cols + 2``.

    Output beat (r, c) needs input beat ``c·rows + r``; the reader emits row 0 as soon as the
    first beat of the last column is in, and from then on keeps pace with the writer (``cols``
    output beats per input beat of the last column), so a frame's last output beat leaves
    ``rows·cols − rows − cols + 3`` cycles after its last input beat was accepted.
    """
    n = rows * cols
    return (frames - 1) * transpose_period(rows, cols, buffers) + 2 * n - rows - cols + 2


def transpose_bits(width: int, rows: int, cols: int, buffers: int) -> int:
    """RAM bits of a transpose buffer: ``buffers·rows·cols·width``."""
    return buffers * rows * cols * width


# -- the engine datapath (hw/engine): one layer, descriptor geometry -------------------------
# Counted from the cycle ``start`` is high to the cycle ``done`` is high, the tile stream
# always valid and the raw sink always ready.

#: cycles from the issue of a pixel's last beat to its output beat at the writer
ENGINE_LATENCY = 5
#: cycles from the start of a layer to the first tile word accepted (the descriptor is
#: checked in the start cycle, the units start the next)
ENGINE_TILE_START = 2
#: cycles from the start of a layer to the first possible issue (the window reader's three
#: setup cycles and its output queue)
ENGINE_FIRST_ISSUE = 6
#: cycles from a tile's last output to its bank accepting the next tile's first word
ENGINE_RELEASE = 5
#: output beats the engine's credit FIFO holds (reserved at a pixel's last issue)
ENGINE_FIFO_DEPTH = 6


def engine_writer_cycles(desc: Mapping[str, int], pe: int, simd: int, oy: int, ox: int,
                         nf: int) -> int:
    """Cycles the engine's writer spends on the output beat of conv pixel (oy, ox), fold
    ``nf`` (raw layers: 1, the raw handshake).

    The pooled positions (py, px) whose window holds the pixel are visited as
    ``py = py_hi − j`` (``oy + pool_t = py_hi·s + ry``, window row ``ry + j·s < pool_k``,
    ``py ≥ 0``; likewise x): a position outside the pooled map costs 1 cycle, one inside
    ``words`` (one pipelined read-modify-write per word; ``words = pe/simd`` clipped to
    ``out_cf``, or 1 when ``pe ≤ simd``); a beat with no position costs 1.
    """
    if desc["raw"]:
        return 1
    k, s = desc["pool_k"], desc["pool_s"]
    py_hi, ry = divmod(oy + desc["pool_t"], s)
    px_hi, rx = divmod(ox + desc["pool_l"], s)
    ys = [py_hi - j for j in range(k) if ry + j * s < k and py_hi - j >= 0]
    xs = [px_hi - j for j in range(k) if rx + j * s < k and px_hi - j >= 0]
    if not ys or not xs:
        return 1
    words = min(pe // simd, desc["out_cf"] - nf * (pe // simd)) if pe >= simd else 1
    return sum(words if py < desc["pool_h"] and px < desc["pool_w"] else 1
               for py in ys for px in xs)


def engine_tile_load_cycles(desc: Mapping[str, int], ports: int = 1) -> int:
    """Cycles to load one tile of an engine layer through a tile stream of ``ports`` 64-bit
    words per beat: ``L = ceil(tile_words / ports)`` (``tile_words`` is a multiple of
    ``ports`` in the format of :mod:`lowbit_hdl.runtime.engine`)."""
    if ports not in (1, 2, 4):
        raise ValueError(f"ports={ports} must be 1, 2 or 4")
    return -(-desc["tile_words"] // ports)


def _engine_timeline(desc: Mapping[str, int], pe: int, simd: int, ports: int = 1,
                     release: Sequence[int] | None = None) -> tuple[int, int]:
    """(cycles, tile stall cycles) of one layer: the issue, credit and writer recurrences;
    ``release``: per output pixel, the earliest cycle of its last beat in tile 0
    (:func:`engine_map_release`)."""
    nf, sf = desc["nf"], desc["sf"]
    oh, ow = desc["out_h"], desc["out_w"]
    if nf < 1 or sf < 1 or oh < 1 or ow < 1:
        raise ValueError(f"engine layer: nf={nf}, sf={sf}, out_h={oh}, out_w={ow} must be ≥ 1")
    words, depth = engine_tile_load_cycles(desc, ports), ENGINE_FIFO_DEPTH
    pops: list[int] = []         # cycle the writer (or the raw sink) takes each output beat
    tile_end: list[int] = []     # last issue of each tile
    free = 0                     # first cycle the writer is free
    stall = 0
    a = e = 0
    for n in range(nf):
        # tile n: first word accepted at a, compute from s (its bank is free ENGINE_RELEASE
        # cycles after the last issue of tile n − 2)
        if n == 0:
            a = ENGINE_TILE_START
            s = max(a + words, ENGINE_FIRST_ISSUE)
            stall += s - ENGINE_FIRST_ISSUE
        else:
            a = a + words if n == 1 else max(a + words, tile_end[n - 2] + ENGINE_RELEASE)
            s = max(e + 1, a + words)
            stall += s - e - 1
        for pix in range(oh * ow):
            i = len(pops)
            # a pixel's beats issue back to back; its last waits for an output-FIFO credit
            e = (s if pix == 0 else e + 1) + sf - 1
            if release is not None and n == 0:
                e = max(e, release[pix])
            if i >= depth:
                e = max(e, pops[i - depth] + 1)
            w = engine_writer_cycles(desc, pe, simd, pix // ow, pix % ow, n)
            b = max(e + ENGINE_LATENCY, free)
            pops.append(b + w - 1)
            free = b + w
        tile_end.append(e)
    # done: the cycle after the last raw beat was taken, or after the last write landed
    return pops[-1] + (1 if desc["raw"] else 2), stall


def engine_layer_cycles(desc: Mapping[str, int], pe: int, simd: int, ports: int = 1,
                        release: Sequence[int] | None = None) -> int:
    """Cycles of one engine layer (``start`` to ``done``) for its descriptor ``desc``
    (``lowbit_hdl.runtime.engine`` fields) on a datapath of ``pe``×``simd`` whose tile
    stream carries ``ports`` 64-bit words per beat; ``release``: for a frame's first layer,
    which overlaps the loading of its map, when each output pixel's input is in
    (:func:`engine_map_release`).

    With ``T = OH·OW·SF`` (one tile's compute) and ``L = ceil(tile_words / ports)`` (one
    tile's load, one beat per cycle, :func:`engine_tile_load_cycles`): tile ``n``'s first
    beat is accepted at ``a_0 = 2`` (the descriptor is
    checked in the start cycle), ``a_1 = a_0 + L``, ``a_n = max(a_{n−1} + L, e_{n−2} + 5)``
    (its bank is free 5 cycles after the last issue of tile ``n − 2``); its compute runs from
    ``s_n = max(e_{n−1} + 1, a_n + L)`` (``s_0 = max(2 + L, 6)``: the window reader's setup
    and queue)
    to ``e_n = s_n + T − 1``; the layer is done ``5 + W_last`` cycles after ``e_{NF−1}``,
    ``W_last`` the writer's cycles for the last beat (:func:`engine_writer_cycles`) plus 1
    for its last write to land (0 for a raw layer). With ``3 ≤ L ≤ T − 3`` this is
    ``NF·OH·OW·SF + L + 6 + W_last``.

    When the writer needs more than SF cycles for some beats, the output FIFO
    (:data:`ENGINE_FIFO_DEPTH` credits, a pixel's last beat issues only with a free credit)
    throttles the core: pixel ``i``'s last issue is also ``≥ pop_{i−D} + 1``, beat ``i``
    reaches the writer at ``max(e_i + 5, writer free)`` and is popped ``w_i − 1`` cycles
    later (the recurrence is exact). With ``release``, pixel ``i``'s last issue in tile 0 is
    also ``≥ release_i``.

    Raises
    ------
    ValueError
        If a size is below 1.
    """
    return _engine_timeline(desc, pe, simd, ports, release)[0]


def engine_tile_stall_cycles(desc: Mapping[str, int], pe: int, simd: int,
                             ports: int = 1) -> int:
    """Cycles of one engine layer in which the core waited for a weight tile (the
    datapath's ``stall`` counter: from the end of the reader's setup on, so tile 0's load
    beyond it included); see :func:`engine_layer_cycles`."""
    return _engine_timeline(desc, pe, simd, ports)[1]


def engine_map_release(desc: Mapping[str, int], load_cycles: int, lead: int,
                       head: int = 0) -> list[int]:
    """When a frame's first engine layer may finish each output pixel's tile-0 beats, if the
    loader writes the map's ``in_h·in_w·in_cf`` buffer words at an even pace over
    ``load_cycles`` cycles from ``lead`` cycles before the layer's ``start``, the first
    ``head`` of them (waiting in the FIFO before the loader) one per cycle: per output pixel
    (raster order), the cycle after its last input word is written (word
    ``(y·in_w + x + 1)·in_cf − 1`` of its bottom-right in-map input pixel ``(y, x)``; the
    datapath lets a beat read a word from the cycle after its write), relative to ``start``.
    """
    h, w, cf = desc["in_h"], desc["in_w"], desc["in_cf"]
    k, st = desc["k"], desc["stride"]
    words = h * w * cf
    out = []
    for oy in range(desc["out_h"]):
        y = min(h - 1, oy * st - desc["pad_t"] + k - 1)
        for ox in range(desc["out_w"]):
            x = min(w - 1, ox * st - desc["pad_l"] + k - 1)
            last = (y * w + x + 1) * cf if y >= 0 and x >= 0 else 0
            written = max(last, -(-max(0, last - head) * load_cycles // words))
            out.append(written - lead + 1)
    return out


def engine_load_cycles(shape: tuple[int, int, int], elems: int, simd: int) -> int:
    """Cycles of the engine's loader for an (H, W, C) map in beats of ``elems`` elements,
    the stream always valid: from the first accepted beat to ``load_done``,
    ``(beats − 1)·w + 1`` with ``beats = H·W·C/elems`` and ``w = max(1, elems/simd)``
    buffer words written per beat (one per cycle)."""
    h, w, c = shape
    beats = h * w * c // elems
    return (beats - 1) * max(1, elems // simd) + 1


def engine_drain_cycles(shape: tuple[int, int, int], simd: int) -> int:
    """Cycles from the ``done`` of a frame's last (non-raw) layer to the drain's last beat,
    the consumer always ready: ``H·W·CF + 1`` (one buffer word per cycle)."""
    h, w, c = shape
    return h * w * -(-c // simd) + 1


#: cycles the engine's sequencer adds to a descriptor read: the CMD state, two check states
ENGINE_SEQUENCER_STATES = 3


def engine_descriptor_cycles(mem_latency: int = DDR_READ_LATENCY) -> int:
    """Cycles from a layer's ``layer_done`` (or the frame's layer-count word) to the next
    layer's ``layer_start`` in :class:`lowbit_hdl.hw.engine.sequencer.EngineSequencer`: one
    read of ``DESCRIPTOR_WORDS`` words (:func:`axi_read_cycles`) plus
    :data:`ENGINE_SEQUENCER_STATES`: ``DESCRIPTOR_WORDS + mem_latency + 4 + 3``."""
    return axi_read_cycles(DESCRIPTOR_WORDS, mem_latency) + ENGINE_SEQUENCER_STATES


def engine_region_latency(mem_latency: int = DDR_READ_LATENCY) -> int:
    """Cycles from the sequencer's ``layer_start`` to the layer's first tile word on
    ``tiles``: its region read (``mem_latency + AXI_READ_MASTER_LATENCY``, the command issued
    in the ``layer_start`` cycle; with several read masters, all issue in that cycle and the
    first beat waits for a word of each); from then on a beat per cycle while the datapath
    takes them and the memories keep up."""
    return mem_latency + AXI_READ_MASTER_LATENCY


def _conv_window(info: LayerInfo, simd: int) -> WindowGeometry:
    lay = info.layer
    c, h, w = info.in_shape
    return WindowGeometry(h, w, c // simd, lay.kernel, lay.stride, lay.padding)


def layer_cycles(info: LayerInfo, pe: int | None = None, simd: int | None = None) -> int:
    """Cycles per frame of one layer (see the module docstring).

    ``pe``/``simd`` default to the layer's own folding; an MVTU layer may be given another
    (the auto-folder tries candidates). A max-pool or top-k runs at its input fold.
    """
    lay = info.layer
    if isinstance(lay, (Conv, FC)):
        pe = lay.pe if pe is None else pe
        simd = lay.simd if simd is None else simd
        cycles = mvtu_cycles(info.mh, info.mw, pe, simd, info.vectors)
        if isinstance(lay, Conv):
            cycles = max(cycles, window_cycles(_conv_window(info, simd)))
        return cycles
    if isinstance(lay, MaxPool):
        return pool_cycles(info.in_shape, info.in_fold if pe is None else pe, lay.kernel,
                           lay.stride, info.pads)
    if isinstance(lay, TopK):
        c, h, w = info.in_shape
        return topk_cycles(c * h * w, info.in_fold, lay.k)
    raise TypeError(f"layer_cycles: unknown layer type {type(lay).__name__}")


# -- the sliding window's buffer rows -----------------------------------------------------------

def window_schedule(g: WindowGeometry, rows: int, frames: int
                    ) -> tuple[int, list[int]] | None:
    """Cycle-exact model of the sliding window's control (:mod:`lowbit_hdl.hw.swu`) with no
    stalls and a buffer of ``rows`` input rows.

    Returns (cycle of the first accepted input beat, cycle of the last output beat of every
    frame), or ``None`` when the control deadlocks (too few rows).
    """
    h, w, cs, k, s, p = g.h, g.w, g.cs, g.k, g.s, g.p
    oh_n, ow_n = g.oh, g.ow
    wr = wpos = wframes = 0
    wcs = w * cs
    d = 0
    oh = ow = kh = kw = cg = 0
    rframes = 0
    pend = False
    first_in = None
    last_out: list[int] = []
    outs = 0
    per_frame = g.out_beats
    limit = 4 * (g.in_beats + g.out_beats) * (frames + 1) + 100
    cyc = 0
    while len(last_out) < frames:
        cyc += 1
        if cyc > limit:
            return None
        row0 = oh * s - p
        lo = min(max(row0, 0), h)  # rows of the next frame count from h
        iready = wframes < frames and d != 2 and d * h + wr < lo + rows
        row = row0 + kh
        col = ow * s - p + kw
        pad = row < 0 or row >= h or col < 0 or col >= w
        last = cg == cs - 1 and kw == k - 1 and kh == k - 1 and ow == ow_n - 1 and oh == oh_n - 1
        issue = rframes < frames and not (d == -1 and last) and (
            pad or d >= 1 or (d == 0 and (row < wr or (row == wr and col * cs + cg < wpos))))
        if pend:
            outs += 1
            if outs % per_frame == 0:
                last_out.append(cyc)
        pend = issue
        wdone = rdone = False
        if iready:
            if first_in is None:
                first_in = cyc
            wpos += 1
            if wpos == wcs:
                wpos = 0
                wr += 1
                if wr == h:
                    wr = 0
                    wframes += 1
                    wdone = True
        if issue:
            cg += 1
            if cg == cs:
                cg = 0
                kw += 1
                if kw == k:
                    kw = 0
                    kh += 1
                    if kh == k:
                        kh = 0
                        ow += 1
                        if ow == ow_n:
                            ow = 0
                            oh += 1
                            if oh == oh_n:
                                oh = 0
                                rframes += 1
                                rdone = True
        d += int(wdone) - int(rdone)
    return (first_in if first_in is not None else 1), last_out


def window_rows_bound(g: WindowGeometry) -> int:
    """An upper bound on :func:`window_rows`, used for windows too big to model quickly:
    ``max(K + s, 2K − 2p + (H + 2p − K) mod s, 2)``, plus one when ``p ≥ K`` or ``s > K``."""
    m = g.h + 2 * g.p - g.k
    r = max(g.k + g.s, 2 * g.k - 2 * g.p + m % g.s, 2) + (1 if g.p >= g.k or g.s > g.k else 0)
    return r


def window_rows(g: WindowGeometry) -> int:
    """Buffer rows of the sliding window: the smallest row count with which its control
    (:func:`window_schedule`) sustains :func:`window_cycles` per frame.

    The row count does not depend on ``C/SIMD`` (it is modelled with one beat per pixel);
    windows too big to model quickly get :func:`window_rows_bound`. Pure Python: the
    resource estimate calls it as well as :class:`lowbit_hdl.hw.swu.SlidingWindow`.
    """
    return _rows(g.h, g.w, g.k, g.s, g.p)


@lru_cache(maxsize=256)
def _rows(h: int, w: int, k: int, s: int, p: int) -> int:
    g = WindowGeometry(h, w, 1, k, s, p)  # the row count does not depend on C/SIMD
    lo = min(k, h)
    hi = window_rows_bound(g)
    per = window_cycles(g)
    if (g.in_beats + g.out_beats) * 6 * (hi - lo + 1) > 4_000_000:
        return max(lo, hi)  # too big to model quickly: a bound checked against the model
    for r in range(lo, hi + 1):
        res = window_schedule(g, r, 6)
        if res is None:
            continue
        lasts = res[1]
        if lasts[5] - lasts[2] <= 3 * per:
            return r
    return max(lo, hi)


# -- per-layer and network figures -------------------------------------------------------------

@dataclass
class LayerCost:
    """Per-layer analytic figures."""

    name: str
    kind: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    in_dtype: str
    out_dtype: str
    weight_dtype: str
    pe: int
    simd: int
    mw: int
    mh: int
    nf: int
    sf: int
    cycles: int
    macs: int
    weight_bits: int
    threshold_bits: int
    acc_bits: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class NetworkCost:
    """Whole-network figures at a clock frequency."""

    layers: list[LayerCost]
    clock_mhz: float

    @property
    def bottleneck(self) -> LayerCost:
        return max(self.layers, key=lambda c: c.cycles)

    @property
    def cycles_per_frame(self) -> int:
        return self.bottleneck.cycles

    @property
    def fps(self) -> float:
        return self.clock_mhz * 1e6 / self.cycles_per_frame

    @property
    def latency_cycles(self) -> int:
        """Upper bound on one frame's latency: layers run one after another."""
        return sum(c.cycles for c in self.layers)

    @property
    def ops_per_frame(self) -> int:
        return 2 * sum(c.macs for c in self.layers)

    @property
    def gops(self) -> float:
        return self.ops_per_frame * self.fps / 1e9

    @property
    def weight_bits(self) -> int:
        return sum(c.weight_bits for c in self.layers)

    @property
    def threshold_bits(self) -> int:
        return sum(c.threshold_bits for c in self.layers)

    def to_dict(self) -> dict:
        return {
            "clock_mhz": self.clock_mhz,
            "cycles_per_frame": self.cycles_per_frame,
            "bottleneck": self.bottleneck.name,
            "fps": self.fps,
            "latency_cycles": self.latency_cycles,
            "ops_per_frame": self.ops_per_frame,
            "gops": self.gops,
            "weight_bits": self.weight_bits,
            "threshold_bits": self.threshold_bits,
            "layers": [c.to_dict() for c in self.layers],
        }


def layer_cost(info: LayerInfo) -> LayerCost:
    """Analytic figures of one layer (see the module docstring for the formulas)."""
    lay = info.layer
    pe = simd = mw = mh = nf = sf = macs = wbits = tbits = 0
    wdt = "-"
    cycles = layer_cycles(info)
    if isinstance(lay, (Conv, FC)):
        pe, simd, mw, mh = lay.pe, lay.simd, info.mw, info.mh
        nf, sf = mh // pe, mw // simd
        macs = mw * mh * info.vectors
        wbits = mw * mh * lay.weight_dtype.bits
        tbits = mh * info.n_thresholds * info.acc_bits
        wdt = lay.weight_dtype.name
    else:  # max-pool, top-k: their input fold
        pe = info.in_fold
    return LayerCost(lay.name, lay.kind, info.in_shape, info.out_shape, info.in_dtype.name,
                     info.out_dtype.name, wdt, pe, simd, mw, mh, nf, sf, cycles, macs, wbits,
                     tbits, info.acc_bits)


def network_cost(net: Network, clock_mhz: float = 100.0) -> NetworkCost:
    """Analytic figures of every layer of ``net`` and of the whole pipeline."""
    return NetworkCost([layer_cost(i) for i in net.infer()], clock_mhz)


def format_shape(shape) -> str:
    """A shape as the tables print it: ``3×32×32``."""
    return "×".join(str(int(d)) for d in shape)


def format_bits(bits: int) -> str:
    """A memory size as the tables print it: bits below 1 KiB, then KiB, then MiB."""
    if bits >= 8 * 1024 * 1024:
        return f"{bits / 8 / 1024 / 1024:.2f} MiB"
    if bits >= 8 * 1024:
        return f"{bits / 8 / 1024:.1f} KiB"
    return f"{bits} b"


# the DDR architectures' cost (it builds on the formulas above, hence imported last); its
# public names are re-exported as they are listed there
from . import ddrcost as _ddrcost  # noqa: E402
from .ddrcost import *  # noqa: E402, F403

__all__ += _ddrcost.__all__
