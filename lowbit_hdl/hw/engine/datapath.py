"""The engine datapath: one runtime-configured layer at a time (architecture (a)).

``start`` (with ``cfg`` = the layer's descriptor, held stable until ``done``) runs one layer:
the window reader issues the activation beats in the loop order ``nf, oy, ox, ky, kx, cf``
(:mod:`.window`), the tile buffer supplies tile ``nf``'s weights and thresholds from the
``tiles`` stream, double-buffered (:mod:`.tiles`), the core computes ``pe`` outputs per pixel
(:mod:`.core`) into a credit FIFO, and the writer stores them with the max-pool applied
(:mod:`.writer`), or, for a raw layer, they leave on ``raw``. ``done`` pulses when the last
write has landed (raw: the cycle after the last raw beat was taken).

Frames: the loader (:mod:`.loader`) writes the front's map into buffer 0 whenever no map of
the current frame is in (``load_done`` pulses when it is in); the map is consumed by the
frame's layers and a new one is accepted after the frame: after the drain (:mod:`.drain`),
which starts by itself when a ``last`` non-raw layer is done, or after a ``last`` raw layer
(or ``last`` layer of a build without drain). ``frame_free`` pulses when the datapath can take
a frame's first layer: once after reset, at the end of every frame and on ``abort``. The
first layer may start as soon as that: it overlaps the load, its reads of buffer 0 waiting
for the words the loader has not written yet (each beat issues once its word is in), and its
``done`` waits for the whole map, so no later layer overwrites buffer 0 under the loader.
``abort`` drops the frame: the map so far, the loaded flag, a held ``done``.

Raw beats carry ``pe`` signed ``raw_bits`` elements, the lanes of channels ≥ ``out_c`` in the
last fold included (computed with weight code 0; the consumer knows MH).

Cycles of a layer, ``start`` to ``done``, with no stalls:
:func:`lowbit_hdl.cost.engine_layer_cycles`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, Value, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ...cost import ENGINE_FIFO_DEPTH, ENGINE_LATENCY, ENGINE_RELEASE
from ...runtime.engine import DATAPATH_ERRORS
from ..credit import CreditFIFO
from ..payload import vector
from .buffers import ActivationBuffers
from .core import EngineCore
from .drain import Drain
from .loader import Loader
from .params import EngineParams, descriptor_layout
from .tiles import TileBuffer
from .window import WindowReader
from .writer import PoolWriter

__all__ = ["EngineDatapath"]


class EngineDatapath(wiring.Component):
    """The engine's datapath.

    Parameters
    ----------
    params : EngineParams

    Attributes
    ----------
    cfg : In(descriptor StructLayout)
    start : In(1)
        Pulse: run the layer of ``cfg`` (only while not ``busy``).
    done : Out(1)
        Pulse: the layer is finished.
    busy : Out(1)
    tiles : In(stream.Signature(64·ports))
        The layer's region words, in order.
    load : In(stream.Signature(ArrayLayout(A, load_elems)))
        Only with ``load_shape``; ``load_done``: Out(1) pulse.
    frame_free : Out(1)
        Pulse: a new frame's first layer may start (module docstring).
    abort : In(1)
        Pulse: forget the current frame (after an error).
    raw : Out(stream.Signature(ArrayLayout(signed(raw_bits), pe)))
        Only with ``raw_bits > 0``.
    drain : Out(stream.Signature(ArrayLayout(A, simd)))
        Only with ``drain_shape``; ``drain_done``: Out(1) pulse.
    stall : Out(32)
        Cycles the core waited for a weight tile (free-running).
    error : Out(4)
        0, or the code (``lowbit_hdl.runtime.engine.DATAPATH_ERRORS``) of the rule the last
        started descriptor broke (valid from the cycle after ``start``); such a layer is not
        run and ``done`` pulses the cycle after ``start``.
    """

    #: output FIFO depth (the cost model's credits); enough for one beat per cycle
    FIFO_DEPTH = ENGINE_FIFO_DEPTH
    assert FIFO_DEPTH >= CreditFIFO.depth_for(EngineCore.LATENCY, 1)
    # the cost model's pipeline constants follow the core's (issue → writer, tile release)
    assert ENGINE_LATENCY == ENGINE_RELEASE == EngineCore.LATENCY + 1

    def __init__(self, params: EngineParams) -> None:
        if not isinstance(params, EngineParams):
            raise TypeError(f"params={params!r} must be EngineParams")
        self.params = params
        p = params
        members = {
            "cfg": In(descriptor_layout()), "start": In(1), "done": Out(1), "busy": Out(1),
            "tiles": In(stream.Signature(64 * p.ports)), "stall": Out(32), "error": Out(4),
            "frame_free": Out(1), "abort": In(1),
        }
        if p.load_shape is not None:
            members["load"] = In(stream.Signature(vector(p.act, p.load_elems)))
            members["load_done"] = Out(1)
        if p.raw_bits:
            members["raw"] = Out(stream.Signature(vector(signed(p.raw_bits), p.pe)))
        if p.drain_shape is not None:
            members["drain"] = Out(stream.Signature(vector(p.act, p.simd)))
            members["drain_done"] = Out(1)
        super().__init__(members)

    def _check(self, c) -> Value:
        """Error code of descriptor ``c`` (0: runnable), :data:`DATAPATH_ERRORS` order."""
        p = self.params
        zero = Cat(*[getattr(c, n) == 0 for n in (
            "k", "stride", "in_h", "in_w", "in_cf", "out_h", "out_w", "nf", "out_c", "pool_k",
            "pool_s", "pool_h", "pool_w", "out_cf")]).any()
        sf_bad = (c.sf != c.k * c.k * c.in_cf) | (c.sf == 0) | (c.sf > p.max_sf)
        tw = Mux(c.raw, 0, p.t_words) + c.sf * p.beat_words
        over = ((c.in_h * c.in_w * c.in_cf > p.buffer_words)
                | (~c.raw & (c.pool_h * c.pool_w * c.out_cf > p.buffer_words)))
        rules = [sf_bad, ~c.raw & (c.in_buf == c.out_buf), zero, c.tile_words != tw, over,
                 c.raw & (p.raw_bits == 0),
                 (c.nf * p.pe < c.out_c) | (c.out_cf * p.simd < c.out_c)]
        assert len(rules) == len(DATAPATH_ERRORS)
        code = 0
        for i in reversed(range(len(rules))):   # the lowest broken rule wins
            code = Mux(rules[i], i + 1, code)
        return code

    def elaborate(self, platform) -> Module:
        m = Module()
        p, c = self.params, self.cfg
        rd = m.submodules.reader = WindowReader(p)
        tl = m.submodules.tiles = TileBuffer(p)
        core = m.submodules.core = EngineCore(p)
        fifo = m.submodules.fifo = CreditFIFO(core.out_bits, self.FIFO_DEPTH)
        wr = m.submodules.writer = PoolWriter(p)
        bufs = m.submodules.bufs = ActivationBuffers(p)
        for u in (rd, tl, core, wr):
            m.d.comb += u.cfg.eq(c)
        # start: the descriptor is checked into ``error`` (cycle 0); the layer runs from the
        # next cycle if it passed, else ``done`` pulses then
        error, start_q = Signal(4), Signal()
        m.d.comb += self.error.eq(error)
        m.d.sync += start_q.eq(self.start)
        with m.If(self.start):
            m.d.sync += error.eq(self._check(c))
        run = start_q & (error == 0)
        rejected = start_q & (error != 0)
        for u in (rd, tl, wr):
            m.d.comb += u.start.eq(run)
        wiring.connect(m, wiring.flipped(self.tiles), tl.tiles)

        busy = Signal()
        m.d.comb += self.busy.eq(busy | start_q)
        with m.If(run):
            m.d.sync += busy.eq(1)
        with m.Elif(self.done):
            m.d.sync += busy.eq(0)

        # -- issue -------------------------------------------------------------------------
        bank = rd.tile[0]
        tile_ok = tl.full.bit_select(bank, 1)
        # the first layer overlaps the load: a beat reading buffer 0 waits for its word
        loaded = Signal(init=p.load_shape is None)   # the frame's map is all in buffer 0
        avail = Signal(range(p.buffer_words + 1))  # words of the map written so far
        map_ok = loaded | (c.in_buf != 0) | rd.pad | (rd.addr < avail)
        step = Signal()
        m.d.comb += [step.eq(rd.active & tile_ok & map_ok & (~rd.last | fifo.can_reserve)),
                     rd.step.eq(step), fifo.reserve.eq(step & rd.last),
                     tl.rd_bank.eq(bank), tl.rd_sf.eq(rd.sf)]
        stall = Signal(32)
        m.d.comb += self.stall.eq(stall)
        with m.If(rd.active & ~tile_ok):
            m.d.sync += stall.eq(stall + 1)

        # -- stage 1: operands ---------------------------------------------------------------
        pad1 = Signal()
        m.d.sync += [core.v1.eq(step), core.first1.eq(rd.first), core.last1.eq(rd.last),
                     core.bank1.eq(bank), core.tend1.eq(rd.tile_last), pad1.eq(rd.pad)]
        padword = Cat(*[c.pad_code[:p.abits]] * p.simd)
        act = Mux(c.in_buf, bufs.r1_data, bufs.r0_data)
        m.d.comb += [core.x.eq(Mux(pad1, padword, act)), core.w.eq(tl.w_data),
                     core.thr0.eq(tl.thr0), core.thr1.eq(tl.thr1),
                     fifo.w_en.eq(core.o_en), fifo.w_data.eq(core.o_data),
                     tl.release.eq(core.release), tl.release_bank.eq(core.release_bank)]

        # -- outputs: writer or raw stream --------------------------------------------------
        ew = max(p.abits, p.raw_bits)
        data = fifo.o.payload
        m.d.comb += [wr.i.payload.eq(Cat(*[data[q * ew:q * ew + p.abits]
                                           for q in range(p.pe)])),
                     wr.i.valid.eq(fifo.o.valid & ~c.raw)]
        raw_done = Signal()
        if p.raw_bits:
            m.d.comb += [self.raw.valid.eq(fifo.o.valid & c.raw),
                         self.raw.payload.eq(data),
                         fifo.o.ready.eq(Mux(c.raw, self.raw.ready, wr.i.ready))]
            rx, ry, rn = Signal(10), Signal(10), Signal(10)
            m.d.sync += raw_done.eq(0)
            with m.If(run):
                m.d.sync += [rx.eq(0), ry.eq(0), rn.eq(0)]
            with m.Elif(self.raw.valid & self.raw.ready):
                m.d.sync += rx.eq(rx + 1)
                with m.If(rx == c.out_w - 1):
                    m.d.sync += [rx.eq(0), ry.eq(ry + 1)]
                    with m.If(ry == c.out_h - 1):
                        m.d.sync += [ry.eq(0), rn.eq(rn + 1)]
                        with m.If(rn == c.nf - 1):
                            m.d.sync += raw_done.eq(1)
        else:
            m.d.comb += fifo.o.ready.eq(wr.i.ready)
        # a layer that ends before the map is all in (it need not read the last words) holds
        # its done until it is
        fin, held = Signal(), Signal()
        m.d.comb += [fin.eq(wr.done | raw_done),
                     self.done.eq(((fin | held) & loaded) | rejected)]
        with m.If(fin & ~loaded):
            m.d.sync += held.eq(1)
        with m.If((held & loaded) | self.abort):
            m.d.sync += held.eq(0)

        # -- frames: loader, drain ----------------------------------------------------------
        drain_busy, drain_buf = Signal(), Signal()
        frame_end = Signal()
        if p.drain_shape is not None:
            dr = m.submodules.drain = Drain(p)
            wiring.connect(m, dr.o, wiring.flipped(self.drain))
            m.d.comb += [dr.start.eq(self.done & ~rejected & ~c.raw & c.last),
                         drain_busy.eq(dr.busy),
                         self.drain_done.eq(dr.done),
                         dr.rd_data.eq(Mux(drain_buf, bufs.r1_data, bufs.r0_data)),
                         frame_end.eq(dr.done | (self.done & ~rejected & c.raw & c.last))]
            with m.If(dr.start):
                m.d.sync += drain_buf.eq(c.out_buf)
        else:
            m.d.comb += frame_end.eq(self.done & c.last)
        boot = Signal(init=1)
        m.d.sync += [boot.eq(0), self.frame_free.eq(boot | frame_end | self.abort)]
        ld = None
        if p.load_shape is not None:
            ld = m.submodules.loader = Loader(p)
            wiring.connect(m, wiring.flipped(self.load), ld.i)
            m.d.comb += [ld.enable.eq(~loaded & ~drain_busy), ld.clear.eq(self.abort),
                         self.load_done.eq(ld.done)]
            with m.If(ld.wr_en):
                m.d.sync += avail.eq(ld.wr_addr + 1)
            with m.If(ld.done):
                m.d.sync += loaded.eq(1)
            with m.If(frame_end | self.abort):
                m.d.sync += [loaded.eq(0), avail.eq(0)]

        # -- buffer ports --------------------------------------------------------------------
        for b in (0, 1):
            raddr = Mux(c.in_buf == b, rd.addr, wr.rd_addr)
            ren = 1
            if p.drain_shape is not None:
                own = drain_busy & (drain_buf == b)
                raddr = Mux(own, dr.rd_addr, raddr)
                ren = Mux(own, dr.rd_en, 1)
            w_en = Mux(busy & (c.out_buf == b), wr.wr_en, 0)
            w_addr, w_data = wr.wr_addr, wr.wr_data
            if ld is not None and b == 0:  # the loader writes only while no layer writes here
                w_en = w_en | ld.wr_en
                w_addr = Mux(ld.wr_en, ld.wr_addr, wr.wr_addr)
                w_data = Mux(ld.wr_en, ld.wr_data, wr.wr_data)
            m.d.comb += [getattr(bufs, f"r{b}_addr").eq(raddr),
                         getattr(bufs, f"r{b}_en").eq(ren),
                         getattr(bufs, f"w{b}_en").eq(w_en),
                         getattr(bufs, f"w{b}_addr").eq(w_addr),
                         getattr(bufs, f"w{b}_data").eq(w_data)]
        m.d.comb += wr.rd_data.eq(Mux(c.out_buf, bufs.r1_data, bufs.r0_data))
        return m
