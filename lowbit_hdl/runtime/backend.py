"""Board back-ends: the interface every board implements and the one place that talks to
PYNQ (the fake PYNQ and the simulated board of the development machine are in
:mod:`lowbit_hdl.sim`).

How a batch travels (AXI DMA in simple mode, as PYNQ drives it):

* The input frames are packed (:class:`~lowbit_hdl.runtime.layout.StreamLayout`) into one
  contiguous ``uint8`` buffer from ``pynq.allocate`` and sent in **one MM2S transfer** per
  call (the DMA asserts ``tlast`` on the last beat of a transfer; the design counts beats, so
  the input ``tlast`` carries no meaning). With ``per_frame`` every frame is its own
  transfer, so ``tlast`` also marks every input frame.
* The design ends every output frame with ``tlast``, and an S2MM transfer ends at ``tlast``,
  so the output is received with **one S2MM transfer per frame**, each into its own slot of
  one receive buffer (slots ``out_stride`` bytes apart, aligned for the DMA's memory width).
* The receive channel is armed before the send channel is started, waits come after, and a
  transfer that delivers fewer bytes than a frame is a framing error.
* Buffers are allocated once by the caller and reused; the send buffer is flushed from the
  CPU caches before the DMA reads it and the receive buffer invalidated after the DMA wrote
  it (PYNQ ≥ 2.6 also does this inside ``transfer``/``wait``; doing it here costs little and
  keeps older images right).

Numpy and the standard library only; ``pynq`` is imported when a :class:`PynqBackend` loads
its overlay.
"""

from __future__ import annotations

import importlib
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BackendError",
    "Framing",
    "StreamStats",
    "Backend",
    "PynqBackend",
    "RECV_ALIGN",
]

#: byte alignment of every DMA start address the runtime uses: a multiple of the widest
#: AXI DMA memory-map data width (1024 bits), so transfers stay aligned without the DRE
RECV_ALIGN = 128


class BackendError(RuntimeError):
    """The board (or its stand-in) did not do what the runtime asked."""


@dataclass(frozen=True)
class Framing:
    """Where frames sit in the send and receive buffers and how wide the beats are."""

    in_frame_bytes: int
    out_frame_bytes: int
    in_beat_bytes: int
    out_beat_bytes: int
    in_stride: int  # bytes from one input frame to the next in the send buffer
    out_stride: int  # bytes from one output slot to the next in the receive buffer
    per_frame: bool = False  # one MM2S transfer per frame instead of one per call

    def __post_init__(self) -> None:
        if not self.per_frame and self.in_stride != self.in_frame_bytes:
            raise ValueError("one send transfer per call needs in_stride == in_frame_bytes")
        if self.in_stride < self.in_frame_bytes or self.out_stride < self.out_frame_bytes:
            raise ValueError("a stride is smaller than its frame")
        if self.out_stride % RECV_ALIGN or (self.per_frame and self.in_stride % RECV_ALIGN):
            raise ValueError(f"strides used as DMA offsets must be multiples of {RECV_ALIGN}")

    @classmethod
    def for_layout(cls, layout: Any, per_frame: bool = False) -> Framing:
        """The framing the runtime uses for a :class:`DesignLayout`."""
        def align(n: int) -> int:
            return -(-n // RECV_ALIGN) * RECV_ALIGN
        ifb, ofb = layout.input.frame_bytes, layout.output.frame_bytes
        return cls(ifb, ofb, layout.input.beat_bytes, layout.output.beat_bytes,
                   align(ifb) if per_frame else ifb, align(ofb), per_frame)

    def send_bytes(self, frames: int) -> int:
        """Size of the send buffer region used for ``frames`` frames."""
        return frames * self.in_stride

    def recv_bytes(self, frames: int) -> int:
        return frames * self.out_stride


@dataclass
class StreamStats:
    """What one :meth:`Backend.stream` call measured."""

    frames: int
    seconds: float  # wall time on a board, simulated time on the simulated board
    send_transfers: int = 0
    recv_transfers: int = 0
    simulated: bool = False
    cycles: int | None = None  # first input beat accepted … last output beat (simulated)
    latency_cycles: list[int] | None = None  # per frame, first input beat … tlast out
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """What :class:`~lowbit_hdl.runtime.accelerator.Accelerator` needs from a board."""

    #: a bitstream and ``.hwh`` are needed (False for the simulated board)
    requires_bitstream: bool = True
    #: cycle-level figures come from a simulation
    simulated: bool = False
    #: largest DMA transfer in bytes, known after :meth:`load` (None: no limit known)
    max_transfer_bytes: int | None = None

    @abstractmethod
    def load(self, bitfile: Path | None, dma_name: str) -> None:
        """Configure the programmable logic with ``bitfile`` and find the DMA ``dma_name``."""

    @abstractmethod
    def allocate(self, nbytes: int) -> np.ndarray:
        """A physically contiguous ``uint8`` buffer of ``nbytes`` (allocate once, reuse)."""

    @abstractmethod
    def stream(self, send: np.ndarray, recv: np.ndarray, frames: int, framing: Framing,
               timeout_s: float = 10.0) -> StreamStats:
        """Send ``frames`` packed frames from ``send`` and receive their outputs into
        ``recv`` (slot ``k`` at ``k * framing.out_stride``)."""

    def power(self) -> dict[str, float] | None:
        """Power per rail in watts where the board reports it, else ``None``."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to free by default
        """Free buffers and other resources."""


def _cache_op(buf: Any, op: str) -> None:
    fn = getattr(buf, op, None)
    if callable(fn):
        fn()


class PynqBackend(Backend):
    """The real board: ``pynq.Overlay``, ``pynq.allocate`` and the AXI DMA driver.

    ``pynq_module`` replaces ``import pynq`` (tests pass the fake PYNQ of
    :mod:`lowbit_hdl.sim.fakepynq`).
    """

    def __init__(self, pynq_module: Any = None) -> None:
        self._pynq = pynq_module
        self._overlay: Any = None
        self._dma: Any = None
        self._buffers: list[Any] = []

    @property
    def pynq(self) -> Any:
        if self._pynq is None:
            try:
                self._pynq = importlib.import_module("pynq")
            except ImportError as e:
                raise BackendError("the pynq package is not installed: run on a PYNQ board, "
                                   "or use the simulated board (python -m lowbit_hdl "
                                   "deploy-sim) on a development machine") from e
        return self._pynq

    def load(self, bitfile: Path | None, dma_name: str) -> None:
        if bitfile is None:
            raise BackendError("PynqBackend needs a bitstream")
        self._overlay = self.pynq.Overlay(str(bitfile))
        try:
            self._dma = getattr(self._overlay, dma_name)
        except AttributeError as e:
            names = sorted(getattr(self._overlay, "ip_dict", {}) or {})
            raise BackendError(f"overlay {Path(bitfile).name} has no IP named {dma_name!r} "
                               f"(IP: {names})") from e
        if getattr(self._dma, "sendchannel", None) is None or \
                getattr(self._dma, "recvchannel", None) is None:
            raise BackendError(f"{dma_name} needs both an MM2S (send) and an S2MM (receive) "
                               "channel")
        size = getattr(self._dma, "buffer_max_size", None)
        self.max_transfer_bytes = int(size) if size else None

    def allocate(self, nbytes: int) -> np.ndarray:
        buf = self.pynq.allocate(shape=(int(nbytes),), dtype=np.uint8)
        self._buffers.append(buf)
        return buf

    def _wait(self, ch: Any, what: str, deadline: float, timeout_s: float) -> None:
        if hasattr(ch, "idle"):
            while not ch.idle:
                if time.perf_counter() > deadline:
                    self._abort()
                    raise BackendError(f"DMA {what} did not finish within {timeout_s:g} s: "
                                       "the accelerator stalled, or its output has fewer "
                                       "beats than layout.json says (both DMA channels "
                                       "were stopped and restarted)")
        ch.wait()

    def _abort(self) -> None:
        """Stop and restart both channels (aborts the hung transfers) so that the
        accelerator object stays usable; best effort."""
        for ch in (self._dma.recvchannel, self._dma.sendchannel):
            for op in ("stop", "start"):
                fn = getattr(ch, op, None)
                if callable(fn):
                    try:
                        fn()
                    except Exception:  # noqa: BLE001 - recovery must not mask the timeout
                        pass

    def stream(self, send: np.ndarray, recv: np.ndarray, frames: int, framing: Framing,
               timeout_s: float = 10.0) -> StreamStats:
        if self._dma is None:
            raise BackendError("load() the overlay before streaming")
        sc, rc = self._dma.sendchannel, self._dma.recvchannel
        f = framing
        chunks = [(k, k + 1) for k in range(frames)] if f.per_frame else [(0, frames)]
        n_send = n_recv = 0
        _cache_op(send, "flush")
        t0 = time.perf_counter()
        deadline = t0 + timeout_s
        for a, b in chunks:
            # arm the receive channel first, then start the send
            rc.transfer(recv, start=a * f.out_stride, nbytes=f.out_frame_bytes)
            n_recv += 1
            sc.transfer(send, start=a * f.in_stride, nbytes=(b - a) * f.in_frame_bytes)
            n_send += 1
            for k in range(a, b):
                self._wait(rc, f"receive of output frame {k}", deadline, timeout_s)
                got = getattr(rc, "transferred", f.out_frame_bytes)
                if int(got) != f.out_frame_bytes:
                    raise BackendError(f"output frame {k}: the DMA received {int(got)} bytes, "
                                       f"expected {f.out_frame_bytes} (tlast in the wrong "
                                       "place: the design does not match layout.json)")
                if k + 1 < b:
                    rc.transfer(recv, start=(k + 1) * f.out_stride, nbytes=f.out_frame_bytes)
                    n_recv += 1
            self._wait(sc, "send", deadline, timeout_s)
        t1 = time.perf_counter()
        _cache_op(recv, "invalidate")
        return StreamStats(frames, t1 - t0, n_send, n_recv)

    def power(self) -> dict[str, float] | None:
        get_rails = getattr(self.pynq, "get_rails", None)
        if get_rails is None:
            return None
        try:
            rails = get_rails()
        except Exception:  # noqa: BLE001 - boards without PMBus raise all sorts
            return None
        out: dict[str, float] = {}
        for name, rail in (rails or {}).items():
            sensor = getattr(rail, "power", None)
            if sensor is None:
                continue
            try:
                out[str(name)] = float(sensor.value)
            except (TypeError, ValueError, OSError):
                continue
        return out or None

    def close(self) -> None:
        for buf in self._buffers:
            fn = getattr(buf, "freebuffer", None) or getattr(buf, "close", None)
            if callable(fn):
                fn()
        self._buffers.clear()
