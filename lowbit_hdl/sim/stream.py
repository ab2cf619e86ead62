"""cocotb-side helpers shared by every testbench: clock/reset, stream sources and sinks with
random stalls, cycle stamps; :func:`pack` / :func:`unpack` (integer vectors ↔ stream words)
are :func:`lowbit_hdl.runtime.words.pack_word` / ``unpack_word``, the one packing rule.

Amaranth's Verilog backend names stream ports ``<name>__valid``, ``<name>__ready`` and
``<name>__payload``; the helpers take the prefix (e.g. ``"i"``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from ..runtime.words import pack_word as pack
from ..runtime.words import unpack_word as unpack

__all__ = ["start_clock_reset", "StreamSource", "StreamSink", "pack", "unpack", "cycle", "pulse",
           "CLOCK_NS", "STREAM", "AXIS"]

CLOCK_NS = 10


async def start_clock_reset(dut, cycles: int = 3) -> None:
    """Start a 100 MHz clock on ``dut.clk`` and hold ``dut.rst`` for ``cycles``."""
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def pulse(dut, sig) -> None:
    """Drive ``sig`` high for one clock cycle (from the next rising edge)."""
    await RisingEdge(dut.clk)
    sig.value = 1
    await RisingEdge(dut.clk)
    sig.value = 0


def cycle() -> int:
    """The current clock cycle (simulation time over :data:`CLOCK_NS`)."""
    from cocotb.utils import get_sim_time

    return int(get_sim_time(unit="ns")) // CLOCK_NS


#: port names (valid, ready, data) of an Amaranth ``lib.stream`` interface
STREAM = ("valid", "ready", "payload")
#: port names (valid, ready, data) of an AXI-Stream interface (``tlast`` etc. as extras)
AXIS = ("tvalid", "tready", "tdata")


class _StreamEnd:
    """The ports and stall generator shared by :class:`StreamSource` and :class:`StreamSink`."""

    def __init__(self, dut, prefix: str, stall: float, seed, extra: Sequence[str],
                 names: tuple[str, str, str], on_handshake: Callable[[], None] | None) -> None:
        self.clk = dut.clk
        valid, ready, data = names
        self.valid = getattr(dut, f"{prefix}__{valid}")
        self.ready = getattr(dut, f"{prefix}__{ready}")
        self.payload = getattr(dut, f"{prefix}__{data}", None)
        self.extra_sigs = {k: getattr(dut, f"{prefix}__{k}") for k in extra}
        self.stall = stall
        self.rng = random.Random(seed)
        self.on_handshake = on_handshake

    def _handshake(self, stamps: list[int]) -> None:
        stamps.append(cycle())
        if self.on_handshake is not None:
            self.on_handshake()


class StreamSource(_StreamEnd):
    """Drives ``<prefix>__valid`` and the data port; holds valid until accepted (AXI rule).

    Parameters
    ----------
    dut
        The cocotb handle of the top level (with ``clk``).
    prefix : str
        Port prefix, e.g. ``"i"`` or ``"s_axis"``.
    stall : float
        Probability of leaving valid low in a cycle where a word is pending. With 0 the
        source sleeps on ``ready`` edges instead of waking every cycle (same cycles, faster
        for long runs).
    seed
        Seed of the stall pattern (anything :class:`random.Random` takes).
    extra : sequence of str
        Side-band ports driven with every word (e.g. ``("tlast",)``).
    names : tuple of str
        (valid, ready, data) port names: :data:`STREAM` (default) or :data:`AXIS`.
    on_handshake : callable, optional
        Called at every accepted word (e.g. a watchdog's kick).

    ``accepted_at`` records the cycle of every accepted word.
    """

    def __init__(self, dut, prefix: str, stall: float = 0.0, seed=1,
                 extra: Sequence[str] = (), names: tuple[str, str, str] = STREAM,
                 on_handshake: Callable[[], None] | None = None) -> None:
        super().__init__(dut, prefix, stall, seed, extra, names, on_handshake)
        self.accepted_at: list[int] = []
        self.valid.value = 0

    async def send(self, words: Sequence[int], extra: dict[str, Sequence[int]] | None = None
                   ) -> None:
        """Send every word (and its side-band values); returns after the last was accepted."""
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
                for k, sig in self.extra_sigs.items():
                    sig.value = int((extra or {})[k][i])
            await ReadOnly()
            if not valid:
                continue
            if not self.stall:
                while not int(self.ready.value):
                    await RisingEdge(self.ready)
                    await ReadOnly()
            elif not int(self.ready.value):
                continue
            self._handshake(self.accepted_at)
            i += 1
            valid = False
        await RisingEdge(self.clk)
        self.valid.value = 0
        for sig in self.extra_sigs.values():
            sig.value = 0


class StreamSink(_StreamEnd):
    """Accepts words on ``<prefix>__valid/ready`` and the data port with random back-pressure.

    Parameters are those of :class:`StreamSource` (``stall`` is the probability of
    deasserting ready in a cycle; with 0 the sink sleeps on ``valid`` edges). ``extra``
    side-band ports are sampled with every word. Collected words are in ``words``, side-band
    values in ``extra[name]``, the cycle of each word in ``cycles``.
    """

    def __init__(self, dut, prefix: str, stall: float = 0.0, seed=2,
                 extra: Sequence[str] = (), names: tuple[str, str, str] = STREAM,
                 on_handshake: Callable[[], None] | None = None) -> None:
        super().__init__(dut, prefix, stall, seed, extra, names, on_handshake)
        self.words: list[int] = []
        self.extra: dict[str, list[int]] = {k: [] for k in extra}
        self.cycles: list[int] = []
        self.ready.value = 0

    async def receive(self, count: int, timeout_cycles: int | None = 1_000_000) -> list[int]:
        """Collect ``count`` words; raise ``TimeoutError`` after ``timeout_cycles`` cycles
        without a word (``None``: no limit, e.g. under an external watchdog)."""
        idle = 0
        start = len(self.words)
        while len(self.words) - start < count:
            await RisingEdge(self.clk)
            ready = self.rng.random() >= self.stall
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and not self.stall and timeout_cycles is None:
                while not int(self.valid.value):
                    await RisingEdge(self.valid)
                    await ReadOnly()
            if ready and int(self.valid.value):
                self.words.append(int(self.payload.value) if self.payload is not None else 0)
                for k, sig in self.extra_sigs.items():
                    self.extra[k].append(int(sig.value))
                self._handshake(self.cycles)
                idle = 0
            else:
                idle += 1
                if timeout_cycles is not None and idle > timeout_cycles:
                    raise TimeoutError(f"no output for {timeout_cycles} cycles after "
                                       f"{len(self.words) - start} of {count} words")
        await RisingEdge(self.clk)
        self.ready.value = 0
        return self.words[start:]
