"""The writer: output beats into the output buffer, with the max-pool applied on write.

Beats arrive in the core's order (``nf`` major, then ``oy``, ``ox``): beat = ``pe`` codes of
channels ``nf·pe …`` of conv pixel (oy, ox). For every pooled position (py, px) whose window
contains (oy, ox) the writer does ``out[py, px] = max(out[py, px], beat)`` lane-wise on the
``pe`` lanes at channel offset ``nf·pe`` (unsigned compare for UINT codes, OR for BIPOLAR),
a read-modify-write of word ``(py·pool_w + px)·out_cf + (nf·pe) // simd`` (lane offset
``(nf·pe) % simd`` when ``pe < simd``; ``pe/simd`` words when ``pe > simd``, those past
``out_cf`` skipped). The first contributor of a position in raster order (``dy = 0`` or
``oy = 0``, and likewise in x) writes instead of maxing, so no clearing pass is needed.
Lanes of channels ≥ ``out_c`` are written as code 0 (in the last fold also the lanes above
the beat when ``pe < simd``). With ``pool_k = 1`` every beat is one plain lane-masked write.

Candidates: with ``oy + pool_t = py_hi·s + ry`` the positions are ``py = py_hi − j`` at
window row ``dy = ry + j·s`` while ``dy < pool_k`` and ``py ≥ 0`` (likewise x), kept by
incremental counters. Two stages: a candidate word's read is issued (stage A), the next cycle
its max is written (stage B) while the next candidate is read; the buffer's read port is
transparent for its write port, so back-to-back beats on the same word see each other.
Cycles per beat (:func:`lowbit_hdl.cost.engine_writer_cycles`): per candidate pair
(py, px) outside the pooled map 1, inside ``words`` (``pe/simd`` clipped to ``out_cf``, or
1); a beat without candidates 1. ``done`` follows the last beat's last cycle by 2.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .params import EngineParams, descriptor_layout

__all__ = ["PoolWriter"]


class PoolWriter(wiring.Component):
    """Max-pool-on-write of the engine's output beats.

    Attributes
    ----------
    cfg : In(descriptor layout)
    start : In(1)
        A new layer.
    i : In(stream.Signature(pe·A.bits))
        Output beats (codes, element ``p`` in bits ``[p·A.bits, …)``).
    rd_addr : Out, rd_data : In
        Read port of the output buffer (data the cycle after the address).
    wr_addr : Out, wr_en : Out(1), wr_data : Out
        Write port of the output buffer (whole words: lanes outside the beat are written
        back as read).
    done : Out(1)
        Pulse the cycle after the layer's last write (its data is in the buffer).
    """

    def __init__(self, params: EngineParams) -> None:
        if not isinstance(params, EngineParams):
            raise TypeError(f"params={params!r} must be EngineParams")
        self.params = params
        self.aw = params.addr_bits
        super().__init__({
            "cfg": In(descriptor_layout()), "start": In(1),
            "i": In(stream.Signature(unsigned(params.pe * params.abits))),
            "rd_addr": Out(unsigned(self.aw)), "rd_data": In(unsigned(params.word_bits)),
            "wr_addr": Out(unsigned(self.aw)), "wr_en": Out(1),
            "wr_data": Out(unsigned(params.word_bits)), "done": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        p, c, aw = self.params, self.cfg, self.aw
        pe, simd, ab = p.pe, p.simd, p.abits
        wide = pe >= simd
        wpb = pe // simd if wide else 1          # words per beat
        per = 1 if wide else simd // pe           # beats per word (pe < simd)
        s, k = c.pool_s, c.pool_k
        pool = c.pool_k > 1

        # per-layer constants
        pw_cf = Signal(aw)     # pool_w·out_cf
        py0, px0 = Signal(4), Signal(4)
        ry0, rx0 = Signal(3), Signal(3)
        row0, col0 = Signal(aw), Signal(aw)
        # per-beat state
        ox, oy, nf = Signal(10), Signal(10), Signal(10)
        py_hi, px_hi = Signal(11), Signal(11)
        ry, rx = Signal(3), Signal(3)
        row, col = Signal(aw), Signal(aw)   # py_hi·pool_w·out_cf, px_hi·out_cf
        wofs = Signal(aw)                   # (nf·pe) // simd
        lsel = Signal(range(per))           # (nf·pe) % simd / pe
        rem = Signal(signed(14))            # out_c − nf·pe
        # iteration state
        fresh, fresh_x = Signal(init=1), Signal(init=1)
        dy_r, dx_r = Signal(4), Signal(4)
        py_r, px_r = Signal(signed(12)), Signal(signed(12))
        ya_r, xa_r = Signal(aw), Signal(aw)
        wi_r = Signal(range(wpb))

        dy = Mux(fresh, ry, dy_r)
        py = Mux(fresh, py_hi, py_r)
        ya = Mux(fresh, row, ya_r)
        fx = fresh | fresh_x
        dx = Mux(fx, rx, dx_r)
        px = Mux(fx, px_hi, px_r)
        xa = Mux(fx, col, xa_r)
        wi = Mux(fresh | fresh_x, 0, wi_r) if wpb > 1 else Const(0, 1)

        # setup: products of descriptor fields registered over two cycles (the first beat
        # comes much later)
        setup = Signal()
        m.d.sync += setup.eq(self.start)
        with m.If(setup):
            m.d.sync += [row0.eq(py0 * pw_cf), col0.eq(px0 * c.out_cf),
                         row.eq(py0 * pw_cf), col.eq(px0 * c.out_cf)]
        with m.If(self.start):
            m.d.sync += [
                pw_cf.eq(c.pool_w * c.out_cf),
                py0.eq(c.pool_t // s), ry0.eq(c.pool_t % s),
                px0.eq(c.pool_l // s), rx0.eq(c.pool_l % s),
                py_hi.eq(c.pool_t // s), ry.eq(c.pool_t % s),
                px_hi.eq(c.pool_l // s), rx.eq(c.pool_l % s),
                ox.eq(0), oy.eq(0), nf.eq(0), wofs.eq(0), lsel.eq(0), rem.eq(c.out_c),
                fresh.eq(1), fresh_x.eq(1),
            ]

        empty = (ry >= k) | (rx >= k)
        inside = (py < c.pool_h) & (px < c.pool_w)
        # words of this beat inside the map's channel folds
        nw = Signal(range(wpb + 1))
        if wide:
            m.d.comb += nw.eq(Mux(wofs + wpb > c.out_cf, c.out_cf - wofs, wpb))
        else:
            m.d.comb += nw.eq(1)
        last_w = (wi == nw - 1) if wpb > 1 else Const(1, 1)
        more_x = (dx + s < k) & (px > 0)
        more_y = (dy + s < k) & (py > 0)
        first = ((dy == 0) | (oy == 0)) & ((dx == 0) | (ox == 0))
        addr = (ya + xa + wofs + wi)[:aw]
        m.d.comb += self.rd_addr.eq(addr)

        # the word's new lanes
        beat = self.i.payload
        if wide:
            vword = beat.word_select(wi, simd * ab) if wpb > 1 else beat
            rel_base = wi * simd if wpb > 1 else Const(0, 1)
            en_all = Const((1 << simd) - 1, simd)
        else:
            vword = (beat << (lsel * pe * ab))[:simd * ab]
            rel_base = 0
            last_tile = nf == c.nf - 1
            below = (Const(1, simd + 1) << (lsel * pe)) - 1
            en_all = Mux(last_tile, ~below, ~below & ((Const(1, simd + 1) << (lsel * pe + pe))
                                                      - 1))[:simd]
        # stage A (this cycle): the candidate's read is issued; its lanes, lane mask and
        # enables go to stage B with it. Stage B (next cycle): max with the word read (the
        # read port is transparent, so a write in the same cycle is seen) and write.
        lvalid = []
        for ls in range(simd):
            rel = Signal(signed(14), name=f"rel{ls}")
            m.d.comb += rel.eq(rel_base + ls if wide else ls - lsel * pe)
            lvalid.append(rel < rem)
        b_valid, b_first = Signal(), Signal()
        b_addr = Signal(aw)
        b_v = Signal(simd * ab)
        b_en, b_lv = Signal(simd), Signal(simd)
        lanes = []
        for ls in range(simd):
            v = b_v[ls * ab:(ls + 1) * ab]
            old = self.rd_data[ls * ab:(ls + 1) * ab]
            mx = (v | old) if p.act.is_bipolar else Mux(v > old, v, old)
            # lanes outside the beat keep the word read (whole-word writes)
            lanes.append(Mux(b_en[ls], Mux(b_lv[ls], Mux(b_first, v, mx), 0), old))
        m.d.comb += [self.wr_data.eq(Cat(*lanes)), self.wr_addr.eq(b_addr),
                     self.wr_en.eq(b_valid)]

        # one candidate word per cycle on the head beat
        busy = self.i.valid
        op = busy & ~empty & inside
        m.d.sync += [b_valid.eq(op), b_first.eq(first | ~pool), b_addr.eq(addr),
                     b_v.eq(vword), b_en.eq(en_all), b_lv.eq(Cat(*lvalid))]
        op_done = Signal()   # the current candidate (all its words) finished this cycle
        beat_done = Signal()
        with m.If(busy):
            with m.If(empty):
                m.d.comb += beat_done.eq(1)
            with m.Elif(~inside):
                m.d.comb += op_done.eq(1)
            with m.Else():
                if wpb > 1:
                    m.d.sync += [wi_r.eq(wi + 1), fresh.eq(0), fresh_x.eq(0),
                                 dy_r.eq(dy), py_r.eq(py), ya_r.eq(ya),
                                 dx_r.eq(dx), px_r.eq(px), xa_r.eq(xa)]
                    with m.If(last_w):
                        m.d.comb += op_done.eq(1)
                else:
                    m.d.comb += op_done.eq(1)
        with m.If(op_done):
            if wpb > 1:
                m.d.sync += wi_r.eq(0)
            with m.If(more_x):
                m.d.sync += [fresh.eq(0), fresh_x.eq(0), dy_r.eq(dy), py_r.eq(py),
                             ya_r.eq(ya), dx_r.eq(dx + s), px_r.eq(px - 1),
                             xa_r.eq(xa - c.out_cf)]
            with m.Elif(more_y):
                m.d.sync += [fresh.eq(0), fresh_x.eq(1), dy_r.eq(dy + s), py_r.eq(py - 1),
                             ya_r.eq(ya - pw_cf)]
            with m.Else():
                m.d.comb += beat_done.eq(1)
        m.d.comb += self.i.ready.eq(beat_done)

        # next beat: pixel counters (incremental)
        last_ox, last_oy = ox == c.out_w - 1, oy == c.out_h - 1
        last_nf = nf == c.nf - 1
        fin = Signal()
        m.d.sync += [fin.eq(0), self.done.eq(fin)]
        with m.If(beat_done):
            m.d.sync += [fresh.eq(1), fresh_x.eq(1), ox.eq(ox + 1)]
            if wpb > 1:
                m.d.sync += wi_r.eq(0)
            with m.If(rx + 1 == s):
                m.d.sync += [rx.eq(0), px_hi.eq(px_hi + 1), col.eq(col + c.out_cf)]
            with m.Else():
                m.d.sync += rx.eq(rx + 1)
            with m.If(last_ox):
                m.d.sync += [ox.eq(0), rx.eq(rx0), px_hi.eq(px0), col.eq(col0), oy.eq(oy + 1)]
                with m.If(ry + 1 == s):
                    m.d.sync += [ry.eq(0), py_hi.eq(py_hi + 1), row.eq(row + pw_cf)]
                with m.Else():
                    m.d.sync += ry.eq(ry + 1)
                with m.If(last_oy):
                    m.d.sync += [oy.eq(0), ry.eq(ry0), py_hi.eq(py0), row.eq(row0),
                                 nf.eq(nf + 1), rem.eq(rem - pe)]
                    if wide:
                        m.d.sync += wofs.eq(wofs + wpb)
                    elif per > 1:
                        m.d.sync += lsel.eq(lsel + 1)
                        with m.If(lsel == per - 1):
                            m.d.sync += [lsel.eq(0), wofs.eq(wofs + 1)]
                    else:
                        m.d.sync += wofs.eq(wofs + 1)
                    with m.If(last_nf):
                        m.d.sync += fin.eq(1)
        return m
