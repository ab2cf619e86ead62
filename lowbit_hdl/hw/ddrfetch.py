"""Region fetcher: reads one DDR layer's weight region once per frame, for a counted run of
frames, through an AXI4 read master (:class:`~lowbit_hdl.hw.axi.AXI4ReadMaster`).

A hybrid design (``build --arch hybrid``) has one fetcher per layer whose weights live in DDR
(:mod:`lowbit_hdl.runtime.ddrimage`). ``start`` (a one-cycle pulse) loads ``frames``; the
fetcher then issues one read command of ``words`` 64-bit words at ``base + offset`` per frame
until that many are issued. The master only issues a burst when its output FIFO has room,
so the fetcher runs at most that FIFO ahead of the layer; every frame's weights are whole
regions, so after a run of ``frames`` frames nothing is left in flight or buffered and the
next run starts frame-aligned.

Cycles: the layer's weights take ``words`` cycles per frame on the bus when the memory
returns a beat per cycle (:func:`lowbit_hdl.cost.axi_read_cycles` for the first frame's
latency); a layer consuming ``beat_bits`` per cycle is fed without gaps while
``beat_bits ≤`` the port's 64 bits per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .axi import AXI4ReadMaster, axi4_read_signature
from .params import check_int

__all__ = ["RegionFetcher"]


class RegionFetcher(wiring.Component):
    """Read ``words`` words at ``base + offset`` once per frame, ``frames`` times per run.

    Parameters
    ----------
    words : int
        Words (``data_width`` bits) of the region, read per frame.
    offset : int
        Byte offset of the region from ``base`` (a multiple of ``data_width/8``).
    data_width, addr_width : int
        AXI data and address widths.
    max_burst, max_outstanding : int
        Passed to :class:`~lowbit_hdl.hw.axi.AXI4ReadMaster`.

    Attributes
    ----------
    base : In(addr_width)
        Byte address of the DDR image.
    frames : In(32)
        Frames of the next run, loaded by ``start``.
    start : In(1)
        One-cycle pulse: begin a run (ignored while commands of a run remain).
    o : Out(stream.Signature(unsigned(data_width)))
        The region's words, frame after frame.
    m_axi : Out(axi4_read_signature(addr_width, data_width))
        AXI4 read channels.
    error, error_code, bytes_read, clear
        Those of the read master.
    pending : Out(1)
        Commands of the current run remain to be issued.
    """

    def __init__(self, words: int, offset: int = 0, data_width: int = 64,
                 addr_width: int = 32, max_burst: int = 16, max_outstanding: int = 4) -> None:
        self.words = check_int("words", words, 1)
        self.offset = check_int("offset", offset, 0)
        if offset % (data_width // 8):
            raise ValueError(f"offset={offset} is not a multiple of {data_width // 8} bytes")
        self.master = AXI4ReadMaster(data_width, addr_width, max_burst, max_outstanding)
        if words >= 1 << self.master.beats_width:
            raise ValueError(f"words={words} exceeds one read command "
                             f"({(1 << self.master.beats_width) - 1} beats)")
        super().__init__({
            "base": In(addr_width),
            "frames": In(32),
            "start": In(1),
            "o": Out(stream.Signature(unsigned(data_width))),
            "m_axi": Out(axi4_read_signature(addr_width, data_width)),
            "error": Out(1),
            "error_code": Out(2),
            "bytes_read": Out(32),
            "clear": In(1),
            "pending": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.master = master = self.master
        wiring.connect(m, wiring.flipped(self.o), master.o)
        wiring.connect(m, wiring.flipped(self.m_axi), master.m_axi)
        m.d.comb += [
            self.error.eq(master.error),
            self.error_code.eq(master.error_code),
            self.bytes_read.eq(master.bytes_read),
            master.clear.eq(self.clear),
        ]
        left = Signal(32)
        addr = Signal.like(self.base)
        m.d.comb += [
            self.pending.eq(left != 0),
            master.cmd.valid.eq(left != 0),
            master.cmd.payload.addr.eq(addr),
            master.cmd.payload.beats.eq(self.words),
        ]
        with m.If(master.cmd.valid & master.cmd.ready):
            m.d.sync += left.eq(left - 1)
        with m.If(self.start & (left == 0)):
            m.d.sync += [left.eq(self.frames), addr.eq(self.base + self.offset)]
        return m
