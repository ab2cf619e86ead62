"""The loader: the front's output map into activation buffer 0.

Build-time geometry ``load_shape = (H, W, C)``; the ``load`` stream carries ``load_elems``
elements of A per beat, channels innermost (raster order, ``C / load_elems`` beats per
pixel). Beats of ``E ≤ simd`` elements fill the lanes ``(j·E) % simd …`` of word
``pixel·CF + (j·E) // simd`` in a register; the word is written whole with its last beat
(a pixel's last word with code 0 in the lanes above C). A beat of ``E > simd`` elements is
written as ``E/simd`` words, one per cycle (``ready`` on the last). One beat per cycle
otherwise.
``done`` pulses when the whole map is in; ``clear`` drops a partly written map (the next beat
starts a map).
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..payload import vector
from .params import EngineParams

__all__ = ["Loader"]


class Loader(wiring.Component):
    """Writes ``load_shape`` maps from the ``i`` stream into a buffer's write port.

    Attributes
    ----------
    i : In(stream.Signature(ArrayLayout(A, load_elems)))
    enable : In(1)
        Beats are accepted only while high.
    clear : In(1)
        Start over: the next beat is a map's first.
    wr_addr, wr_en, wr_data : Out
        Write port of buffer 0.
    done : Out(1)
        Pulse after the last beat of a map was written.
    """

    def __init__(self, params: EngineParams) -> None:
        if not isinstance(params, EngineParams) or params.load_shape is None:
            raise TypeError("Loader needs EngineParams with a load_shape")
        self.params = params
        self.aw = params.addr_bits
        super().__init__({
            "i": In(stream.Signature(vector(params.act, params.load_elems))),
            "enable": In(1), "clear": In(1),
            "wr_addr": Out(unsigned(self.aw)), "wr_en": Out(1),
            "wr_data": Out(unsigned(params.word_bits)), "done": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        p = self.params
        h, w, c = p.load_shape
        e, simd, ab = p.load_elems, p.simd, p.abits
        bpp = c // e                       # beats per pixel
        beats = h * w * bpp
        addr = Signal(self.aw)
        n = Signal(range(beats))
        bp = Signal(range(bpp))
        pix_last = bp == bpp - 1
        data = self.i.payload.as_value()
        m.d.sync += self.done.eq(0)
        if e <= simd:
            per = simd // e
            lsel = Signal(range(per))
            take = self.i.valid & self.enable
            # the lanes of the word so far; a word is written whole with its last beat (the
            # pixel's last beat leaves the lanes above it 0)
            part = Signal(simd * ab)
            # the lanes below the beat's: a mux of constant masks (no wide subtraction, whose
            # carry chain was the engine's longest path)
            below = Array(Const((1 << (k * e * ab)) - 1, simd * ab) for k in range(per))[lsel]
            word = ((part & below) | (data << (lsel * e * ab)))[:simd * ab]
            m.d.comb += [self.i.ready.eq(self.enable), self.wr_addr.eq(addr),
                         self.wr_data.eq(word),
                         self.wr_en.eq(take & ((lsel == per - 1) | pix_last))]
            with m.If(take):
                m.d.sync += [bp.eq(bp + 1), lsel.eq(lsel + 1), part.eq(word)]
                with m.If((lsel == per - 1) | pix_last):
                    m.d.sync += [lsel.eq(0), addr.eq(addr + 1)]
                with m.If(pix_last):
                    m.d.sync += bp.eq(0)
        else:
            wpb = e // simd
            sub = Signal(range(wpb))
            m.d.comb += [self.i.ready.eq(self.enable & (sub == wpb - 1)),
                         self.wr_addr.eq(addr),
                         self.wr_data.eq(data.word_select(sub, simd * ab)),
                         self.wr_en.eq(self.i.valid & self.enable)]
            take = self.i.valid & self.i.ready
            with m.If(self.i.valid & self.enable):
                m.d.sync += [sub.eq(sub + 1), addr.eq(addr + 1)]
                with m.If(sub == wpb - 1):
                    m.d.sync += sub.eq(0)
        with m.If(take):
            m.d.sync += n.eq(n + 1)
            with m.If(n == beats - 1):
                m.d.sync += [n.eq(0), addr.eq(0), self.done.eq(1)]
                if e <= simd:
                    m.d.sync += [bp.eq(0), lsel.eq(0)]
        with m.If(self.clear):
            m.d.sync += [n.eq(0), addr.eq(0), self.done.eq(0)]
            m.d.sync += [bp.eq(0), lsel.eq(0)] if e <= simd else sub.eq(0)
        return m
