"""Stitching: a network's pipeline plan elaborated to one Amaranth top-level Component with
AXI-Stream ports.

Ports (Verilog names in brackets): ``s_axis`` slave [``s_axis__tdata``, ``s_axis__tvalid``,
``s_axis__tready``, ``s_axis__tlast``], ``m_axis`` master [``m_axis__…``], plus ``clk`` and
``rst`` (synchronous, active high). ``tdata`` widths and the element packing are those of the
plan's :class:`~lowbit_hdl.runtime.layout.StreamLayout` s (written to ``layout.json``).

* Input: the low ``elems·bits`` bits of ``s_axis__tdata`` are the beat's elements; padding
  bits and ``s_axis__tlast`` are ignored (frames are counted, not marked: any tlast pattern,
  e.g. one per DMA transfer, is accepted).
* Output: ``m_axis__tdata`` carries the elements in its low bits, zero-padded;
  ``m_axis__tlast`` is high on the last beat of every output frame.

Inside, the stages of :func:`lowbit_hdl.flow.plan.plan_network` are instantiated from
:mod:`lowbit_hdl.hw` and chained output to input with ready/valid streams.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from amaranth import Cat, Module, Signal, Value, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..ir import LayerInfo, Network
from ..runtime.ddr import WORD_BITS
from .plan import (
    TILE_CACHE_BUFFERS,
    TILED_FM_BUFFERS,
    TRANSPOSE_BUFFERS,
    Plan,
    Stage,
    StageKind,
    plan_network,
)

__all__ = [
    "axis_signature",
    "NetworkTop",
    "StitchError",
    "default_library",
    "elaborate_verilog",
    "TOP_NAME",
]

#: Verilog module name of the generated top level (the Vivado wrapper instantiates it)
TOP_NAME = "lowbit_top"
#: address bits of the hybrid design's AXI4-Lite control port (a 4 KiB window)
CONTROL_ADDR_BITS = 12

Factory = Callable[[Stage, LayerInfo | None], Any]


class StitchError(RuntimeError):
    """A hardware module does not match the stage the plan needs (ports, widths)."""


def axis_signature(width: int) -> wiring.Signature:
    """AXI-Stream, master view: ``tdata``, ``tvalid``, ``tlast`` out, ``tready`` in."""
    return wiring.Signature({
        "tdata": Out(width),
        "tvalid": Out(1),
        "tready": In(1),
        "tlast": Out(1),
    })


def default_library() -> dict[StageKind, Factory]:
    """Stage kind → constructor, from the modules of :mod:`lowbit_hdl.hw`.

    Imported on first use so that planning and reporting work without them.
    """

    def mvtu(stage: Stage, info: LayerInfo | None):
        from ..hw.mvtu import MVTU

        if stage.placement:  # hybrid: weights from DDR through the `w` port
            order = "tile" if stage.placement == "tiled" else "pixel"
            return MVTU.from_layer(info, weight_source="stream", order=order,
                                  tile_vectors=info.vectors if order == "tile" else None)
        return MVTU.from_layer(info)

    def swu(stage: Stage, info: LayerInfo | None):
        from ..hw.swu import SlidingWindow

        # a layer's ram_style is its weight memories' (docs/hardware.md): the window buffer
        # is a RAM and keeps the tool's choice (flow.resources.window_resources counts so)
        return SlidingWindow.from_layer(dataclasses.replace(
            info, layer=dataclasses.replace(info.layer, ram_style="auto")))

    def maxpool(stage: Stage, info: LayerInfo | None):
        from ..hw.maxpool import MaxPoolUnit

        return MaxPoolUnit.from_layer(info)

    def topk(stage: Stage, info: LayerInfo | None):
        from ..hw.topk import TopKUnit

        return TopKUnit.from_layer(info)

    def fifo(stage: Stage, info: LayerInfo | None):
        from ..hw.fifo import StreamFIFO

        return StreamFIFO(stage.in_width, stage.depth, stage.ram_style)

    def dwc(stage: Stage, info: LayerInfo | None):
        from ..hw.dwc import WidthConverter

        return WidthConverter(stage.in_bits, stage.in_elems, stage.out_elems)

    def replay(stage: Stage, info: LayerInfo | None):
        from ..hw.replay import ReplayBuffer

        return ReplayBuffer(unsigned(stage.in_width), block=stage.in_beats,
                            repeats=stage.out_beats // stage.in_beats, buffers=TILED_FM_BUFFERS)

    def transpose(stage: Stage, info: LayerInfo | None):
        from ..hw.transpose import TransposeBuffer

        return TransposeBuffer(unsigned(stage.in_width), rows=info.vectors,
                               cols=info.mh // info.layer.pe, buffers=TRANSPOSE_BUFFERS)

    def engine(stage: Stage, info: LayerInfo | None, plan: Plan):
        from ..hw.engine.unit import EngineUnit

        return EngineUnit.from_plan(plan)

    def trim(stage: Stage, info: LayerInfo | None):
        from ..hw.engine.trim import LaneTrim

        return LaneTrim(stage.in_bits, stage.in_elems, stage.out_elems, info.mh)

    return {StageKind.MVTU: mvtu, StageKind.SWU: swu, StageKind.POOL: maxpool,
            StageKind.TOPK: topk, StageKind.FIFO: fifo, StageKind.DWC: dwc,
            StageKind.REPLAY: replay, StageKind.TRANSPOSE: transpose,
            StageKind.ENGINE: engine, StageKind.TRIM: trim}


def _port(mod: Any, name: str, stage: Stage) -> Any:
    port = getattr(mod, name, None)
    if port is None or not all(hasattr(port, f) for f in ("payload", "valid", "ready")):
        raise StitchError(f"stage {stage.name}: {type(mod).__name__} has no stream port "
                          f"`{name}` (payload/valid/ready) as docs/architecture.md requires")
    return port


class NetworkTop(wiring.Component):
    """The whole dataflow accelerator of a network, with AXI-Stream ports.

    ``plan`` defaults to :func:`plan_network` of ``net``; ``library`` maps stage kinds
    (:class:`~lowbit_hdl.flow.plan.StageKind`, or their names such as ``"fifo"``) to
    constructors (default: :func:`default_library`). Parameters (weights, thresholds) must be
    attached to ``net``.
    """

    def __init__(self, net: Network, plan: Plan | None = None, clock_mhz: float = 100.0,
                 library: Mapping[StageKind | str, Factory] | None = None) -> None:
        self.net = net
        self.plan = plan if plan is not None else plan_network(net, clock_mhz)
        lib = default_library() if library is None else library
        self.library = {StageKind(kind): make for kind, make in lib.items()}
        self.net.infer(check_params=True)
        members = {
            "s_axis": In(axis_signature(self.plan.input.tdata_bits)),
            "m_axis": Out(axis_signature(self.plan.output.tdata_bits)),
        }
        if self.plan.uses_ddr:
            from ..hw.axi import axi4_read_signature, axi4lite_signature

            members["s_axil"] = In(axi4lite_signature(CONTROL_ADDR_BITS, 32))
            ports = [r.port + j for r in self.plan.ddr.regions for j in range(r.masters)]
            e = self.plan.ddr.engine
            if e is not None:
                ports.extend(range(e.port, e.port + e.masters))
            for k in ports:
                members[f"m_axi{k}"] = Out(axi4_read_signature(32, WORD_BITS))
        super().__init__(members)

    def build_stages(self) -> list[tuple[Stage, Any]]:
        """Instantiate every stage and check its port widths against the plan."""
        infos = {i.name: i for i in self.plan.infos}
        out = []
        for st in self.plan.stages:
            make = self.library.get(st.kind)
            if make is None:
                raise StitchError(f"stage {st.name}: no module for kind {st.kind.value!r}")
            info = infos.get(st.layer) if st.layer else None
            # the engine stage is built from the whole plan (its layers, cut, DDR region)
            mod = make(st, info, self.plan) if st.kind is StageKind.ENGINE else make(st, info)
            i, o = _port(mod, "i", st), _port(mod, "o", st)
            wi, wo = len(Value.cast(i.payload)), len(Value.cast(o.payload))
            if wi != st.in_width or wo != st.out_width:
                raise StitchError(
                    f"stage {st.name}: {type(mod).__name__} has {wi}-bit input and "
                    f"{wo}-bit output payloads, the plan needs {st.in_width} "
                    f"({st.in_elems}×{st.in_bits}) and {st.out_width} "
                    f"({st.out_elems}×{st.out_bits})")
            out.append((st, mod))
        return out

    def elaborate(self, platform) -> Module:
        m = Module()
        plan = self.plan
        stages = self.build_stages()
        for st, mod in stages:
            m.submodules[st.name] = mod

        # AXI-Stream input → first stage
        first = stages[0][1].i
        m.d.comb += [
            Value.cast(first.payload).eq(self.s_axis.tdata[:plan.input.elems_per_beat
                                               * plan.input.elem_bits]),
            first.valid.eq(self.s_axis.tvalid),
            self.s_axis.tready.eq(first.ready),
        ]
        # stage to stage
        for (_, a), (_, b) in zip(stages, stages[1:], strict=False):
            m.d.comb += [Value.cast(b.i.payload).eq(Value.cast(a.o.payload)),
                         b.i.valid.eq(a.o.valid), a.o.ready.eq(b.i.ready)]
        # last stage → AXI-Stream output, tlast from a beat counter
        last = stages[-1][1].o
        beats = plan.output.beats_per_frame
        count = Signal(range(max(2, beats)), name="out_beat")
        is_last = Signal(name="out_last")
        m.d.comb += [
            self.m_axis.tdata.eq(Value.cast(last.payload)),
            self.m_axis.tvalid.eq(last.valid),
            last.ready.eq(self.m_axis.tready),
            is_last.eq(count == beats - 1),
            self.m_axis.tlast.eq(is_last),
        ]
        with m.If(self.m_axis.tvalid & self.m_axis.tready):
            m.d.sync += count.eq(0 if beats == 1 else (count + 1))
            with m.If(is_last):
                m.d.sync += count.eq(0)
        if plan.uses_ddr:
            self._elaborate_ddr(m, dict((st.name, mod) for st, mod in stages),
                                self.m_axis.tvalid & self.m_axis.tready & is_last)
        return m

    def _elaborate_ddr(self, m: Module, mods: dict[str, Any], frame_out: Value) -> None:
        """Hybrid and engine designs: control registers, one region fetcher per DDR layer,
        its width converter (64-bit words → the MVTU's weight beats) and, for tiled
        convolutions, the weight-tile cache; the engine's read master (its sequencer reads
        the engine image); the run/done/performance-counter logic of
        :mod:`lowbit_hdl.runtime.regs`."""
        from ..hw.axi import AXI4LiteRegisters
        from ..hw.ddrfetch import RegionFetcher
        from ..hw.dwc import WidthConverter
        from ..hw.engine.sequencer import EngineSequencer
        from ..hw.replay import ReplayBuffer
        from ..runtime import regs
        from ..runtime.ddr import converter_geometry

        infos = {i.name: i for i in self.plan.infos}
        m.submodules.control = ctl = AXI4LiteRegisters(regs.CONTROL_REGISTERS,
                                                       CONTROL_ADDR_BITS)
        wiring.connect(m, wiring.flipped(self.s_axil), ctl.s_axil)
        start = Signal()
        soft = Signal()
        busy, done, err = Signal(), Signal(), Signal()
        m.d.comb += [start.eq(ctl.ctrl[0]), soft.eq(ctl.ctrl[1])]

        fetchers, starving = [], []
        for r in self.plan.ddr.regions:
            info = infos[r.layer]
            lay = info.layer
            # r.masters fetchers, one per sub-region (interleave_region), merged: a word of
            # each per beat, master j in bits [64j, 64j + 64)
            fs = []
            for j in range(r.masters):
                f = RegionFetcher(r.words // r.masters, r.offset + j * r.nbytes // r.masters)
                m.submodules[f"{r.layer}_fetch" + (f"{j}" if j else "")] = f
                wiring.connect(m, wiring.flipped(getattr(self, f"m_axi{r.port + j}")),
                               f.m_axi)
                m.d.comb += [f.base.eq(ctl.weights_base_lo), f.frames.eq(ctl.frames),
                             f.start.eq(start & ~busy), f.clear.eq((start & ~busy) | soft)]
                fs.append(f)
            dwc = WidthConverter(*converter_geometry(r.beat_bits, WORD_BITS, r.masters))
            m.submodules[f"{r.layer}_wdwc"] = dwc
            all_valid = Cat(*(f.o.valid for f in fs)).all()
            m.d.comb += [Value.cast(dwc.i.payload).eq(Cat(*(f.o.payload for f in fs))),
                         dwc.i.valid.eq(all_valid)]
            m.d.comb += [f.o.ready.eq(dwc.i.ready & all_valid) for f in fs]
            src = dwc.o
            if r.placement == "tiled":
                cache = ReplayBuffer(unsigned(r.beat_bits), block=info.mw // lay.simd,
                                     repeats=info.vectors, buffers=TILE_CACHE_BUFFERS)
                m.submodules[f"{r.layer}_tiles"] = cache
                m.d.comb += [Value.cast(cache.i.payload).eq(Value.cast(src.payload)),
                             cache.i.valid.eq(src.valid), src.ready.eq(cache.i.ready)]
                src = cache.o
            mv = mods[f"{r.layer}_mvtu"]
            m.d.comb += [Value.cast(mv.w.payload).eq(Value.cast(src.payload)),
                         mv.w.valid.eq(src.valid), src.ready.eq(mv.w.ready)]
            starving.append(mv.i.valid & ~mv.w.valid)
            fetchers.extend(fs)
        e = self.plan.ddr.engine
        if e is not None:  # the engine unit reads its image like a fetcher
            unit = mods["engine"]
            for j, name in enumerate(EngineSequencer.axi_names(e.masters)):
                wiring.connect(m, wiring.flipped(getattr(self, f"m_axi{e.port + j}")),
                               getattr(unit, name))
            m.d.comb += [unit.base.eq(ctl.weights_base_lo + e.offset),
                         unit.frames.eq(ctl.frames),
                         unit.start.eq(start & ~busy), unit.clear.eq((start & ~busy) | soft)]
            starving.append(unit.stall)
            fetchers.append(unit)

        code = Signal(8)
        left = Signal(32)
        cycles, stalls = Signal(32), Signal(32)
        m.d.comb += [
            ctl.status.eq(busy * regs.STATUS_BUSY | done * regs.STATUS_DONE
                          | err * regs.STATUS_ERROR),
            ctl.error.eq(code),
            ctl.cycles.eq(cycles),
            ctl.stall_cycles.eq(stalls),
            ctl.id.eq(regs.ID_VALUE),
            err.eq(Cat(*(f.error for f in fetchers)).any()),
        ]
        # the ports' byte counts summed into a register: a 32-bit add per port between the
        # counters and the AXI-Lite read data was the control block's longest path
        # (10.6 ns with four ports and the engine); the register reads a cycle late
        bytes_read = Signal(32)
        m.d.sync += bytes_read.eq(sum(f.bytes_read for f in fetchers))
        m.d.comb += ctl.bytes_read.eq(bytes_read)
        for f in reversed(fetchers):  # the first failing port's code
            with m.If(f.error):
                m.d.comb += code.eq(f.error_code)
        with m.If(busy):
            m.d.sync += [cycles.eq(cycles + 1),
                         stalls.eq(stalls + Cat(*starving).any())]
            with m.If(frame_out):
                m.d.sync += left.eq(left - 1)
                with m.If(left == 1):
                    m.d.sync += [busy.eq(0), done.eq(1)]
        with m.If(start & ~busy):
            m.d.sync += [busy.eq(ctl.frames != 0), done.eq(ctl.frames == 0),
                         left.eq(ctl.frames), cycles.eq(0), stalls.eq(0)]
        with m.If(soft):
            m.d.sync += [busy.eq(0), done.eq(0)]


def elaborate_verilog(top: NetworkTop, name: str = TOP_NAME) -> str:
    """Verilog text of the top level (``clk``/``rst`` plus the AXI-Stream ports)."""
    from amaranth.back import verilog

    return verilog.convert(top, name=name, emit_src=False, strip_internal_attrs=True)
