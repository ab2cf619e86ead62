"""The window reader: the activation read addresses of one layer in the engine's loop order

``for nf: for oy: for ox: for ky: for kx: for cf`` (one beat per step),

address ``word(oy·S − pad_t + ky, ox·S − pad_l + kx, cf)``, or the pad flag when the pixel
lies outside the map. Runtime geometry from the descriptor; the address is kept by
incremental counters (adders only in the per-step path; the few products of descriptor
fields are registered in three setup cycles after ``start``, the first beat is in the
output queue in the fifth). Addresses wrap modulo the buffer's address width: only in-map
addresses are used, and those come out exact.

The beats leave through a two-entry queue of registers: the counters advance when it has
room (a register), not on the consumer's ``step``, so the consumer's handshake (the tile,
the map, the output credits) and the counters' selects are separate paths; one beat per
cycle in steady state, one cycle more before the first beat.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .params import EngineParams, descriptor_layout

__all__ = ["WindowReader"]


class WindowReader(wiring.Component):
    """Address generator of the engine's activation beats.

    Attributes
    ----------
    cfg : In(descriptor layout)
        Stable from ``start`` to the last step.
    start : In(1)
        Initialise for a new layer (``active`` and the first step 4 cycles later).
    step : In(1)
        Advance to the next beat (only while ``active``).
    active : Out(1)
        Beats remain.
    addr : Out(unsigned)
        Buffer word of the current beat (meaningless when ``pad``).
    pad : Out(1)
        The current beat reads the pad word.
    sf : Out(unsigned(16))
        Beat index within the pixel, ``(ky·K + kx)·CF + cf``.
    first, last : Out(1)
        First / last beat of a pixel.
    tile : Out(unsigned(10))
        Neuron fold of the current beat; ``tile_last``: last beat of the fold.
    """

    def __init__(self, params: EngineParams) -> None:
        if not isinstance(params, EngineParams):
            raise TypeError(f"params={params!r} must be EngineParams")
        self.params = params
        self.aw = params.addr_bits
        super().__init__({
            "cfg": In(descriptor_layout()), "start": In(1), "step": In(1),
            "active": Out(1), "addr": Out(unsigned(self.aw)), "pad": Out(1),
            "sf": Out(unsigned(16)), "first": Out(1), "last": Out(1),
            "tile": Out(unsigned(10)), "tile_last": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        c, aw = self.cfg, self.aw
        # per-layer constants (registered at start)
        wcf, scf, swcf, a0 = (Signal(aw, name=n) for n in ("k_wcf", "k_scf", "k_swcf", "k_a0"))
        cf, kx, ky = Signal(8), Signal(5), Signal(5)
        ox, oy, nf = Signal(10), Signal(10), Signal(10)
        sf = Signal(16)
        iy0, ix0, iy, ix = (Signal(signed(12), name=n) for n in ("iy0", "ix0", "iy", "ix"))
        a, a_row, a_win, a_wrow = (Signal(aw, name=n) for n in ("a", "a_row", "a_win", "a_wrow"))
        active = Signal()

        # the loop bounds less one, registered at start: the per-step compares are equalities
        # of registers (no subtractor in the step path)
        bounds = [Signal(len(v), name=f"{n}_m1") for n, v in
                  (("in_cf", cf), ("k", kx), ("out_w", ox), ("out_h", oy), ("nf", nf))]
        in_cf_m1, k_m1, out_w_m1, out_h_m1, nf_m1 = bounds
        last_cf = cf == in_cf_m1
        last_kx = kx == k_m1
        last_ky = ky == k_m1
        last_ox = ox == out_w_m1
        last_oy = oy == out_h_m1
        last_nf = nf == nf_m1
        pix_last = last_cf & last_kx & last_ky
        tile_last = pix_last & last_ox & last_oy
        # the current beat, queued in two registers (head first) before it leaves
        beat = Cat(a, (iy < 0) | (iy >= c.in_h) | (ix < 0) | (ix >= c.in_w), sf, sf == 0,
                   pix_last, nf, tile_last)
        slots = [Signal(len(beat), name=f"slot{i}") for i in range(2)]
        level = Signal(range(3))
        room = level != 2
        advance = active & room
        take = self.step & (level != 0)
        with m.If(take & ~advance):
            m.d.sync += [level.eq(level - 1), slots[0].eq(slots[1])]
        with m.Elif(advance & ~take):
            m.d.sync += level.eq(level + 1)
            with m.If(level == 0):
                m.d.sync += slots[0].eq(beat)
            with m.Else():
                m.d.sync += slots[1].eq(beat)
        with m.Elif(advance & take):  # only at level 1: a full queue has no room
            m.d.sync += slots[0].eq(beat)
        head = slots[0]
        fields = [self.addr, self.pad, self.sf, self.first, self.last, self.tile,
                  self.tile_last]
        lo = 0
        for f in fields:
            m.d.comb += f.eq(head[lo:lo + len(f)])
            lo += len(f)
        m.d.comb += self.active.eq(level != 0)

        # setup: the products of descriptor fields over three cycles (registered)
        setup = Signal(3)
        pt_w, pl_c = Signal(aw), Signal(aw)
        m.d.sync += setup.eq(setup << 1)
        with m.If(setup[0]):
            m.d.sync += [swcf.eq(c.stride * wcf), pt_w.eq(c.pad_t * wcf),
                         pl_c.eq(c.pad_l * c.in_cf)]
        with m.If(setup[1]):
            a0_v = -(pt_w + pl_c)
            m.d.sync += [a0.eq(a0_v), a.eq(a0_v), a_row.eq(a0_v), a_win.eq(a0_v),
                         a_wrow.eq(a0_v)]
        with m.If(setup[2]):
            m.d.sync += active.eq(1)
        with m.If(self.start):
            m.d.sync += [b.eq(v - 1) for b, v in
                         zip(bounds, (c.in_cf, c.k, c.out_w, c.out_h, c.nf), strict=True)]
            m.d.sync += [
                setup.eq(1), wcf.eq(c.in_w * c.in_cf), scf.eq(c.stride * c.in_cf),
                cf.eq(0), kx.eq(0), ky.eq(0), ox.eq(0), oy.eq(0), nf.eq(0), sf.eq(0),
                iy0.eq(-c.pad_t), iy.eq(-c.pad_t), ix0.eq(-c.pad_l), ix.eq(-c.pad_l),
                active.eq(0), level.eq(0),
            ]
        with m.Elif(advance):
            m.d.sync += [cf.eq(cf + 1), a.eq(a + 1), sf.eq(sf + 1)]
            with m.If(last_cf):
                m.d.sync += [cf.eq(0), kx.eq(kx + 1), ix.eq(ix + 1)]
                with m.If(last_kx):
                    m.d.sync += [kx.eq(0), ix.eq(ix0), ky.eq(ky + 1), iy.eq(iy + 1),
                                 a_row.eq(a_row + wcf), a.eq(a_row + wcf)]
                    with m.If(last_ky):
                        m.d.sync += [ky.eq(0), iy.eq(iy0), sf.eq(0),
                                     ox.eq(ox + 1), ix0.eq(ix0 + c.stride),
                                     ix.eq(ix0 + c.stride),
                                     a_win.eq(a_win + scf), a_row.eq(a_win + scf),
                                     a.eq(a_win + scf)]
                        with m.If(last_ox):
                            m.d.sync += [ox.eq(0), ix0.eq(-c.pad_l), ix.eq(-c.pad_l),
                                         oy.eq(oy + 1), iy0.eq(iy0 + c.stride),
                                         iy.eq(iy0 + c.stride),
                                         a_wrow.eq(a_wrow + swcf), a_win.eq(a_wrow + swcf),
                                         a_row.eq(a_wrow + swcf), a.eq(a_wrow + swcf)]
                            with m.If(last_oy):
                                m.d.sync += [oy.eq(0), iy0.eq(-c.pad_t), iy.eq(-c.pad_t),
                                             nf.eq(nf + 1), a_wrow.eq(a0), a_win.eq(a0),
                                             a_row.eq(a0), a.eq(a0)]
                                with m.If(last_nf):
                                    m.d.sync += active.eq(0)
        return m
