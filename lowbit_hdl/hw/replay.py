"""Replay buffer: stores a block of ``block`` beats and emits it ``repeats`` times.

Two uses in a tiled convolution: the feature-map buffer in front of the sliding window
(``block`` = one input frame in beats, ``repeats`` = NF output-channel tiles) and the weight-tile
cache in front of the MVTU's weight port (``block`` = SF beats of one tile, ``repeats`` = P
output pixels, ``buffers=2``).

Storage and control
-------------------
One simple dual-port RAM of ``buffers·block`` words (one write and one synchronous read per
cycle, BRAM-friendly); block ``n`` lives in bank ``n mod buffers``. Counters: the write address
``wa`` inside the block being written, the read address ``ra`` and repeat ``rr`` of the block
being read, and ``ahead`` = blocks completely written − blocks completely read
(``0 … buffers``).

* The reader reads word ``ra`` when it has been written: ``ahead > 0`` or ``wa > ra``. So the
  first replay of a block follows the writer at one beat per cycle, it need not wait for the
  whole block.
* The writer writes word ``wa`` when its bank is free: ``ahead < buffers``, or the block that
  occupies the bank is in its last replay and the reader has passed the word
  (``rr = repeats − 1`` and ``ra > wa``). So with ``buffers=1`` the next block is written
  behind the reader during the last replay.
* The RAM's read register is the output register (as in :class:`~.fifo.StreamFIFO`): a read
  is issued when ``o`` is empty or being emptied; ``i.ready`` and ``o.valid`` come from
  registers only.

Cycles
------
With the producer always valid and the consumer always ready
(:func:`lowbit_hdl.cost.replay_cycles`): ``block·repeats`` cycles per block in steady state
for either ``buffers`` (``block·repeats + 1`` for ``buffers=1, block=1``); F back-to-back
blocks take ``(F − 1)·period + block·repeats + 1`` cycles from the first accepted input beat
to the last output beat (an output beat is valid two cycles after its input beat was
accepted, ``latency = 2``). ``buffers=1`` needs the producer to deliver block ``n+1`` during
the last replay of block ``n``; ``buffers=2`` gives it the whole ``block·repeats`` cycles (a
bursty source such as DDR).
"""

from __future__ import annotations

from amaranth import Module, Mux, Shape, ShapeCastable, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..cost import replay_bits, replay_cycles, replay_period
from .params import check_choice, check_int
from .payload import payload_shape
from .rom import RAM_STYLES

__all__ = ["ReplayBuffer"]


def check_buffers(buffers: object) -> int:
    """``buffers`` as 1 or 2 (``TypeError`` / ``ValueError`` otherwise)."""
    buffers = check_int("buffers", buffers)
    if buffers > 2:
        raise ValueError(f"buffers={buffers} must be 1 or 2")
    return buffers


class ReplayBuffer(wiring.Component):
    """Store ``block`` beats from ``i``, emit them ``repeats`` times in order on ``o``.

    Parameters
    ----------
    shape : int, Shape or ShapeCastable
        Payload: a bit count (unsigned) or any Amaranth shape or layout (kept, so the streams
        connect to the owner's ports directly).
    block : int
        Beats per block (≥ 1).
    repeats : int
        Times each block is emitted (≥ 1).
    buffers : int
        1 or 2 banks of ``block`` words; with 2 the next block is written while the current one
        is replayed.
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

    def __init__(self, shape: int | Shape | ShapeCastable, block: int, repeats: int,
                 buffers: int = 2, ram_style: str = "auto") -> None:
        shape = payload_shape(shape, "ReplayBuffer")
        self.shape = shape
        self.width = Shape.cast(shape).width
        self.block = check_int("block", block)
        self.repeats = check_int("repeats", repeats)
        self.buffers = check_buffers(buffers)
        self.ram_style = check_choice("ram_style", ram_style, RAM_STYLES)
        super().__init__({"i": In(stream.Signature(shape)),
                          "o": Out(stream.Signature(shape))})

    # -- figures ------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """RAM words: ``buffers·block``."""
        return self.buffers * self.block

    @property
    def buffer_bits(self) -> int:
        """RAM bits: ``buffers·block·width`` (:func:`lowbit_hdl.cost.replay_bits`)."""
        return replay_bits(self.width, self.block, self.buffers)

    @property
    def cycles_per_block(self) -> int:
        """Steady-state cycles per block (:func:`lowbit_hdl.cost.replay_period`)."""
        return replay_period(self.block, self.repeats, self.buffers)

    def cycles(self, blocks: int = 1) -> int:
        """Cycles of ``blocks`` back-to-back blocks, first accepted input beat to last output
        beat (:func:`lowbit_hdl.cost.replay_cycles`)."""
        return replay_cycles(self.block, self.repeats, self.buffers, check_int("blocks", blocks))

    # -- hardware -----------------------------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        bl, rep, nb = self.block, self.repeats, self.buffers
        attrs = {} if self.ram_style == "auto" else {"ram_style": self.ram_style}
        m.submodules.ram = ram = memory.Memory(shape=self.shape, depth=nb * bl, init=[],
                                               attrs=attrs)
        wp = ram.write_port()
        rp = ram.read_port(domain="sync")

        wa = Signal(range(bl), name="wa")
        ra = Signal(range(bl), name="ra")
        rr = Signal(range(rep), name="rr")
        ahead = Signal(range(nb + 1))  # blocks written − blocks read
        wbank = Signal(range(nb), name="wbank")
        rbank = Signal(range(nb), name="rbank")

        last_rep = rr == rep - 1
        free = (ahead < nb) | ((ahead == nb) & last_rep & (ra > wa))
        written = (ahead != 0) | (wa > ra)
        push = self.i.valid & free
        do_read = written & (~self.o.valid | self.o.ready)
        w_end = push & (wa == bl - 1)
        r_end = do_read & (ra == bl - 1) & last_rep

        def addr(bank, a):
            return Mux(bank, a + bl, a) if nb == 2 else a

        m.d.comb += [self.i.ready.eq(free),
                     wp.addr.eq(addr(wbank, wa)), wp.data.eq(self.i.payload), wp.en.eq(push),
                     rp.addr.eq(addr(rbank, ra)), rp.en.eq(do_read),
                     self.o.payload.eq(rp.data)]
        with m.If(push):
            m.d.sync += wa.eq(Mux(wa == bl - 1, 0, wa + 1))
            if nb == 2:
                with m.If(wa == bl - 1):
                    m.d.sync += wbank.eq(~wbank)
        with m.If(do_read):
            with m.If(ra == bl - 1):
                m.d.sync += ra.eq(0)
                with m.If(last_rep):
                    m.d.sync += rr.eq(0)
                    if nb == 2:
                        m.d.sync += rbank.eq(~rbank)
                with m.Else():
                    m.d.sync += rr.eq(rr + 1)
            with m.Else():
                m.d.sync += ra.eq(ra + 1)
        m.d.sync += ahead.eq(ahead + w_end - r_end)
        with m.If(do_read):
            m.d.sync += self.o.valid.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m
