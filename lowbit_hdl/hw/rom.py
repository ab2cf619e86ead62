"""Read-only parameter memories (weights, thresholds) with a one-cycle read."""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Const, Module, Value, unsigned
from amaranth.lib.memory import Memory

from ..ir import RAM_STYLES

__all__ = ["RAM_STYLES", "rom_read"]


def rom_read(m: Module, name: str, words: Sequence[int], width: int, addr: Value,
             ram_style: str = "auto") -> Value:
    """Word ``words[addr]`` one cycle after ``addr`` (synchronous read port).

    A single-word table is a constant (no memory, no latency). ``ram_style`` other than
    ``"auto"`` is put on the memory as the Vivado/Yosys ``ram_style`` attribute.
    """
    if len(words) == 1:
        return Const(int(words[0]), unsigned(width))
    attrs = None if ram_style == "auto" else {"ram_style": ram_style}
    mem = Memory(shape=unsigned(width), depth=len(words), init=[int(w) for w in words],
                 attrs=attrs)
    m.submodules[name] = mem
    port = mem.read_port()
    m.d.comb += port.addr.eq(addr)
    return port.data
