"""The two activation buffers of the engine: ``lib.memory.Memory`` s of ``buffer_words``
words of ``simd`` elements of ``A.bits`` bits, written whole (the loader assembles a word
from its beats, the writer merges its lanes into the word it read: no sub-byte write
enables, which block RAMs do not have).

Layout (one owner: ``lowbit_hdl.runtime.engine``): an H×W×C map is stored from word 0,
``word(y, x, cf) = (y·W + x)·CF + cf``, lane ``s`` of word ``cf`` = channel ``cf·simd + s``,
lanes of channels ≥ C hold code 0.

Each buffer has one synchronous read port (data the cycle after the address; ``r{b}_en``
low holds it; transparent: a write to the same word in the address cycle is seen) and one
word-wide write port. The datapath multiplexes
its clients (window reader, writer, loader, drain) onto them.
"""

from __future__ import annotations

from amaranth.hdl import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .params import EngineParams

__all__ = ["ActivationBuffers"]


class ActivationBuffers(wiring.Component):
    """Two activation buffers with one read and one word-wide write port each.

    Parameters
    ----------
    params : EngineParams

    Attributes
    ----------
    r0_addr, r0_en, r0_data, r1_addr, r1_en, r1_data
        Read ports (``rB_data`` is the word at the address of the previous enabled cycle).
    w0_addr, w0_en, w0_data, w1_addr, w1_en, w1_data
        Write ports (whole words).
    """

    def __init__(self, params: EngineParams) -> None:
        if not isinstance(params, EngineParams):
            raise TypeError(f"params={params!r} must be EngineParams")
        self.params = params
        aw = range(params.buffer_words)
        members = {}
        for b in (0, 1):
            members.update({
                f"r{b}_addr": In(aw), f"r{b}_en": In(1, init=1),
                f"r{b}_data": Out(unsigned(params.word_bits)),
                f"w{b}_addr": In(aw), f"w{b}_en": In(1),
                f"w{b}_data": In(unsigned(params.word_bits)),
            })
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        p = self.params
        for b in (0, 1):
            mem = Memory(shape=unsigned(p.word_bits), depth=p.buffer_words, init=[])
            m.submodules[f"buf{b}"] = mem
            wp = mem.write_port()
            rp = mem.read_port(transparent_for=(wp,))
            m.d.comb += [
                rp.addr.eq(getattr(self, f"r{b}_addr")), rp.en.eq(getattr(self, f"r{b}_en")),
                getattr(self, f"r{b}_data").eq(rp.data),
                wp.addr.eq(getattr(self, f"w{b}_addr")), wp.en.eq(getattr(self, f"w{b}_en")),
                wp.data.eq(getattr(self, f"w{b}_data")),
            ]
        return m
