"""Stream FIFO: a RAM of ``depth`` words plus an output register, one beat per cycle.

``i.ready`` and ``o.valid`` both come straight from registers (no combinational path from
``o.ready`` to ``i.ready``), so a FIFO also breaks the ready chain of a pipeline.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .params import check_choice, check_int

__all__ = ["StreamFIFO"]

RAM_STYLES = ("auto", "block", "distributed", "registers")


class StreamFIFO(wiring.Component):
    """First-in first-out stream buffer.

    Throughput is one beat per cycle in and out (``cycles = beats``); a beat written into an
    empty FIFO is valid on the output two cycles later (``latency = 2``).

    Parameters
    ----------
    width : int
        Payload bits (a flat word: the FIFO does not look inside beats).
    depth : int
        Words of RAM (≥ 2). The FIFO holds up to ``depth + 1`` beats (RAM plus the output
        register).
    ram_style : str
        ``"auto"`` (let synthesis choose), ``"block"``, ``"distributed"`` or ``"registers"``
        (the Xilinx ``ram_style`` attribute of the RAM).

    Attributes
    ----------
    i, o : In/Out(stream.Signature(unsigned(width)))

    Raises
    ------
    TypeError
        If ``width``/``depth`` is not an int or ``ram_style`` not a str.
    ValueError
        If ``width < 1``, ``depth < 2`` or ``ram_style`` is unknown.
    """

    latency = 2

    def __init__(self, width: int, depth: int, ram_style: str = "auto") -> None:
        width = check_int("width", width)
        depth = check_int("depth", depth, 2, "(one beat per cycle needs two RAM words)")
        check_choice("ram_style", ram_style, RAM_STYLES)
        self.width, self.depth, self.ram_style = width, depth, ram_style
        super().__init__({"i": In(stream.Signature(unsigned(width))),
                          "o": Out(stream.Signature(unsigned(width)))})

    @property
    def capacity(self) -> int:
        """Beats the FIFO can hold: ``depth + 1``."""
        return self.depth + 1

    def elaborate(self, platform) -> Module:
        m = Module()
        depth = self.depth
        attrs = {} if self.ram_style == "auto" else {"ram_style": self.ram_style}
        m.submodules.ram = ram = memory.Memory(shape=unsigned(self.width), depth=depth,
                                               init=[], attrs=attrs)
        wp = ram.write_port()
        rp = ram.read_port(domain="sync")

        produce = Signal(range(depth))
        consume = Signal(range(depth))
        level = Signal(range(depth + 1))  # words in the RAM (not counting the output register)

        m.d.comb += self.i.ready.eq(level != depth)
        do_write = self.i.valid & self.i.ready
        do_read = (level != 0) & (~self.o.valid | self.o.ready)

        m.d.comb += [wp.addr.eq(produce), wp.data.eq(self.i.payload), wp.en.eq(do_write),
                     rp.addr.eq(consume), rp.en.eq(do_read),
                     self.o.payload.eq(rp.data)]
        with m.If(do_write):
            m.d.sync += produce.eq(Mux(produce == depth - 1, 0, produce + 1))
        with m.If(do_read):
            m.d.sync += consume.eq(Mux(consume == depth - 1, 0, consume + 1))
        m.d.sync += level.eq(level + do_write - do_read)
        with m.If(do_read):
            m.d.sync += self.o.valid.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m
