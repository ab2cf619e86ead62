"""The engine as one pipeline stage: datapath + sequencer, as an engine design's top level
(:class:`lowbit_hdl.flow.top.NetworkTop`) instantiates it.

Streams: ``i`` takes the front's output map (the loader writes it into activation buffer 0);
``o`` is the datapath's raw stream (a raw last layer: ``pe`` signed accumulators per beat) or
its drain (the last map pixel-major, ``simd`` activations per beat). The sequencer reads the
engine image (:func:`lowbit_hdl.runtime.engine.engine_image`) at ``base`` once per frame,
for ``frames`` frames per ``start``, through ``fmt.ports`` AXI4 read masters (``m_axi``,
``m_axi1``, …: :meth:`EngineSequencer.axi_names`, one HP port each); the ports ``base``,
``frames``, ``start``, ``clear``, ``error``, ``error_code``, ``bytes_read`` are those of a
region fetcher (:class:`lowbit_hdl.hw.ddrfetch.RegionFetcher`), so the control block treats
both alike.
``stall`` is high in the cycles in which the core waited for a weight tile.

Errors: when the sequencer stops on an error (an AXI error response, a bad descriptor or
table), the run still ends: the unit takes the remaining input beats of the run's frames
and then emits zero beats for the rest of its output frames, so the stream (and the DMA behind
it) never hangs; the control block then reports ``STATUS.ERROR`` with the code.

Cycles per frame: :func:`lowbit_hdl.cost.engine_stage_cycles`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ...runtime import regs
from ...runtime.engine import EngineFormat
from ..axi import axi4_read_signature
from ..payload import vector
from .datapath import EngineDatapath
from .params import EngineParams
from .sequencer import EngineSequencer

__all__ = ["EngineUnit"]


class EngineUnit(wiring.Component):
    """Datapath and sequencer of one engine (module docstring).

    Parameters
    ----------
    fmt : EngineFormat
        The datapath's build parameters (:attr:`lowbit_hdl.flow.plan.Plan.engine_format`).
    load_shape : tuple
        (H, W, C) of the map the front delivers.
    load_elems : int
        Elements per input beat.
    drain_shape : tuple or None
        (H, W, C) of the last map, drained pixel-major; ``None`` when the last layer is raw.
    raw_beats : int
        Raw output beats per frame (the last layer's neuron folds), without a drain.

    Attributes
    ----------
    i : In(stream.Signature(ArrayLayout(A, load_elems)))
    o : Out(stream.Signature(ArrayLayout(signed(raw_bits), pe)))
        or ``ArrayLayout(A, simd)`` for a drain.
    m_axi, base, frames, start, clear, error, error_code, bytes_read
        As :class:`~lowbit_hdl.hw.ddrfetch.RegionFetcher` (``bytes_read``: all masters).
    m_axi1 … m_axi3
        The further read masters when ``fmt.ports > 1``.
    stall : Out(1)
        The core waits for a weight tile this cycle.
    """

    def __init__(self, fmt: EngineFormat, load_shape: tuple[int, int, int], load_elems: int,
                 drain_shape: tuple[int, int, int] | None, raw_beats: int = 1) -> None:
        if not isinstance(fmt, EngineFormat):
            raise TypeError(f"fmt must be an EngineFormat, got {type(fmt).__name__}")
        if (drain_shape is None) == (fmt.raw_bits == 0):
            raise ValueError("an engine has a drain (last layer with an activation) or a raw "
                             "output (raw_bits > 0), exactly one")
        self.params = EngineParams(fmt.pe, fmt.simd, fmt.act, fmt.buffer_words, fmt.max_sf,
                                   fmt.acc_bits, fmt.raw_bits, fmt.ports, load_shape,
                                   load_elems, drain_shape)
        p = self.params
        h, w, c = load_shape
        #: input and output beats of one frame (the error flush counts them)
        self.in_beats = h * w * c // load_elems
        self.out_beats = raw_beats if drain_shape is None else p.map_words(drain_shape)
        out = vector(signed(p.raw_bits), p.pe) if drain_shape is None else vector(p.act, p.simd)
        super().__init__({
            "i": In(stream.Signature(vector(p.act, load_elems))),
            "o": Out(stream.Signature(out)),
            **{name: Out(axi4_read_signature(32, 64))
               for name in EngineSequencer.axi_names(p.ports)},
            "base": In(32),
            "frames": In(32),
            "start": In(1),
            "clear": In(1),
            "error": Out(1),
            "error_code": Out(8),
            "bytes_read": Out(32),
            "stall": Out(1),
        })

    @classmethod
    def from_plan(cls, plan) -> EngineUnit:
        """The engine of an engine design's plan (:func:`lowbit_hdl.flow.plan.plan_network`
        with ``engine``)."""
        split = plan.split
        first = split.engine[0][0]
        c, h, w = first.in_shape
        stage = plan.stage("engine")
        drain = None
        last, pool = split.engine[-1]
        if not split.raw:
            dc, dh, dw = (pool or last).out_shape
            drain = (dh, dw, dc)
        return cls(plan.engine_format, (h, w, c), stage.in_elems, drain,
                   -(-last.mh // plan.engine.pe))

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.datapath = dp = EngineDatapath(self.params)
        m.submodules.sequencer = seq = EngineSequencer(self.params)
        m.d.comb += [dp.cfg.eq(seq.cfg), dp.start.eq(seq.layer_start),
                     seq.layer_done.eq(dp.done), seq.frame_free.eq(dp.frame_free),
                     seq.base.eq(self.base), seq.frames.eq(self.frames),
                     seq.start.eq(self.start)]
        wiring.connect(m, seq.tiles, dp.tiles)
        for name in EngineSequencer.axi_names(self.params.ports):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(seq, name))
        out = dp.raw if self.params.raw_bits else dp.drain
        # beats in and out of the run; after an error, the rest are taken and zeros emitted
        flush = Signal()
        ins, outs = Signal(32), Signal(32)
        in_total, out_total = Signal(32), Signal(32)
        with m.If(flush):
            # the zeros follow the run's last input beat (no output ahead of its input)
            m.d.comb += [self.i.ready.eq(ins != in_total),
                         self.o.valid.eq((outs != out_total) & (ins == in_total))]
        with m.Else():
            m.d.comb += [dp.load.payload.eq(self.i.payload), dp.load.valid.eq(self.i.valid),
                         self.i.ready.eq(dp.load.ready), self.o.payload.eq(out.payload),
                         self.o.valid.eq(out.valid), out.ready.eq(self.o.ready)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += ins.eq(ins + 1)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += outs.eq(outs + 1)
        with m.If(seq.error):
            m.d.sync += flush.eq(1)
        # the datapath forgets the frame (a partly loaded map) when the run stops on an error
        error_q = Signal()
        m.d.sync += error_q.eq(seq.error)
        m.d.comb += dp.abort.eq(seq.error & ~error_q)
        with m.If(self.start | self.clear):
            m.d.sync += [ins.eq(0), outs.eq(0), flush.eq(0),
                         in_total.eq(self.frames * self.in_beats),
                         out_total.eq(self.frames * self.out_beats)]
        # a descriptor the datapath rejects (the sequencer checks the same rules first)
        dp_error = Signal()
        with m.If(self.clear):
            m.d.sync += dp_error.eq(0)
        with m.Elif(dp.error != 0):
            m.d.sync += dp_error.eq(1)
        m.d.comb += [
            self.error.eq(seq.error | dp_error),
            self.error_code.eq(seq.error_code | (dp_error * regs.ERROR_ENGINE_DESCRIPTOR)),
            self.bytes_read.eq(seq.bytes_read),
        ]
        last_stall = Signal(32)
        m.d.sync += last_stall.eq(dp.stall)
        m.d.comb += self.stall.eq(dp.stall != last_stall)
        return m
