"""The weight-tile buffer: double-buffered tiles from the ``64·ports``-bit ``tiles`` stream
(word ``i`` of a beat in bits ``[64i, 64i + 64)``, the earlier word of the region lower).

A layer's region arrives as ``nf`` tiles of ``tile_words`` words (a multiple of ``ports``):
first the threshold words (``t_words`` of them, padded to whole beats; none for a raw layer)
into the bank's threshold register, then ``SF`` weight beats of ``pe·simd`` bits
(``pe·simd/64`` words each, a multiple of ``ports``, word ``j`` in bits ``[64j, 64j + 64)``)
into the bank's half of the weight memory (depth ``2·max_sf``), ``ports`` words per cycle. Tile
``t`` goes into bank ``t % 2`` once that bank is free; the bank is ``full`` from its last word
until the core ``release`` s it (after the tile's last output). ``tiles.ready`` depends on
registers only.

Load time of one tile: ``tile_words / ports`` cycles at one beat per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .params import EngineParams, descriptor_layout

__all__ = ["TileBuffer"]


class TileBuffer(wiring.Component):
    """Double-buffered weight tiles and thresholds.

    Attributes
    ----------
    cfg : In(descriptor layout)
    start : In(1)
        A new layer: load its ``nf`` tiles.
    tiles : In(stream.Signature(64·ports))
    full : Out(2)
        Bank ``b`` holds a loaded tile.
    release : In(1), release_bank : In(1)
        Free a bank (its tile's last output is done).
    rd_bank : In(1), rd_sf : In(16)
        Weight read address (synchronous: ``w_data`` the next cycle).
    w_data : Out(pe·simd)
    thr0, thr1 : Out(t_words·64)
        The thresholds of each bank (element ``p·T + t``).
    """

    def __init__(self, params: EngineParams) -> None:
        if not isinstance(params, EngineParams):
            raise TypeError(f"params={params!r} must be EngineParams")
        self.params = params
        self.tw = params.t_words
        super().__init__({
            "cfg": In(descriptor_layout()), "start": In(1),
            "tiles": In(stream.Signature(64 * params.ports)),
            "full": Out(2), "release": In(1), "release_bank": In(1),
            "rd_bank": In(1), "rd_sf": In(16),
            "w_data": Out(unsigned(params.pe * params.simd)),
            "thr0": Out(unsigned(max(1, 64 * self.tw))),
            "thr1": Out(unsigned(max(1, 64 * self.tw))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        p, c, tw = self.params, self.cfg, self.tw
        bw, ports = p.beat_words, p.ports
        mem = Memory(shape=unsigned(p.pe * p.simd), depth=2 * p.max_sf, init=[])
        m.submodules.wmem = mem
        rp = mem.read_port()
        wp = mem.write_port(granularity=64)
        m.d.comb += [rp.addr.eq(self.rd_sf + Mux(self.rd_bank, p.max_sf, 0)),
                     self.w_data.eq(rp.data)]

        full = Signal(2)
        tile = Signal(11)          # tile being loaded
        word = Signal(20)          # word within the tile
        sf = Signal(16)            # weight beat being loaded
        chunk = Signal(range(bw))  # word within the beat
        bank = tile[0]
        loading = Signal()
        m.d.comb += [self.full.eq(full), self.thr0.eq(0), self.thr1.eq(0)]
        m.d.comb += self.tiles.ready.eq(loading & ~full.bit_select(bank, 1))
        take = self.tiles.valid & self.tiles.ready
        nthr = Mux(c.raw, 0, tw)
        in_thr = word < nthr
        thr = [Signal(max(1, 64 * tw), name=f"thr{b}") for b in (0, 1)]
        m.d.comb += [self.thr0.eq(thr[0]), self.thr1.eq(thr[1])]
        m.d.comb += [wp.addr.eq(sf + Mux(bank, p.max_sf, 0)),
                     wp.data.eq(Cat(*[self.tiles.payload] * (bw // ports))),
                     wp.en.eq(Mux(take & ~in_thr, ((1 << ports) - 1) << chunk, 0))]
        last_word = word == c.tile_words - ports

        with m.If(self.start):
            m.d.sync += [tile.eq(0), word.eq(0), sf.eq(0), chunk.eq(0), loading.eq(1)]
        with m.Elif(take):
            m.d.sync += word.eq(word + ports)
            with m.If(in_thr):
                for b in (0, 1):
                    with m.If(bank == b):
                        with m.Switch(word):
                            for j in range(0, tw, ports):
                                with m.Case(j):
                                    m.d.sync += thr[b][64 * j:64 * (j + ports)].eq(
                                        self.tiles.payload)
            with m.Else():
                m.d.sync += chunk.eq(chunk + ports)
                with m.If(chunk == bw - ports):
                    m.d.sync += [chunk.eq(0), sf.eq(sf + 1)]
            with m.If(last_word):
                m.d.sync += [word.eq(0), sf.eq(0), chunk.eq(0), tile.eq(tile + 1)]
                with m.If(tile == c.nf - 1):
                    m.d.sync += loading.eq(0)
        # full: set by a tile's last word, cleared by release
        set_bits = Mux(take & last_word, 1 << bank, 0)
        clr_bits = Mux(self.release, 1 << self.release_bank, 0)
        m.d.sync += full.eq((full | set_bits) & ~clr_bits)
        with m.If(self.start):
            m.d.sync += full.eq(0)
        return m
