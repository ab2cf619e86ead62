"""Transpose buffer: a frame of ``rows × cols`` beats in, column-major; out, row-major.

In a tiled convolution the MVTU (order ``"tile"``) emits its outputs tile-major — for each of
the NF output-channel tiles the P output pixels, PE channels per beat — and this buffer, with
``cols`` = NF and ``rows`` = P, turns them into the pixel-major order of the dataflow pipeline
(for each pixel its NF beats), the order of an ``onchip`` MVTU.

Storage and control
-------------------
One simple dual-port RAM of ``buffers·rows·cols`` words (one write and one synchronous read per
cycle, BRAM-friendly); frame ``n`` lives in bank ``n mod buffers``, input beat ``k`` at address
``k`` of its bank. Output beat (r, c) is input beat ``c·rows + r``.

* The reader reads a beat as soon as it has been written: ``ahead > 0`` (``ahead`` = frames
  completely written − frames completely read) or ``wa > c·rows + r``. Row 0 therefore
  leaves once the first beat of the last column is in, and from then on the reader keeps
  pace with the writer (``cols`` output beats per input beat of the last column).
* The writer writes when a bank is free, ``ahead < buffers``: with ``buffers=1`` frame
  ``n+1`` is written after the last read of frame ``n``; with ``buffers=2`` while frame ``n``
  is read.
* The RAM's read register is the output register (as in :class:`~.fifo.StreamFIFO`); ``i.ready``
  and ``o.valid`` come from registers only.

Cycles
------
With the producer always valid and the consumer always ready
(:func:`lowbit_hdl.cost.transpose_cycles`), N = rows·cols: one frame takes
``2N − rows − cols + 2`` cycles from its first accepted input beat to its last output beat;
per frame in steady state ``N`` (``buffers=2``: the writer never waits and the reader just
keeps up) or ``2N − rows − cols + 2`` (``buffers=1``).
"""

from __future__ import annotations

from amaranth import Module, Mux, Shape, ShapeCastable, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..cost import transpose_bits, transpose_cycles, transpose_period
from .params import check_choice, check_int
from .payload import payload_shape
from .replay import check_buffers
from .rom import RAM_STYLES

__all__ = ["TransposeBuffer"]


class TransposeBuffer(wiring.Component):
    """Reorder frames of ``rows × cols`` beats from column-major to row-major.

    Input order: ``for c in cols: for r in rows``; output order: ``for r in rows: for c in
    cols``.

    Parameters
    ----------
    shape : int, Shape or ShapeCastable
        Payload: a bit count (unsigned) or any Amaranth shape or layout.
    rows, cols : int
        Frame size (≥ 1 each); in a tiled convolution ``rows`` = P output pixels, ``cols`` =
        NF tiles.
    buffers : int
        1 or 2 banks of ``rows·cols`` words; with 2 the next frame is written while the
        current one is read.
    ram_style : str
        ``"auto"``, ``"block"`` or ``"distributed"`` (Xilinx ``ram_style`` of the RAM).

    Attributes
    ----------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(shape))

    Raises
    ------
    TypeError
        If ``shape`` is not a bit count or shape, a count is not an int or ``ram_style`` not a
        str.
    ValueError
        If a count is below 1, ``buffers`` is not 1 or 2, or ``ram_style`` is unknown.
    """

    latency = 2

    def __init__(self, shape: int | Shape | ShapeCastable, rows: int, cols: int,
                 buffers: int = 2, ram_style: str = "auto") -> None:
        shape = payload_shape(shape, "TransposeBuffer")
        self.shape = shape
        self.width = Shape.cast(shape).width
        self.rows = check_int("rows", rows)
        self.cols = check_int("cols", cols)
        self.buffers = check_buffers(buffers)
        self.ram_style = check_choice("ram_style", ram_style, RAM_STYLES)
        super().__init__({"i": In(stream.Signature(shape)),
                          "o": Out(stream.Signature(shape))})

    # -- figures ------------------------------------------------------------------------------

    @property
    def frame_beats(self) -> int:
        """Beats per frame: ``rows·cols``."""
        return self.rows * self.cols

    @property
    def depth(self) -> int:
        """RAM words: ``buffers·rows·cols``."""
        return self.buffers * self.frame_beats

    @property
    def buffer_bits(self) -> int:
        """RAM bits (:func:`lowbit_hdl.cost.transpose_bits`)."""
        return transpose_bits(self.width, self.rows, self.cols, self.buffers)

    @property
    def cycles_per_frame(self) -> int:
        """Steady-state cycles per frame (:func:`lowbit_hdl.cost.transpose_period`)."""
        return transpose_period(self.rows, self.cols, self.buffers)

    def cycles(self, frames: int = 1) -> int:
        """Cycles of ``frames`` back-to-back frames, first accepted input beat to last output
        beat (:func:`lowbit_hdl.cost.transpose_cycles`)."""
        return transpose_cycles(self.rows, self.cols, self.buffers,
                                check_int("frames", frames))

    # -- hardware -----------------------------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        rows, cols, nb = self.rows, self.cols, self.buffers
        n = rows * cols
        attrs = {} if self.ram_style == "auto" else {"ram_style": self.ram_style}
        m.submodules.ram = ram = memory.Memory(shape=self.shape, depth=nb * n, init=[],
                                               attrs=attrs)
        wp = ram.write_port()
        rp = ram.read_port(domain="sync")

        wa = Signal(range(n), name="wa")
        ra = Signal(range(n), name="ra")  # c·rows + r of the next output beat (r, c)
        r = Signal(range(rows), name="r")
        c = Signal(range(cols), name="c")
        ahead = Signal(range(nb + 1))  # frames written − frames read
        wbank = Signal(range(nb), name="wbank")
        rbank = Signal(range(nb), name="rbank")

        free = ahead < nb
        written = (ahead != 0) | (wa > ra)
        push = self.i.valid & free
        do_read = written & (~self.o.valid | self.o.ready)
        w_end = push & (wa == n - 1)
        r_end = do_read & (r == rows - 1) & (c == cols - 1)

        def addr(bank, a):
            return Mux(bank, a + n, a) if nb == 2 else a

        m.d.comb += [self.i.ready.eq(free),
                     wp.addr.eq(addr(wbank, wa)), wp.data.eq(self.i.payload), wp.en.eq(push),
                     rp.addr.eq(addr(rbank, ra)), rp.en.eq(do_read),
                     self.o.payload.eq(rp.data)]
        with m.If(push):
            m.d.sync += wa.eq(Mux(wa == n - 1, 0, wa + 1))
            if nb == 2:
                with m.If(wa == n - 1):
                    m.d.sync += wbank.eq(~wbank)
        with m.If(do_read):
            with m.If(c == cols - 1):
                m.d.sync += c.eq(0)
                with m.If(r == rows - 1):
                    m.d.sync += [r.eq(0), ra.eq(0)]
                    if nb == 2:
                        m.d.sync += rbank.eq(~rbank)
                with m.Else():
                    m.d.sync += [r.eq(r + 1), ra.eq(r + 1)]
            with m.Else():
                m.d.sync += [c.eq(c + 1), ra.eq(ra + rows)]
        m.d.sync += ahead.eq(ahead + w_end - r_end)
        with m.If(do_read):
            m.d.sync += self.o.valid.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m
