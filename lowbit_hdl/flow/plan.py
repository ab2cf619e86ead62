"""Pipeline plan: the chain of hardware stages a network elaborates to, with stream widths,
width converters, FIFO depths and the AXI-Stream layouts of the top level.

The plan is plain data (no Amaranth): the stitcher (:mod:`lowbit_hdl.flow.top`) instantiates
it, the resource estimate and the report read it, and the tests check its rules directly.

Stages (their kind a :class:`StageKind`), per layer in order:

* ``Conv``: sliding window (``swu``, SIMD channels of a pixel in, SIMD channels of the
  im2col vector out) → ``mvtu`` (SIMD in, PE out);
* ``FC``: ``mvtu``; ``MaxPool``: ``maxpool`` (PE in/out); ``TopK``: ``topk`` (fold in, one
  index out).

Between a producer emitting ``a`` elements per beat and a consumer taking ``b``, a width
converter ``dwc`` (``a → b``) is inserted when ``a ≠ b``; then a ``fifo`` in front of the
consumer sized by the FIFO depth rule (:func:`fifo_depth`). Cycles per frame of the layer
stages are those of :mod:`lowbit_hdl.cost`.

AXI-Stream widths. ``tdata`` widths are those the AXI DMA supports (8…1024 bits, powers of
two), so the DMA can be configured to match without a converter:

* input: ``E`` elements per beat, ``E`` dividing the frame elements, ``E·bits`` such a width
  (or, when no such ``E`` divides the frame, zero-padded up to one); preference (first that
  exists): ``E`` equal to the first stage's input fold when that is a legal width (no
  converter); the smallest ``E`` that is a multiple or divisor of that fold with at most
  half the bottleneck cycles of beats per frame (leaves room for DMA bubbles); the smallest
  ``E`` with at most the bottleneck cycles of beats; the widest ``E`` (the input then limits
  the frame rate, and the plan says so).
* output: the last stage's output beat, zero-padded to the next such width, one frame
  ending with ``tlast``; when that beat is wider than 1024 bits, a converter narrows it.

The FIFO depth rule and why the pipeline can neither deadlock nor stall are in
:func:`fifo_depth` and in ``docs/build.md``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import Enum

from ..cost import (
    EngineConfig,
    EngineSplit,
    WindowGeometry,
    ddr_placement,
    engine_fifo_words,
    engine_figures,
    engine_format,
    engine_infos,
    engine_map_load_cycles,
    engine_split,
    engine_stage_cycles,
    mvtu_cycles,
    network_cost,
    pool_cycles,
    replay_period,
    tiled_output_period,
    tiled_period,
    topk_cycles,
    transpose_period,
    window_cycles,
)
from ..ir import FC, Conv, LayerInfo, MaxPool, Network, TopK
from ..runtime.ddr import WORD_BITS
from ..runtime.ddrimage import DdrImageLayout, region_masters
from ..runtime.engine import engine_descriptors
from ..runtime.layout import DesignLayout, IpNames, StreamLayout

__all__ = [
    "DMA_WIDTHS",
    "StageKind",
    "Stage",
    "Plan",
    "plan_network",
    "fifo_depth",
    "fifo_ram_style",
    "choose_input_elems",
    "axi_width",
    "IP_NAMES",
]

DMA_WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024)
#: names of the block-design cells the Vivado flow creates: the runtime's
#: :class:`~lowbit_hdl.runtime.layout.IpNames` defaults (layout.json records them, the runtime
#: opens the DMA by its name)
IP_NAMES: dict[str, str] = asdict(IpNames())
#: FIFOs up to this many bits or words go to distributed RAM (LUT-RAM), others to block RAM
FIFO_DISTRIBUTED_MAX_BITS = 4096
FIFO_DISTRIBUTED_MAX_DEPTH = 64
#: FIFO depth floor: two entries decouple ready paths and let a stage run at one beat/cycle
FIFO_MIN_DEPTH = 2
#: the output FIFO holds one output frame (so the DMA's gaps between transfers do not stall
#: the last stage), but at most this many beats
OUTPUT_FIFO_MAX_DEPTH = 512


#: the feature-map buffer of a tiled convolution holds two frames: the next one is written
#: while this one is replayed (with one, a slow producer waits for the last replay)
TILED_FM_BUFFERS = 2
#: the output reorder buffer of a tiled convolution holds one frame (its period,
#: 2·P·NF − P − NF + 2 cycles, stays below the MVTU's NF·P·SF unless SF is 1)
TRANSPOSE_BUFFERS = 1
#: the weight-tile cache is double-buffered: the next tile loads while one is replayed
TILE_CACHE_BUFFERS = 2


class StageKind(str, Enum):
    """What a pipeline stage is; the value is the name written to ``report.json``.

    A ``str`` enum, so that a stage-kind → constructor map (``NetworkTop``'s ``library``) may
    be keyed by the member or by its name.
    """

    MVTU = "mvtu"
    SWU = "swu"
    POOL = "maxpool"
    TOPK = "topk"
    FIFO = "fifo"
    DWC = "dwc"
    REPLAY = "replay"
    TRANSPOSE = "transpose"
    ENGINE = "engine"
    TRIM = "trim"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Stage:
    """One hardware instance of the pipeline.

    ``in_elems``/``out_elems`` are elements per beat, ``in_bits``/``out_bits`` bits per
    element, ``in_beats``/``out_beats`` beats per frame, ``cycles`` cycles per frame of the
    stage on its own (steady state). FIFOs have ``depth``, ``ram_style`` and the ``rule``
    that set the depth.
    """

    name: str
    kind: StageKind
    layer: str | None
    in_elems: int
    in_bits: int
    out_elems: int
    out_bits: int
    in_beats: int
    out_beats: int
    cycles: int
    depth: int = 0
    ram_style: str = ""
    rule: str = ""
    placement: str = ""  # MVTU stages of the hybrid design: "stream" or "tiled"

    @property
    def in_width(self) -> int:
        return self.in_elems * self.in_bits

    @property
    def out_width(self) -> int:
        return self.out_elems * self.out_bits

    def to_dict(self) -> dict:
        return {**asdict(self), "kind": self.kind.value}


@dataclass
class Plan:
    """The stitched pipeline of a network (see the module docstring)."""

    network: Network
    infos: list[LayerInfo]
    stages: list[Stage]
    input: StreamLayout
    output: StreamLayout
    clock_mhz: float
    layer_cycles: int  # bottleneck of the layers (lowbit_hdl.cost)
    notes: list[str] = field(default_factory=list)
    #: hybrid designs: the DDR regions of the layers whose weights are read from DDR
    ddr: DdrImageLayout | None = None
    #: engine designs: the engine's configuration and the network's cut
    engine: EngineConfig | None = None
    split: EngineSplit | None = None
    #: engine designs: the engine's layers as its stage counts them
    #: (:func:`lowbit_hdl.cost.engine_figures`, the first layer overlapping the load)
    engine_layers: list[dict] = field(default_factory=list)
    #: engine designs: one frame through the engine stage, front included (its ``cycles`` is
    #: the period when frames follow each other)
    engine_latency: int = 0

    @property
    def arch(self) -> str:
        """``dataflow`` (every weight on chip), ``hybrid`` (some read from DDR) or
        ``engine`` (the middle layers on one runtime-configured engine)."""
        if self.engine is not None:
            return "engine"
        return "hybrid" if self.ddr is not None and self.ddr.regions else "dataflow"

    @property
    def io_cycles(self) -> int:
        """Beats per frame through the AXI-Stream ports (one beat per cycle at best)."""
        return max(self.input.beats_per_frame, self.output.beats_per_frame)

    @property
    def engine_format(self):
        """Engine designs: the datapath's :class:`~lowbit_hdl.runtime.engine.EngineFormat`,
        as the DDR layout records it (``None`` for other designs)."""
        if self.engine is None:
            return None
        from ..runtime.engine import EngineFormat

        return EngineFormat.from_json(self.ddr.engine.format)

    @property
    def uses_ddr(self) -> bool:
        """The design reads from DDR (hybrid and engine designs): it has AXI4 read masters
        and the AXI4-Lite control block."""
        return self.arch != "dataflow" and self.ddr is not None

    @property
    def ddr_port_cycles(self) -> int:
        """Designs reading DDR: the busiest Zynq HP port's 64-bit words per frame (the read
        masters sharing a port share its one word per cycle); 0 for dataflow designs."""
        if not self.uses_ddr:
            return 0
        per_port = [0] * self.ddr.hp_ports
        for r in self.ddr.regions:
            per_port[r.hp] += r.words // r.masters
        for r in self.ddr.regions:
            for hp in r.hps[1:]:
                per_port[hp] += r.words // r.masters
        e = self.ddr.engine
        if e is not None:
            for hp, words in zip(e.hps, e.master_words(), strict=True):
                per_port[hp] += words
        return max(per_port)

    @property
    def cycles_per_frame(self) -> int:
        """Steady-state cycles per frame of the whole design: its slowest stage (or, in a
        hybrid design, its busiest DDR port)."""
        return max([self.layer_cycles, self.io_cycles, self.ddr_port_cycles]
                   + [s.cycles for s in self.stages])

    @property
    def fps(self) -> float:
        return self.clock_mhz * 1e6 / self.cycles_per_frame

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def of_kind(self, kind: StageKind) -> list[Stage]:
        return [s for s in self.stages if s.kind is StageKind(kind)]

    def layout(self) -> DesignLayout:
        """The :class:`DesignLayout` the build writes to ``layout.json``."""
        labels = tuple(self.network.labels) if self.network.labels else None
        return DesignLayout(self.network.name, self.input, self.output, self.clock_mhz,
                            self.cycles_per_frame, labels, self.output_kind,
                            IpNames(**IP_NAMES), self.ddr if self.uses_ddr else None,
                            getattr(self.network, "task", None))

    @property
    def output_kind(self) -> str:
        """``indices`` after a TopK, ``scores`` for a 1×1 output, else ``raw``."""
        if isinstance(self.infos[-1].layer, TopK):
            return "indices"
        _, h, w = self.output.shape
        return "scores" if h == w == 1 else "raw"

    def to_dict(self) -> dict:
        return {
            "input": {**asdict(self.input), "shape": list(self.input.shape),
                      "beats_per_frame": self.input.beats_per_frame},
            "output": {**asdict(self.output), "shape": list(self.output.shape),
                       "beats_per_frame": self.output.beats_per_frame},
            "cycles_per_frame": self.cycles_per_frame,
            "layer_cycles": self.layer_cycles,
            "stages": [s.to_dict() for s in self.stages],
            "notes": list(self.notes),
            "arch": self.arch,
            **({"ddr": self.ddr.to_json()} if self.uses_ddr else {}),
            **({"engine": {"config": asdict(self.engine), "act": self.split.act.name,
                           "front": [i.name for i in self.split.front],
                           "layers": self.split.names,
                           "tail": [i.name for i in self.split.tail]}}
               if self.engine is not None else {}),
        }


def axi_width(bits: int) -> int:
    """Smallest DMA-compatible ``tdata`` width holding ``bits`` (≤ 1024, else ValueError)."""
    for w in DMA_WIDTHS:
        if w >= bits:
            return w
    raise ValueError(f"{bits} bits exceed the widest AXI-Stream beat the DMA takes (1024)")


def choose_input_elems(frame_elems: int, bits: int, first_fold: int, bottleneck: int
                       ) -> tuple[int, str]:
    """Elements per input beat (see the module docstring) and a note when input-bound.

    Widths that the elements fill exactly are preferred; when none divides the frame (e.g.
    324 one-bit elements), beats are zero-padded up to the next DMA width.
    """
    exact = [w // bits for w in DMA_WIDTHS if w % bits == 0 and frame_elems % (w // bits) == 0]
    padded = [e for e in range(1, DMA_WIDTHS[-1] // bits + 1)
              if frame_elems % e == 0 and e not in exact]
    if not exact and not padded:
        raise ValueError(f"no AXI-Stream beat of at most {DMA_WIDTHS[-1]} bits holds a whole "
                         f"number of the {frame_elems} {bits}-bit elements of a frame")

    def beats(e: int) -> int:
        return frame_elems // e

    if first_fold in exact and beats(first_fold) <= bottleneck:
        return first_fold, ""
    for pool in (exact, padded):  # padded beats only when no exact width keeps up
        for e in pool:
            if (e % first_fold == 0 or first_fold % e == 0) and 2 * beats(e) <= bottleneck:
                return e, ""
        for e in pool:
            if beats(e) <= bottleneck:
                return e, ""
    e = max(exact + padded)
    return e, (f"input-bound: {beats(e)} input beats per frame exceed the "
               f"{bottleneck} cycles of the slowest layer")


def fifo_ram_style(width: int, depth: int) -> str:
    """``distributed`` (LUT-RAM) for shallow (≤ 64 words) or small (≤ 4 Kbit) FIFOs, where a
    few LUTs per bit beat block RAM halves that would mostly sit empty; ``block`` otherwise."""
    small = depth <= FIFO_DISTRIBUTED_MAX_DEPTH or width * depth <= FIFO_DISTRIBUTED_MAX_BITS
    return "distributed" if small else "block"


def fifo_depth(info: LayerInfo | None, consumer: StageKind, beats_in: int) -> tuple[int, str]:
    """FIFO depth (in consumer beats) in front of ``consumer`` and the rule that set it.

    Rule (the pipeline is a single chain of ready/valid stages, so it cannot deadlock; the
    FIFOs are there so that no stage's burstiness stalls the bottleneck):

    * before an FC ``mvtu``: one input vector, ``SF`` beats. The MVTU reads its whole input
      vector in its first neuron fold and then computes ``NF - 1`` more folds on it, so the
      producer can write the next vector meanwhile instead of waiting.
    * before a ``swu``: two input rows, ``2·W·C/SIMD`` beats. The sliding window stops
      reading while it emits windows that need no new input (padding rows, the end of the
      frame); two rows cover that gap at the producer's rate, whose output of one row takes
      at least as long as the window's emission of one output row.
    * before ``maxpool`` and ``topk``: they take one beat per cycle whenever their output is
      free, so two entries suffice. A padded max-pool that generates padded positions
      (:func:`lowbit_hdl.cost.pool_extra`) pauses its input for them, ``E_w·C/PE`` cycles
      after each row and ``E_h·(W + E_w)·C/PE`` after the frame; a producer that is the
      bottleneck loses at most those cycles per frame (Tiny-YOLO's sixth pool: 864 of the
      1.56 M cycles of its bottleneck), not worth a FIFO of a frame's pause.
    """
    if consumer is StageKind.MVTU and info is not None and isinstance(info.layer, FC):
        sf = info.mw // info.layer.simd
        return max(FIFO_MIN_DEPTH, sf), f"one input vector (SF={sf} beats)"
    if consumer is StageKind.SWU and info is not None:
        c, h, w = info.in_shape
        row = w * c // info.layer.simd
        return max(FIFO_MIN_DEPTH, 2 * row), f"two input rows (2·{w}·{c}/SIMD={row * 2} beats)"
    return FIFO_MIN_DEPTH, "streaming consumer (2 beats)"


#: the deepest FIFO before an engine that :func:`_engine_fifo` chooses (LUT-RAM)
ENGINE_FIFO_MAX_DEPTH = 64


def _engine_fifo(fifo: Stage, period: Callable[[int], int], front: int) -> Stage:
    """The FIFO before an engine, deepened (up to :data:`ENGINE_FIFO_MAX_DEPTH` beats) when
    that lets a front of ``front`` cycles per frame keep its pace: while the engine finishes
    a frame the front writes the next map's first beats into it, and the loader takes them
    at once when it opens (``period(depth)``: the engine's cycles per frame with that FIFO).
    An engine slower than its front keeps the FIFO as it is."""
    if fifo.rule == "override" or period(fifo.depth) <= front:
        return fifo
    hi = max(fifo.depth, ENGINE_FIFO_MAX_DEPTH)
    if period(hi) > front:
        return fifo
    lo = fifo.depth  # period(lo) > front >= period(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if period(mid) <= front:
            hi = mid
        else:
            lo = mid
    return dataclasses.replace(
        fifo, depth=hi, ram_style=fifo_ram_style(fifo.in_elems * fifo.in_bits, hi),
        rule=f"the front's next map while the engine ends a frame ({hi} beats)")


def _frame_elems(shape: tuple[int, int, int]) -> int:
    c, h, w = shape
    return c * h * w


def plan_network(net: Network, clock_mhz: float = 100.0, input_elems: int | None = None,
                 fifo_depths: dict[str, int] | None = None,
                 ddr_layers: list[str] | tuple[str, ...] = (), hp_ports: int = 1,
                 engine: EngineConfig | None = None, stream_ports: int = 1) -> Plan:
    """Plan the stitched pipeline of ``net`` (validated with :meth:`Network.infer`).

    ``input_elems`` overrides the elements per input beat; ``fifo_depths`` overrides the
    depth rule for FIFOs by stage name (e.g. ``{"fc1_mvtu_fifo": 2}``; for experiments and
    tests — unknown names raise ``KeyError``).

    ``ddr_layers`` names the Conv/FC layers whose weights are read from DDR (a hybrid
    design, :func:`lowbit_hdl.cost.ddr_placement`), over ``hp_ports`` Zynq HP ports:

    * an FC layer (``stream``) is one MVTU stage whose weight port is fed by its own read
      masters (:func:`~lowbit_hdl.runtime.ddrimage.region_masters` of ``stream_ports``: up
      to that many, their words merged); its cycles are unchanged while DDR keeps up;
    * a convolution (``tiled``) becomes ``replay`` (the input frame, replayed ``NF`` times)
      → ``swu`` (``NF`` frames) → ``mvtu`` (tile order) → ``transpose`` (back to pixel-major
      order); its weight tiles come from its read master through a tile cache.

    ``engine`` (an :class:`~lowbit_hdl.cost.EngineConfig`) makes an engine design: the
    network is cut by :func:`lowbit_hdl.cost.engine_split`; the front layers are planned as
    above, the engine layers become one ``engine`` stage (its loader takes the front's
    stream into activation buffer 0, its raw or drain stream feeds the tail; cycles
    :func:`lowbit_hdl.cost.engine_stage_cycles`), then the tail layers (``ddr_layers`` may
    name tail layers only). Its read master fetches the engine image (descriptors, weights,
    thresholds) from DDR.
    """
    overrides = dict(fifo_depths or {})
    infos = net.infer()
    by_name = {i.name: i for i in infos}
    for name in ddr_layers:
        if name not in by_name or not by_name[name].is_mvtu:
            raise ValueError(f"ddr_layers: {name!r} is not a Conv or FC layer of {net.name}")
    ddr_set = set(ddr_layers)
    split = engine_split(infos, engine.simd, engine.act_buffer_bits) if engine else None
    skip = set(split.names) if split else set()
    if split and ddr_set & (skip | {i.name for i in split.front}):
        raise ValueError(f"ddr_layers: {sorted(ddr_set & (skip | {i.name for i in split.front}))}"
                         " run on the engine or in its front (only tail layers may read weights "
                         "from DDR)")
    ddr_regions: list[tuple[str, str, int, int, int, int, str]] = []
    cost = network_cost(net, clock_mhz)
    bottleneck = cost.cycles_per_frame
    stages: list[Stage] = []
    notes: list[str] = []

    in_bits = net.input_dtype.bits
    frame = _frame_elems(net.input_shape)
    first = infos[0]
    notes_in = ""
    if input_elems is None:
        input_elems, notes_in = choose_input_elems(frame, in_bits, first.in_fold, bottleneck)
    elif frame % input_elems or input_elems * in_bits > DMA_WIDTHS[-1]:
        raise ValueError(f"input_elems={input_elems}: must divide the {frame} input elements "
                         f"and fit a {DMA_WIDTHS[-1]}-bit beat")
    if notes_in:
        notes.append(notes_in)
    in_layout = StreamLayout(net.input_shape, net.input_dtype.name, input_elems,
                             axi_width(input_elems * in_bits))

    cur_elems, cur_bits, cur_frame = input_elems, in_bits, frame
    # how long one frame's beats take to arrive at the current point of the chain (a tiled
    # layer's replay buffer depends on it): the AXI input's beats, then the slowest stage
    # so far, except behind a tiled layer, whose transpose buffer emits a frame during its
    # last tile
    spread = in_layout.beats_per_frame
    engine_rows: list[dict] = []
    engine_latency = 0
    descs: list[dict] = []
    if split:  # the engine layers' descriptors, compiled once
        descs = engine_descriptors(engine_infos(split), engine_format(split, engine))

    def link(name: str, info: LayerInfo, consumer: StageKind, need: int) -> None:
        """Converter (if widths differ) and FIFO in front of a consumer taking ``need``."""
        nonlocal cur_elems
        if cur_elems != need:
            beats_in, beats_out = cur_frame // cur_elems, cur_frame // need
            stages.append(Stage(f"{name}_dwc", StageKind.DWC, info.name, cur_elems, cur_bits,
                                need, cur_bits, beats_in, beats_out, max(beats_in, beats_out)))
            cur_elems = need
        beats = cur_frame // need
        depth, rule = fifo_depth(info, consumer, beats)
        if f"{name}_fifo" in overrides:
            depth, rule = overrides.pop(f"{name}_fifo"), "override"
        width = need * cur_bits
        stages.append(Stage(f"{name}_fifo", StageKind.FIFO, info.name, need, cur_bits, need,
                            cur_bits, beats, beats, beats, depth, fifo_ram_style(width, depth),
                            rule))

    for info in infos:
        lay = info.layer
        if info.name in skip:
            if info.name != split.engine[0][0].name:
                continue
            # the engine: loader (front stream → buffer 0), layers, raw/drain stream out
            link("engine", info, StageKind.ENGINE, _loader_elems(info, cur_elems, engine.simd))
            engine_rows = engine_figures(
                split, engine, engine_map_load_cycles(split, engine, cur_elems, spread), descs)
            engine_latency = engine_stage_cycles(split, engine, cur_elems, spread, engine_rows)

            @functools.cache  # the FIFO search and the stage ask for the same depths
            def period(depth: int, elems: int = cur_elems, front: int = spread) -> int:
                head = engine_fifo_words(split, engine, elems, depth)
                return engine_stage_cycles(split, engine, elems, front, head=head, descs=descs)

            stages[-1] = _engine_fifo(stages[-1], period, spread)
            last, pool = split.engine[-1]
            out_info = pool or last
            out_elems, out_bits = _engine_out(split, engine)
            frame_out = _frame_elems(out_info.out_shape)
            stages.append(Stage("engine", StageKind.ENGINE, info.name, cur_elems, cur_bits,
                                out_elems, out_bits, cur_frame // cur_elems,
                                -(-frame_out // out_elems),
                                period(stages[-1].depth)))
            if split.raw and out_info.mh % out_elems:  # drop the padded neurons' lanes
                keep = math.gcd(out_info.mh, out_elems)
                stages.append(Stage("engine_trim", StageKind.TRIM, out_info.name, out_elems,
                                    out_bits, keep, out_bits, -(-out_info.mh // out_elems),
                                    out_info.mh // keep, out_info.mh // keep))
                out_elems = keep
            cur_elems, cur_bits, cur_frame = out_elems, out_bits, frame_out
            spread = max(spread, stages[-1].cycles)
            continue
        c, h, w = info.in_shape
        oc, oh, ow = info.out_shape
        ib, ob = info.in_dtype.bits, info.out_dtype.bits
        assert ib == cur_bits, (info.name, ib, cur_bits)
        placement = ddr_placement(info) if lay.name in ddr_set else ""
        # a DDR layer is also bound by its read masters: one 64-bit word per cycle each
        ddr_words = 0
        if placement:
            masters = region_masters(lay.pe * lay.simd * lay.weight_dtype.bits, stream_ports)
            ddr_words = -(-(info.mh * info.mw * lay.weight_dtype.bits) // (WORD_BITS * masters))
        if placement:
            ddr_regions.append((lay.name, placement, info.mh, info.mw, lay.pe, lay.simd,
                                lay.weight_dtype.name))
        if placement == "tiled":
            nf = info.mh // lay.pe
            link(f"{lay.name}_fm", info, StageKind.REPLAY, lay.simd)
            win = WindowGeometry(h, w, c // lay.simd, lay.kernel, lay.stride, lay.padding)
            stages.append(Stage(f"{lay.name}_fm", StageKind.REPLAY, lay.name, lay.simd, ib,
                                lay.simd, ib, win.in_beats, win.in_beats * nf,
                                max(replay_period(win.in_beats, nf, TILED_FM_BUFFERS),
                                    tiled_period(nf, window_cycles(win), spread,
                                                 TILED_FM_BUFFERS))))
            stages.append(Stage(f"{lay.name}_swu", StageKind.SWU, lay.name, lay.simd, ib,
                                lay.simd, ib, win.in_beats * nf, win.out_beats * nf,
                                window_cycles(win) * nf))
            stages.append(Stage(f"{lay.name}_mvtu", StageKind.MVTU, lay.name, lay.simd, ib,
                                lay.pe, ob, win.out_beats * nf, nf * info.vectors,
                                max(ddr_words, mvtu_cycles(info.mh, info.mw, lay.pe, lay.simd,
                                                           info.vectors)),
                                placement=placement))
            stages.append(Stage(f"{lay.name}_tr", StageKind.TRANSPOSE, lay.name, lay.pe, ob,
                                lay.pe, ob, nf * info.vectors, nf * info.vectors,
                                max(transpose_period(info.vectors, nf, TRANSPOSE_BUFFERS),
                                    tiled_output_period(nf, window_cycles(win),
                                                        nf * info.vectors,
                                                        TRANSPOSE_BUFFERS))))
            cur_elems = lay.pe
            spread = max(window_cycles(win), nf * info.vectors)  # the last tile, its readout
        elif isinstance(lay, Conv):
            link(f"{lay.name}_swu", info, StageKind.SWU, lay.simd)
            win = WindowGeometry(h, w, c // lay.simd, lay.kernel, lay.stride, lay.padding)
            stages.append(Stage(f"{lay.name}_swu", StageKind.SWU, lay.name, lay.simd, ib,
                                lay.simd, ib, win.in_beats, win.out_beats, window_cycles(win)))
            nf = info.mh // lay.pe
            stages.append(Stage(f"{lay.name}_mvtu", StageKind.MVTU, lay.name, lay.simd, ib,
                                lay.pe, ob, win.out_beats, nf * info.vectors,
                                mvtu_cycles(info.mh, info.mw, lay.pe, lay.simd, info.vectors)))
            cur_elems = lay.pe
        elif isinstance(lay, FC):
            link(f"{lay.name}_mvtu", info, StageKind.MVTU, lay.simd)
            nf, sf = info.mh // lay.pe, info.mw // lay.simd
            stages.append(Stage(f"{lay.name}_mvtu", StageKind.MVTU, lay.name, lay.simd, ib,
                                lay.pe, ob, sf, nf,
                                max(ddr_words, mvtu_cycles(info.mh, info.mw, lay.pe, lay.simd)),
                                placement=placement))
            cur_elems = lay.pe
        elif isinstance(lay, MaxPool):
            pe = info.in_fold
            link(f"{lay.name}_pool", info, StageKind.POOL, pe)
            stages.append(Stage(f"{lay.name}_pool", StageKind.POOL, lay.name, pe, ib, pe, ob,
                                h * w * c // pe, oh * ow * oc // pe,
                                pool_cycles(info.in_shape, pe, lay.kernel, lay.stride,
                                            info.pads)))
            cur_elems = pe
        elif isinstance(lay, TopK):
            fold = info.in_fold
            link(f"{lay.name}_topk", info, StageKind.TOPK, fold)
            n = c * h * w
            stages.append(Stage(f"{lay.name}_topk", StageKind.TOPK, lay.name, fold, ib, 1, ob,
                                n // fold, lay.k, topk_cycles(n, fold, lay.k)))
            cur_elems = 1
        else:  # pragma: no cover - infer() rejects unknown layers
            raise TypeError(type(lay))
        cur_bits = ob
        cur_frame = _frame_elems(info.out_shape)
        if placement != "tiled":
            spread = max([spread] + [st.cycles for st in stages if st.layer == lay.name])

    last = infos[-1]
    out_bits = last.out_dtype.bits
    if cur_elems * out_bits > DMA_WIDTHS[-1]:
        narrow = max(e for e in range(1, cur_elems + 1)
                     if cur_frame % e == 0 and e * out_bits <= DMA_WIDTHS[-1])
        beats_in, beats_out = cur_frame // cur_elems, cur_frame // narrow
        stages.append(Stage("output_dwc", StageKind.DWC, None, cur_elems, out_bits, narrow,
                            out_bits, beats_in, beats_out, max(beats_in, beats_out)))
        cur_elems = narrow
    beats = cur_frame // cur_elems
    depth = max(FIFO_MIN_DEPTH, min(beats, OUTPUT_FIFO_MAX_DEPTH))
    rule = f"one output frame, at most {OUTPUT_FIFO_MAX_DEPTH} beats"
    if "output_fifo" in overrides:
        depth, rule = overrides.pop("output_fifo"), "override"
    stages.append(Stage("output_fifo", StageKind.FIFO, None, cur_elems, out_bits, cur_elems,
                        out_bits, beats, beats, beats, depth,
                        fifo_ram_style(cur_elems * out_bits, depth), rule))
    if overrides:
        raise KeyError(f"fifo_depths: no FIFO stages named {sorted(overrides)}")
    out_layout = StreamLayout(last.out_shape, last.out_dtype.name, cur_elems,
                              axi_width(cur_elems * out_bits))
    ddr = DdrImageLayout.plan(ddr_regions, hp_ports, stream_ports=stream_ports) \
        if ddr_set else None
    if split:
        from ..runtime.engine import engine_image_bytes

        fmt = engine_format(split, engine)
        size, read = engine_image_bytes(descs)
        ddr = DdrImageLayout.plan(ddr_regions, hp_ports, stream_ports=stream_ports, engine={
            "nbytes": size, "read_bytes": read, "format": fmt.to_json(),
            "layers": [{"name": c.name, "descriptor": d}
                       for (c, _), d in zip(split.engine, descs, strict=True)]})
        bottleneck = max(s.cycles for s in stages)
    plan = Plan(net, infos, stages, in_layout, out_layout, clock_mhz, bottleneck, notes, ddr,
                engine, split, engine_rows, engine_latency)
    if out_layout.beats_per_frame > bottleneck:
        notes.append(f"output-bound: {out_layout.beats_per_frame} output beats per frame exceed "
                     f"the {bottleneck} cycles of the slowest layer")
    slow = [s.name for s in stages if s.cycles > bottleneck]
    if slow:
        notes.append(f"stages slower than the slowest layer: {', '.join(slow)}")
    return plan


def _loader_elems(info: LayerInfo, cur: int, simd: int) -> int:
    """Elements per beat the engine's loader takes: the front's beat when it divides the
    channels (a pixel is whole beats) and divides or is a multiple of ``simd`` (a beat is
    whole buffer words or part of one), else the largest divisor of all three."""
    c = info.in_shape[0]
    if c % cur == 0 and (simd % cur == 0 or cur % simd == 0):
        return cur
    return math.gcd(math.gcd(c, cur), simd)


def _engine_out(split: EngineSplit, cfg: EngineConfig) -> tuple[int, int]:
    """(elements, bits) of an engine stage's output beat: the raw stream's ``PE`` signed
    accumulators, or the drain's ``SIMD`` activations."""
    last = split.engine[-1][0]
    if split.raw:
        return cfg.pe, last.out_dtype.bits
    return cfg.simd, split.act.bits


def ceil_div(a: int, b: int) -> int:
    """Integer ceiling of ``a / b``."""
    return -(-a // b)


def log2_ceil(n: int) -> int:
    """Bits to index ``n`` items (at least 1)."""
    return max(1, math.ceil(math.log2(max(2, n))))
