"""cocotb-side helpers shared by every testbench: clock/reset, stream sources and sinks with
random stalls, cycle stamps; :func:`pack` / :func:`unpack` (integer vectors ↔ stream words)
are :func:`lowbit_hdl.runtime.words.pack_word` / ``unpack_word``, the one packing rule.

Amaranth's Verilog backend names stream ports ``<name>__valid``, ``<name>__ready`` and
``<name>__payload``; the helpers take the prefix (e.g. ``"i"``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from ..runtime.words import pack_word as pack
from ..runtime.words import unpack_word as unpack

__all__ = ["start_clock_reset", "StreamSource", "StreamSink", "pack", "unpack", "CLOCK_NS"]

CLOCK_NS = 10


async def start_clock_reset(dut, cycles: int = 3) -> None:
    """Start a 100 MHz clock on ``dut.clk`` and hold ``dut.rst`` for ``cycles``."""
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


def _cycle() -> int:
    from cocotb.utils import get_sim_time

    return int(get_sim_time(unit="ns")) // CLOCK_NS


class StreamSource:
    """Drives ``<prefix>__valid/payload``; holds valid until accepted (AXI rule).

    ``stall`` is the probability of leaving valid low in a cycle where a word is pending.
    ``accepted_at`` records the cycle of every accepted word.
    """

    def __init__(self, dut, prefix: str, stall: float = 0.0, seed: int = 1,
                 extra: dict[str, Sequence[int]] | None = None) -> None:
        self.dut = dut
        self.clk = dut.clk
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload", None)
        self.extra = {k: getattr(dut, f"{prefix}__{k}") for k in (extra or {})}
        self.stall = stall
        self.rng = random.Random(seed)
        self.accepted_at: list[int] = []
        self.valid.value = 0

    async def send(self, words: Sequence[int], extra: dict[str, Sequence[int]] | None = None
                   ) -> None:
        """Send every word; returns after the last one was accepted."""
        i, n = 0, len(words)
        valid = False
        while i < n:
            await RisingEdge(self.clk)
            if not valid:
                valid = self.rng.random() >= self.stall
            self.valid.value = int(valid)
            if valid:
                if self.payload is not None:
                    self.payload.value = int(words[i])
                for k, sig in self.extra.items():
                    sig.value = int((extra or {})[k][i])
            await ReadOnly()
            if valid and int(self.ready.value):
                self.accepted_at.append(_cycle())
                i += 1
                valid = False
        await RisingEdge(self.clk)
        self.valid.value = 0


class StreamSink:
    """Accepts words on ``<prefix>__valid/ready/payload`` with random back-pressure.

    ``stall`` is the probability of deasserting ready in a cycle. Collected payloads are in
    ``words``, the cycle of each in ``cycles``.
    """

    def __init__(self, dut, prefix: str, stall: float = 0.0, seed: int = 2,
                 extra: Sequence[str] = ()) -> None:
        self.clk = dut.clk
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload", None)
        self.extra_sigs = {k: getattr(dut, f"{prefix}__{k}") for k in extra}
        self.stall = stall
        self.rng = random.Random(seed)
        self.words: list[int] = []
        self.extra: dict[str, list[int]] = {k: [] for k in extra}
        self.cycles: list[int] = []
        self.ready.value = 0

    async def receive(self, count: int, timeout_cycles: int = 1_000_000) -> list[int]:
        """Collect ``count`` words; raise ``TimeoutError`` after ``timeout_cycles`` idle."""
        idle = 0
        start = len(self.words)
        while len(self.words) - start < count:
            await RisingEdge(self.clk)
            ready = self.rng.random() >= self.stall
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and int(self.valid.value):
                self.words.append(int(self.payload.value) if self.payload is not None else 0)
                for k, sig in self.extra_sigs.items():
                    self.extra[k].append(int(sig.value))
                self.cycles.append(_cycle())
                idle = 0
            else:
                idle += 1
                if idle > timeout_cycles:
                    raise TimeoutError(f"no output for {timeout_cycles} cycles after "
                                       f"{len(self.words) - start} of {count} words")
        await RisingEdge(self.clk)
        self.ready.value = 0
        return self.words[start:]
