"""Analytic resource estimate (LUT, FF, BRAM36, DSP) of a planned pipeline on 7-series
FPGAs, and the fit check against the xc7z020 of the PYNQ-Z2.

The formulas count the datapath the way it maps to 6-input LUTs; they are calibrated against
Yosys ``synth_xilinx`` runs of the generated modules (``build --synth`` prints both side by
side) and are meant for design-space decisions (auto-folding, fit check), not sign-off.

Memories: a memory of ``depth`` words of ``width`` bits goes to

* logic (constants) when ``depth == 1`` (weights that never change per cycle);
* for a read-only memory (weights, thresholds) at ``ram_style="auto"``: LUT logic when it
  has at most 256 words or 4 Kbit, else block RAM (``lowbit_hdl.hw.rom.rom_style``, which
  the RTL follows too); ``"logic"`` or
  ``"distributed"`` force LUT logic, ``"block"`` block RAM;
* for a RAM (line buffers, FIFOs): distributed RAM (RAM32M/RAM64M) when ``depth ≤ 64`` or
  ``ram_style="distributed"``; registers for ``"logic"``; block RAM otherwise;
* block RAM: per 18-Kbit half it packs ``512×36, 1K×18, 2K×9, 4K×4, 8K×2, 16K×1``
  (simple dual port), counted in BRAM36 (two halves each).

The auto-folder (:mod:`lowbit_hdl.flow.folding`) chooses each Conv/FC layer's weight-memory
style (``"block"`` or ``"logic"``) itself instead of relying on the ``auto`` rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ..cost import (
    EngineConfig,
    WindowGeometry,
    choose_placements,
    ddr_placement,
    engine_array,
    engine_lanes,
    window_rows,
)
from ..hw.bitmatrix import tree_groups
from ..hw.engine.core import group_lanes
from ..hw.rom import rom_style
from ..ir import Conv, LayerInfo, Network, TopK
from ..runtime.ddr import converter_geometry
from .plan import (
    TILE_CACHE_BUFFERS,
    TILED_FM_BUFFERS,
    TRANSPOSE_BUFFERS,
    Plan,
    Stage,
    StageKind,
    ceil_div,
    log2_ceil,
    plan_network,
)

__all__ = [
    "Resources",
    "Device",
    "XC7Z020",
    "DEVICES",
    "device_for_part",
    "SHELL",
    "StageEstimate",
    "Estimate",
    "bram18_count",
    "memory_resources",
    "mvtu_resources",
    "pool_resources",
    "swu_buffer",
    "window_resources",
    "stage_resources",
    "estimate_plan",
    "estimate_network",
    "fit_check",
    "READ_MASTER",
    "CONTROL_BLOCK",
    "HP_PORT",
    "region_path_resources",
    "replay_resources",
    "transpose_resources",
    "ddr_path_resources",
    "placement_resources",
    "hybrid_placements",
    "estimate_hybrid",
    "estimate_engine",
]

#: (depth, width) of one 18-Kbit block RAM in simple dual-port mode
BRAM18_SHAPES = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))
#: RAMs (with a write port) this deep or shallower go to LUT-RAM, deeper ones to block RAM
LUTRAM_MAX_DEPTH = 64
#: lanes with more 1-bit partial products than this multiply on DSPs (lowbit_hdl.hw.mvtu)
MAX_BIT_PRODUCTS = 16


@dataclass
class Resources:
    """A resource count; ``bram36`` in steps of 0.5 (an 18-Kbit half)."""

    lut: int = 0
    ff: int = 0
    bram36: float = 0.0
    dsp: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.lut + other.lut, self.ff + other.ff,
                         self.bram36 + other.bram36, self.dsp + other.dsp)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.lut - other.lut, self.ff - other.ff,
                         self.bram36 - other.bram36, self.dsp - other.dsp)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Device:
    """An FPGA's capacity."""

    part: str
    lut: int
    ff: int
    bram36: int
    dsp: int


XC7Z020 = Device("xc7z020clg400-1", 53_200, 106_400, 140, 220)
#: capacities of the Zynq-7000 parts by device name (the part's package/speed do not matter)
DEVICES = {
    "xc7z010": (17_600, 35_200, 60, 80),
    "xc7z020": (53_200, 106_400, 140, 220),
    "xc7z030": (78_600, 157_200, 265, 400),
    "xc7z045": (218_600, 437_200, 545, 900),
}


def device_for_part(part: str) -> Device:
    """The :class:`Device` of a Zynq-7000 part name such as ``xc7z020clg400-1``."""
    for name, (lut, ff, bram, dsp) in DEVICES.items():
        if part.lower().startswith(name):
            return Device(part, lut, ff, bram, dsp)
    raise ValueError(f"unknown part {part!r}: the fit check knows "
                     f"{', '.join(sorted(DEVICES))}")
#: what the Zynq shell (AXI DMA, interconnects, reset) takes next to the accelerator
SHELL = Resources(lut=5_000, ff=6_000, bram36=6, dsp=0)


def bram18_count(width: int, depth: int) -> int:
    """18-Kbit block RAM halves for a ``depth × width`` memory (best aspect ratio)."""
    if width <= 0 or depth <= 0:
        return 0
    best = None
    for d, w in BRAM18_SHAPES:
        n = ceil_div(width, w) * ceil_div(depth, d)
        best = n if best is None else min(best, n)
    return int(best)


def memory_resources(width: int, depth: int, style: str = "auto", rom: bool = False
                     ) -> Resources:
    """Resources of one ``depth × width`` memory (see the module docstring).

    ``rom``: read-only (weights, thresholds), which synthesis may turn into logic; else a
    RAM with a write port (line buffers, FIFOs), which goes to LUT-RAM or block RAM.
    """
    if width <= 0 or depth <= 0:
        return Resources()
    if depth == 1:
        return Resources()  # constants: folded into the logic that reads them
    bits = width * depth
    bram = Resources(bram36=bram18_count(width, depth) / 2)
    if style == "block":
        return bram
    if style == "logic" and not rom:  # registers and a read multiplexer
        return Resources(lut=width * _mux_luts(depth), ff=bits + width)
    if rom:
        if rom_style(width, depth, style) in ("distributed", "logic"):
            # a ROM in LUTs (about one LUT per bit per 16 words) and its read register; of
            # two words each bit is a constant, the address bit or its inverse
            lut = 0 if depth <= 2 else width * max(1, round(depth / 16))
            return Resources(lut=lut, ff=width)
        return bram
    if style == "distributed" or depth <= LUTRAM_MAX_DEPTH:
        # RAM32M: 6 bits × 32 words in 4 LUTs; RAM64M: 3 bits × 64 words in 4 LUTs
        lut = 4 * ceil_div(width, 6) if depth <= 32 else \
            4 * ceil_div(width, 3) * ceil_div(depth, 64)
        return Resources(lut=lut, ff=width)
    return bram


def _dot_luts(simd: int, wbits: int, abits: int, wbipolar: bool, abipolar: bool) -> tuple[
        int, int]:
    """LUTs and DSPs of one PE's SIMD-wide dot product and adder tree."""
    if wbipolar and abipolar:  # XNOR + popcount compressor tree: about 1.5 LUTs per lane
        return 3 * simd // 2 + 2 * log2_ceil(simd + 1), 0
    if wbipolar:  # conditional negate (XOR, carry-in) per lane + adder tree
        return simd * (abits + 1) + (simd - 1) * (abits + log2_ceil(simd) // 2), 0
    if wbits * abits > MAX_BIT_PRODUCTS:  # wide products go to DSP slices
        return (wbits + abits) * max(0, simd - 1), simd
    # narrow products: 1-bit partial products summed by a compressor tree (bit-matrix form)
    bits = simd * wbits * abits
    return bits + bits // 2 + (wbits + abits) * log2_ceil(simd), 0


def mvtu_resources(info: LayerInfo, pe: int, simd: int, placement: str = "",
                   ram_style: str | None = None) -> Resources:
    """Estimate of one MVTU (dot products, accumulators, thresholds, weight memory).

    ``ram_style``: the weight memories' style (default: the layer's). ``placement``
    ``"stream"``/``"tiled"`` (hybrid designs): the weights come through the ``w`` port,
    so there is no weight memory (the DDR path is :func:`ddr_path_resources`);
    a tiled MVTU has no input-vector buffer either (every vector is used for one tile)."""
    lay = info.layer
    w, a = lay.weight_dtype, info.in_dtype
    nf, sf = info.mh // pe, info.mw // simd
    acc = info.acc_bits
    dot, dsp = _dot_luts(simd, w.bits, a.bits, w.is_bipolar, a.is_bipolar)
    t = info.n_thresholds
    thr_cmp = t * ceil_div(acc, 2) + (a.bits if t > 1 else 0)  # comparators + count
    per_pe_lut = dot + acc + thr_cmp
    per_pe_ff = 2 * acc + max(1, info.out_dtype.bits) + 4  # partial sum, accumulator, out
    ctrl = 40 + 2 * (log2_ceil(nf) + log2_ceil(sf) + log2_ceil(info.vectors))
    groups = tree_groups(simd, a, w)
    if groups > 1:  # registered group sums, each with its own final adder, then their sum
        gbits = w.bits + a.bits + log2_ceil(ceil_div(simd, groups) + 1)
        per_pe_ff += groups * gbits
        per_pe_lut += groups * gbits
        ctrl += 4
    res = Resources(lut=ctrl + pe * per_pe_lut, ff=ctrl + pe * per_pe_ff, dsp=pe * dsp)
    style = lay.ram_style if ram_style is None else ram_style
    for _ in range(pe):  # one weight and one threshold memory per PE (lowbit_hdl.hw.mvtu)
        if not placement:
            res += memory_resources(simd * w.bits, nf * sf, style, rom=True)
        if t:
            res += memory_resources(t * acc, nf, rom=True)
    if nf > 1 and sf > 1 and placement != "tiled":  # input vector buffer reused across folds
        res += memory_resources(simd * a.bits, sf)
    return res


def swu_buffer(info: LayerInfo) -> tuple[int, int]:
    """(width, depth) of a convolution's sliding-window buffer: ``SIMD·bits`` wide,
    ``R·W·C/SIMD`` words, with ``R`` rows as :class:`lowbit_hdl.hw.swu.SlidingWindow` sizes
    them (:func:`lowbit_hdl.cost.window_rows`)."""
    lay = info.layer
    if not isinstance(lay, Conv):
        raise ValueError(f"layer {info.name}: a sliding window needs a Conv layer, got "
                        f"{type(lay).__name__}")
    c, h, w = info.in_shape
    g = WindowGeometry(h, w, c // lay.simd, lay.kernel, lay.stride, lay.padding)
    return lay.simd * info.in_dtype.bits, window_rows(g) * w * g.cs


def _swu_resources(stage: Stage, info: LayerInfo | None) -> Resources:
    assert info is not None
    return window_resources(info)


def window_resources(info: LayerInfo) -> Resources:
    """Estimate of a convolution's sliding window (its buffer and counters)."""
    lay = info.layer
    c, h, w = info.in_shape
    k, simd, bits = lay.kernel, lay.simd, info.in_dtype.bits
    mem = memory_resources(*swu_buffer(info))
    counters = 6 * log2_ceil(max(w + 2 * lay.padding, h + 2 * lay.padding, k, c // simd + 1))
    return mem + Resources(lut=60 + 2 * counters + simd * bits,
                           ff=20 + counters + simd * bits)


def _mux_luts(n: int) -> int:
    """LUT6s per bit of an ``n``-way multiplexer (a LUT6 selects among four)."""
    return 0 if n <= 1 else ceil_div(n, 4)


def _dwc_resources(a: int, b: int, bits: int) -> Resources:
    """Width converter ``a → b`` elements as :mod:`lowbit_hdl.hw.dwc` builds it: a circular
    buffer of ``B`` elements (a multiple of the wider side, ≥ a + b + min(a, b) − 1); a buffer
    slot is written from ``a / gcd(a, B)`` input positions, an output element read from
    ``B / gcd(B, b)`` slots."""
    if a == b:
        return Resources()
    big, small = max(a, b), min(a, b)
    slots = ceil_div(a + b + small - 1, big) * big
    lut = slots * bits * _mux_luts(a // math.gcd(a, slots)) \
        + b * bits * _mux_luts(slots // math.gcd(slots, b)) + 20
    return Resources(lut=lut, ff=slots * bits + 2 * log2_ceil(slots))


def _mvtu_stage(stage: Stage, info: LayerInfo | None) -> Resources:
    assert info is not None
    return mvtu_resources(info, info.layer.pe, info.layer.simd, stage.placement)


def replay_resources(width: int, block: int, repeats: int) -> Resources:
    """A tiled convolution's feature-map buffer: ``block`` input beats of ``width`` bits
    (:data:`~lowbit_hdl.flow.plan.TILED_FM_BUFFERS` of them), block RAM, plus counters."""
    mem = memory_resources(width, block * TILED_FM_BUFFERS, "block")
    cnt = 2 * log2_ceil(block * repeats + 1)
    return mem + Resources(lut=30 + cnt + width // 2, ff=20 + cnt + width)


def transpose_resources(width: int, beats: int) -> Resources:
    """A tiled convolution's output reorder buffer: one frame of ``beats`` output beats
    (:data:`~lowbit_hdl.flow.plan.TRANSPOSE_BUFFERS` of them)."""
    mem = memory_resources(width, beats * TRANSPOSE_BUFFERS, "block")
    cnt = 3 * log2_ceil(beats + 1)
    return mem + Resources(lut=30 + cnt + width // 2, ff=20 + cnt + width)


def _replay_resources(stage: Stage, info: LayerInfo | None) -> Resources:
    return replay_resources(stage.in_width, stage.in_beats, stage.out_beats // stage.in_beats)


def _transpose_resources(stage: Stage, info: LayerInfo | None) -> Resources:
    return transpose_resources(stage.in_width, stage.in_beats)


#: one AXI4 read master (Yosys, bench/synth_axi.py: 211 LUT + 88 LUTRAM, 217 FF with the
#: 64-word FIFO) plus its region fetcher's frame counter and address (about 40 LUT, 70 FF)
READ_MASTER = Resources(lut=340, ff=290)
#: engine calibration against Yosys 0.70 ``synth_xilinx`` of the two seed designs (AlexNet
#: 64×32 UINT2, Tiny-YOLO 32×64 UINT3, registered lane groups; docs/large_networks.md): the
#: engine core's lanes (runtime thresholds, bit-matrix lanes) take about 1.1× the dataflow
#: lane formula (AlexNet 17,212 LUT, Tiny-YOLO 23,576)
ENGINE_CORE_LUT_SCALE = 1.1
#: the window reader, writer, loader and drain: 1.6–1.85× the first count
ENGINE_LOGIC_LUT_SCALE = 1.7
#: multipliers of the descriptor checks and the window/writer addresses (Yosys: 23 DSP48E1
#: with one read master, 25 with four, independent of the lanes; ``ports // 2`` more)
ENGINE_CONTROL_DSP = 23
#: the hybrid design's AXI4-Lite registers (Yosys: 339 LUT, 212 FF) plus the run logic and
#: its three 32-bit performance counters (about 120 LUT, 100 FF)
CONTROL_BLOCK = Resources(lut=460, ff=320)
#: interconnect to one HP port in the block design (a SmartConnect: arbitration of the read
#: masters, register slices); an uncalibrated guess, no Vivado here
HP_PORT = Resources(lut=600, ff=900)


def region_path_resources(beat_bits: int, sf: int, placement: str,
                          masters: int = 1) -> Resources:
    """One DDR layer's weight path: its ``masters`` read masters, the ``64·masters``-bit →
    ``beat_bits`` width converter and, for a tiled layer, the weight-tile cache of ``SF``
    beats (:data:`~lowbit_hdl.flow.plan.TILE_CACHE_BUFFERS` of them)."""
    g, a, b = converter_geometry(beat_bits, words=masters)
    res = _dwc_resources(a, b, g)
    for _ in range(masters):
        res += READ_MASTER
    if placement == "tiled":
        res += memory_resources(beat_bits, TILE_CACHE_BUFFERS * sf, "block")
    return res


def ddr_path_resources(plan: Plan) -> Resources:
    """The DDR side of a hybrid plan: every DDR layer's weight path
    (:func:`region_path_resources`), the control block and an interconnect per HP port in
    use (:data:`HP_PORT`; an engine's read master is in :func:`engine_unit_resources`).
    Zero for a dataflow plan."""
    if not plan.uses_ddr:
        return Resources()
    res = CONTROL_BLOCK
    for _ in set(plan.ddr.master_hps):
        res += HP_PORT
    for r in plan.ddr.regions:
        res += region_path_resources(r.beat_bits, r.mw // r.simd, r.placement, r.masters)
    return res


def engine_unit_resources(plan: Plan) -> Resources:
    """Estimate of an engine design's engine stage (:mod:`lowbit_hdl.hw.engine`): ``PE``
    dot products of ``SIMD`` lanes with accumulators and threshold comparators, the
    double-buffered weight tile (``2·max SF`` beats of ``PE·SIMD`` bits) and tile
    thresholds, the 64-bit → beat shift register, the two activation buffers, the
    runtime-configured window, writer (read-modify-write max-pool, lane placement), loader
    and drain, and the sequencer with its read masters (one per tile-stream port)."""
    cfg, split = plan.engine, plan.split
    pe, simd = cfg.pe, cfg.simd
    infos = [c for c, _ in split.engine]
    a = split.act
    acc = max(i.acc_bits for i in infos)
    t = max(i.n_thresholds for i in infos)
    dot, dsp = _dot_luts(simd, 1, a.bits, True, a.is_bipolar)
    thr_cmp = t * ceil_div(acc, 2) + (a.bits if t > 1 else 0)
    # per PE: accumulator, output code, the registered group sums (hw.engine.core); the
    # registered operands (a weight beat and an activation word)
    groups = ceil_div(simd, group_lanes(a))
    lanes = Resources(lut=round(ENGINE_CORE_LUT_SCALE * pe * (dot + acc + thr_cmp)),
                      ff=pe * (acc + a.bits + 4 + 8 * groups) + pe * simd + simd * a.bits,
                      dsp=pe * dsp)
    fmt = plan.engine_format
    max_sf = fmt.max_sf
    beat = pe * simd
    # the tile's beat assembly and threshold registers: about three flip-flops per lane
    tile = memory_resources(beat, 2 * max_sf, "block") + Resources(lut=beat // 8, ff=3 * beat + 64)
    words = fmt.buffer_words
    abits = simd * a.bits
    buffers = memory_resources(abits, words, "block")
    buffers += memory_resources(abits, words, "block")
    buffers += Resources(lut=500 + 3 * abits // 2, ff=100 + abits)  # address and word muxes
    # window address counters, writer (pool compare + lane placement), loader, drain
    lane_pos = max(1, simd // pe) if pe < simd else 1
    logic = Resources(lut=round(ENGINE_LOGIC_LUT_SCALE * (
        600 + pe * a.bits * (2 + log2_ceil(lane_pos)) + simd * a.bits * 3)),
        ff=500 + 2 * simd * a.bits)
    # descriptor checks, address products: ENGINE_CONTROL_DSP multipliers
    sequencer = Resources(lut=500, ff=700, dsp=ENGINE_CONTROL_DSP + cfg.ports // 2)
    for _ in range(cfg.ports):  # one read master per port, merged into the tile beat
        sequencer += READ_MASTER
    return lanes + tile + buffers + logic + sequencer


def pool_resources(info: LayerInfo, pe: int) -> Resources:
    """Estimate of a max-pool handling ``pe`` channels per cycle (its row buffer in LUT-RAM
    and the comparators)."""
    c, h, w = info.in_shape
    _, _, ow = info.out_shape
    bits = info.in_dtype.bits
    mem = memory_resources(pe * bits, ow * c // pe, "distributed")
    return mem + Resources(lut=40 + 2 * pe * bits, ff=16 + pe * bits // 8)


def _pool_resources(stage: Stage, info: LayerInfo | None) -> Resources:
    assert info is not None
    return pool_resources(info, stage.in_elems)


def _topk_resources(stage: Stage, info: LayerInfo | None) -> Resources:
    assert info is not None
    k = info.layer.k
    idx = log2_ceil(info.in_shape[0] * info.in_shape[1] * info.in_shape[2])
    fold, bits = stage.in_elems, stage.in_bits
    return Resources(lut=30 + 2 * (fold + 1) * k * (bits + idx),
                     ff=30 + 2 * k * (bits + idx) + fold * bits)


def _fifo_resources(stage: Stage, info: LayerInfo | None) -> Resources:
    width, depth = stage.in_width, stage.depth
    ptr = log2_ceil(depth + 1)
    if depth <= 2:
        return Resources(lut=4 + width // 2, ff=2 * width + 4)
    mem = memory_resources(width, depth, stage.ram_style)
    return mem + Resources(lut=10 + 3 * ptr, ff=3 * ptr + 2)


def _dwc_stage(stage: Stage, info: LayerInfo | None) -> Resources:
    return _dwc_resources(stage.in_elems, stage.out_elems, stage.in_bits)


#: the estimate of each stage kind
_ESTIMATORS: dict[StageKind, Callable[[Stage, LayerInfo | None], Resources]] = {
    StageKind.MVTU: _mvtu_stage,
    StageKind.SWU: _swu_resources,
    StageKind.POOL: _pool_resources,
    StageKind.TOPK: _topk_resources,
    StageKind.FIFO: _fifo_resources,
    StageKind.DWC: _dwc_stage,
    StageKind.REPLAY: _replay_resources,
    StageKind.TRANSPOSE: _transpose_resources,
    StageKind.TRIM: lambda stage, info: Resources(lut=stage.out_width + 8, ff=8),
}


def stage_resources(stage: Stage, info: LayerInfo | None) -> Resources:
    """Estimate of one planned stage (``info``: its layer's, ``None`` for I/O stages)."""
    return _ESTIMATORS[StageKind(stage.kind)](stage, info)


@dataclass
class StageEstimate:
    """One stage's estimate."""

    stage: str
    kind: str
    layer: str | None
    res: Resources

    def to_dict(self) -> dict:
        return {"stage": self.stage, "kind": self.kind, "layer": self.layer,
                **self.res.to_dict()}


@dataclass
class Estimate:
    """The estimate of a whole design: per stage, per layer and in total."""

    stages: list[StageEstimate]
    total: Resources = field(default_factory=Resources)

    def by_layer(self) -> dict[str, Resources]:
        out: dict[str, Resources] = {}
        for s in self.stages:
            key = s.layer or "(io)"
            out[key] = out.get(key, Resources()) + s.res
        return out

    def to_dict(self) -> dict:
        return {"total": self.total.to_dict(),
                "layers": {k: v.to_dict() for k, v in self.by_layer().items()},
                "stages": [s.to_dict() for s in self.stages]}


def estimate_plan(plan: Plan) -> Estimate:
    """Estimate every stage of ``plan`` (plus the AXI adapters' output counter)."""
    infos = {i.name: i for i in plan.infos}
    stages = [StageEstimate(s.name, s.kind.value, s.layer,
                            engine_unit_resources(plan) if s.kind is StageKind.ENGINE
                            else stage_resources(s, infos.get(s.layer) if s.layer else None))
              for s in plan.stages]
    cnt = log2_ceil(plan.output.beats_per_frame + 1)
    stages.append(StageEstimate("axis", "axis", None, Resources(lut=cnt + 4, ff=cnt + 1)))
    if plan.uses_ddr:
        stages.append(StageEstimate("ddr", "ddr", None, ddr_path_resources(plan)))
    total = Resources()
    for s in stages:
        total += s.res
    return Estimate(stages, total)


def estimate_network(net: Network, clock_mhz: float = 100.0) -> Estimate:
    """Plan ``net`` and estimate it."""
    return estimate_plan(plan_network(net, clock_mhz))


def fit_check(res: Resources, device: Device = XC7Z020, shell: Resources = SHELL) -> dict:
    """Utilisation of ``res`` plus the shell on ``device``; ``fits`` when everything ≤ 100 %."""
    need = res + shell
    rows = {}
    for key in ("lut", "ff", "bram36", "dsp"):
        avail = getattr(device, key)
        used = getattr(need, key)
        rows[key] = {"design": getattr(res, key), "shell": getattr(shell, key),
                     "total": used, "available": avail,
                     "percent": round(100.0 * used / avail, 1)}
    return {"part": device.part, "fits": all(r["total"] <= r["available"] for r in rows.values()),
            "resources": rows}


# -- the architectures for networks larger than the chip (lowbit_hdl.ddrcost) -----------------

def placement_resources(info: LayerInfo, placement: str, ports: int = 1) -> Resources:
    """The MVTU of a Conv/FC layer at a placement (:data:`lowbit_hdl.cost.PLACEMENTS`),
    with what the placement adds in the hybrid design (the sliding window is counted apart),
    from the same estimators as :func:`estimate_plan` of a hybrid plan:

    * ``onchip``: :func:`mvtu_resources` as today;
    * ``stream``: the MVTU without weight memories, plus the layer's read master and width
      converter (:func:`region_path_resources`);
    * ``tiled``: the same, plus the weight-tile cache, the replay buffer (the whole input
      frame) and the transpose buffer (``P·NF`` words of ``PE·obits``).

    ``ports`` does not change a layer's own path: every DDR layer has one 64-bit master.
    """
    lay = info.layer
    if placement == "onchip":
        return mvtu_resources(info, lay.pe, lay.simd)
    if placement != ddr_placement(info):
        raise ValueError(f"layer {info.name}: placement {placement!r} must be 'onchip' or "
                         f"{ddr_placement(info)!r}")
    res = mvtu_resources(info, lay.pe, lay.simd, placement) + region_path_resources(
        lay.pe * lay.simd * lay.weight_dtype.bits, info.mw // lay.simd, placement)
    if placement == "tiled":
        c, h, w = info.in_shape
        nf = info.mh // lay.pe
        res += replay_resources(lay.simd * info.in_dtype.bits, h * w * c // lay.simd, nf)
        res += transpose_resources(lay.pe * info.out_dtype.bits, info.vectors * nf)
    return res


def hybrid_placements(net: Network, ports: int = 1, device: Device = XC7Z020,
                      shell: Resources = SHELL, given: dict[str, str] | None = None
                      ) -> dict[str, str]:
    """Placements by :func:`lowbit_hdl.cost.choose_placements` with this module's block-RAM
    estimate, the budget being the device's BRAM36 less the shell's."""
    plan = plan_network(net)
    infos = net.infer()
    by_name = {i.name: i for i in infos}
    fixed = sum(stage_resources(s, by_name.get(s.layer) if s.layer else None).bram36
                for s in plan.stages if s.kind != StageKind.MVTU)
    return choose_placements(infos, device.bram36 - shell.bram36,
                             lambda i, pl: placement_resources(i, pl, ports).bram36,
                             fixed, given)


def estimate_hybrid(net: Network, placements: dict[str, str], ports: int = 1) -> Estimate:
    """Estimate of the hybrid design with ``placements`` (``{layer: onchip|stream|tiled}``)
    over ``ports`` HP ports: :func:`estimate_plan` of its plan."""
    ddr = [n for n, p in placements.items() if p != "onchip"]
    return estimate_plan(plan_network(net, ddr_layers=ddr, hp_ports=ports))


def estimate_engine(net: Network, cfg: EngineConfig, ports: int = 1) -> Estimate:
    """Estimate of the one-engine architecture (:func:`lowbit_hdl.cost.engine_cost`) for
    ``net``'s layers: the low-bit and DSP lane arrays sized for the widest layer they run,
    threshold memories for the largest layer, the weight tile (double-buffered), the two
    activation buffers, a runtime-configured sliding window as large as the largest
    layer's, a max-pool and top-k on the output, three AXI masters (weights, activations
    in and out), the control and ``ports`` HP ports."""
    infos = net.infer()
    mvtu = [i for i in infos if i.is_mvtu]
    stages: list[StageEstimate] = []
    abits_max = 1
    for dsp in (False, True):
        group = [i for i in mvtu if engine_array(i) == ("dsp" if dsp else "lowbit")]
        if not group:
            continue
        pe, simd = engine_lanes(group[0], cfg)
        wb = max(i.layer.weight_dtype.bits for i in group)
        ab = max(i.in_dtype.bits for i in group)
        wbip = all(i.layer.weight_dtype.is_bipolar for i in group)
        abip = all(i.in_dtype.is_bipolar for i in group)
        acc = max(i.acc_bits for i in group)
        t = max(i.n_thresholds for i in group)
        dot, dsps = _dot_luts(simd, wb, ab, wbip, abip)
        thr_cmp = t * ceil_div(acc, 2) + (ab if t > 1 else 0)
        per_pe = Resources(lut=dot + acc + thr_cmp, ff=2 * acc + 8 + 4, dsp=dsps)
        res = Resources(lut=200, ff=200)  # runtime counters (NF, SF, vectors per layer)
        for _ in range(pe):
            res += per_pe
        if t:
            thr_words = max(-(-i.mh // pe) for i in group if i.n_thresholds)
            for _ in range(pe):
                res += memory_resources(t * acc, thr_words)
        res += memory_resources(simd * ab, 2 * max(-(-i.mw // simd) for i in group))
        stages.append(StageEstimate("dsp_array" if dsp else "lowbit_array", "mvtu", None, res))
        if not dsp:
            abits_max = ab
            wbeat = pe * simd * wb
            stages.append(StageEstimate("weight_tile", "memory", None, memory_resources(
                wbeat, ceil_div(2 * cfg.weight_buffer_bits, wbeat))))
            stages.append(StageEstimate("activations", "memory", None, memory_resources(
                simd * ab, 2 * ceil_div(cfg.act_buffer_bits, simd * ab))))
    convs = [i for i in mvtu if isinstance(i.layer, Conv)]
    if convs:
        bits = 0
        for i in convs:
            c, h, w = i.in_shape
            g = WindowGeometry(h, w, c, i.layer.kernel, i.layer.stride, i.layer.padding)
            bits = max(bits, window_rows(g) * w * c * i.in_dtype.bits)
        width = cfg.simd * abits_max
        swu = memory_resources(width, ceil_div(bits, width)) + Resources(lut=400, ff=300)
        stages.append(StageEstimate("window", "swu", None, swu))
        row = max(i.out_shape[0] * i.out_shape[2] for i in convs)
        pool = memory_resources(cfg.pe * abits_max, ceil_div(row, cfg.pe), "distributed")
        stages.append(StageEstimate("pool", "maxpool", None, pool + Resources(
            lut=40 + 2 * cfg.pe * abits_max, ff=16 + cfg.pe * abits_max)))
    top = [i for i in infos if isinstance(i.layer, TopK)]
    if top:
        i = top[0]
        k = i.layer.k
        idx = log2_ceil(i.in_shape[0] * i.in_shape[1] * i.in_shape[2])
        fold, bits = cfg.dsp_pe, i.in_dtype.bits
        stages.append(StageEstimate("topk", "topk", None, Resources(
            lut=30 + 2 * (fold + 1) * k * (bits + idx), ff=30 + 2 * k * (bits + idx))))
    ctl = CONTROL_BLOCK
    for _ in range(ports):
        ctl += HP_PORT
    for _ in range(3):  # weights, activations in; activations out taken as a read's size
        ctl += READ_MASTER
    stages.append(StageEstimate("ddr", "ddr", None, ctl))
    total = Resources()
    for st in stages:
        total += st.res
    return Estimate(stages, total)
