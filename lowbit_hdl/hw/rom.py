"""Read-only parameter memories (weights, thresholds) with a one-cycle read."""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Const, Module, Value, unsigned
from amaranth.lib.memory import Memory

from ..ir import RAM_STYLES

__all__ = ["RAM_STYLES", "ROM_LOGIC_MAX_BITS", "ROM_LOGIC_MAX_DEPTH", "rom_read", "rom_style"]

#: read-only memories built as LUT logic at ``ram_style="auto"``: up to this many bits at any
#: depth, or at most this many words deep at any width (larger ones go to block RAM)
ROM_LOGIC_MAX_BITS = 4096
ROM_LOGIC_MAX_DEPTH = 256


def rom_style(width: int, depth: int, ram_style: str = "auto") -> str:
    """How a ``depth × width`` read-only memory is built: ``ram_style`` itself, or for
    ``"auto"`` ``"logic"`` when it is small (:data:`ROM_LOGIC_MAX_BITS`,
    :data:`ROM_LOGIC_MAX_DEPTH`) and ``"block"`` otherwise.

    The resource estimate and :func:`rom_read` both follow this rule, so the RTL is built
    the way the estimate counts it (synthesis left to itself turned some larger ROMs, such
    as 288 × 24-bit INT8 weight memories, into thousands of LUTs).
    """
    if ram_style not in RAM_STYLES:
        raise ValueError(f"ram_style={ram_style!r} must be one of {RAM_STYLES}")
    if ram_style != "auto":
        return ram_style
    small = width * depth <= ROM_LOGIC_MAX_BITS or depth <= ROM_LOGIC_MAX_DEPTH
    return "logic" if small else "block"


def rom_read(m: Module, name: str, words: Sequence[int], width: int, addr: Value,
             ram_style: str = "auto") -> Value:
    """Word ``words[addr]`` one cycle after ``addr`` (synchronous read port).

    A single-word table is a constant (no memory, no latency). ``ram_style`` other than
    ``"auto"`` is put on the memory as the Vivado/Yosys ``ram_style`` attribute; an
    ``"auto"`` memory that :func:`rom_style` puts in block RAM gets ``ram_style="block"``.
    """
    if len(words) == 1:
        return Const(int(words[0]), unsigned(width))
    style = rom_style(width, len(words), ram_style)
    attrs = None if ram_style == "auto" and style != "block" else {"ram_style": style}
    mem = Memory(shape=unsigned(width), depth=len(words), init=[int(w) for w in words],
                 attrs=attrs)
    m.submodules[name] = mem
    port = mem.read_port()
    m.d.comb += port.addr.eq(addr)
    return port.data
