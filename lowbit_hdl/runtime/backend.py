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
* Every wait polls the channel's status register (``DMASR``) until the channel is idle, and
  stops at an error bit or at the deadline: a DMA error (an output frame longer than the
  layout says sets ``DMAIntErr``; ``DMASlvErr``/``DMADecErr`` come from memory accesses), a
  framing error and a timeout each raise their own :class:`BackendError` after the DMA was
  reset through its control register with a bounded wait. PYNQ's own ``stop()``/``start()``
  spin without a timeout (``start()`` forever while an error is latched), so the runtime
  calls ``start()`` only once the channel runs again.
* Buffers are allocated once by the caller and reused; the send buffer is flushed from the
  CPU caches before the DMA reads it and the receive buffer invalidated after the DMA wrote
  it (PYNQ ≥ 2.6 also does this inside ``transfer``/``wait``; doing it here costs little and
  keeps older images right).

The driver's registers are reached through :class:`DmaRegisters`, the one place that knows
how PYNQ exposes them (``DefaultIP.mmio`` in PYNQ 2.7, 3.0 and 3.1, the versions of the
PYNQ-Z2 images).

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
    "OverlayError",
    "DmaError",
    "DmaTimeoutError",
    "FramingError",
    "DmaResetError",
    "DmaRegisters",
    "decode_status",
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


class OverlayError(BackendError):
    """PYNQ could not load the overlay, or the overlay is no longer loaded (another
    bitstream was downloaded since), or it lacks the DMA."""


# -- the AXI DMA's registers (PG021, direct register mode) ----------------------------------

#: byte offset of each channel's register block (MM2S: send, S2MM: receive)
CHANNEL_BASE = {"MM2S": 0x00, "S2MM": 0x30}
#: byte offsets within a channel's block: control, status, transfer length
DMACR, DMASR, LENGTH = 0x00, 0x04, 0x28
#: DMACR bits: run/stop, soft reset of the whole DMA (clears itself when done)
DMACR_RS, DMACR_RESET = 1 << 0, 1 << 2
#: the DMASR bits the runtime reads, by PG021's names
DMASR_BITS = {"Halted": 0, "Idle": 1, "DMAIntErr": 4, "DMASlvErr": 5, "DMADecErr": 6,
              "IOC_Irq": 12, "Err_Irq": 14}
DMASR_HALTED = 1 << DMASR_BITS["Halted"]
DMASR_IDLE = 1 << DMASR_BITS["Idle"]
#: the error bits: latched until the DMA is reset, and the channel halts
DMASR_ERRORS = sum(1 << DMASR_BITS[n] for n in ("DMAIntErr", "DMASlvErr", "DMADecErr"))

#: what each error bit means for this runtime, per channel
_ERROR_CAUSES = {
    ("S2MM", "DMAIntErr"): "an output frame is longer than layout.json says (the S2MM "
                           "transfer was full before tlast): the design and layout.json come "
                           "from different builds",
    ("MM2S", "DMAIntErr"): "internal error of the send channel (transfer length 0?)",
    ("S2MM", "DMASlvErr"): "a memory write was refused (AXI SLVERR)",
    ("MM2S", "DMASlvErr"): "a memory read was refused (AXI SLVERR)",
    ("S2MM", "DMADecErr"): "a memory write went to an address nothing decodes (AXI DECERR)",
    ("MM2S", "DMADecErr"): "a memory read went to an address nothing decodes (AXI DECERR)",
}


def decode_status(status: int) -> tuple[str, ...]:
    """The names of the set bits of a channel's ``DMASR`` that the runtime knows (PG021)."""
    if not isinstance(status, int):
        raise TypeError(f"status must be an int, got {type(status).__name__}")
    return tuple(name for name, bit in DMASR_BITS.items() if status >> bit & 1)


def _channel_words(channel: str) -> str:
    return f"{channel} ({'send' if channel == 'MM2S' else 'receive'})"


class DmaError(BackendError):
    """A DMA channel reported an error in its status register.

    Attributes
    ----------
    channel : str
        ``"MM2S"`` (send) or ``"S2MM"`` (receive).
    frame : int or None
        The output frame being received (S2MM) or the first frame of the send (MM2S).
    status : int or None
        The channel's ``DMASR`` when the error was seen.
    flags : tuple of str
        ``status`` decoded (:func:`decode_status`).
    """

    def __init__(self, message: str, *, channel: str, frame: int | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.channel = channel
        self.frame = frame
        self.status = status
        self.flags = decode_status(status) if status is not None else ()


class DmaTimeoutError(DmaError):
    """A transfer did not finish within the timeout, without an error bit."""


class FramingError(DmaError):
    """An output frame ended (``tlast``) before as many bytes as ``layout.json`` says."""


class DmaResetError(DmaError):
    """The DMA did not come out of reset, or a channel did not run again, in time."""


def _status_text(status: int) -> str:
    return f"DMASR=0x{status:08x} [{', '.join(decode_status(status)) or 'no flags'}]"


class DmaRegisters:
    """Register access to one AXI DMA (PG021, direct register mode), with bounded waits.

    The one place that knows how a PYNQ DMA driver exposes its registers: ``dma.mmio``
    (``DefaultIP.mmio``, an ``MMIO`` with ``read(offset)`` and ``write(offset, int)``) in
    PYNQ 2.7, 3.0 and 3.1; the simple-mode channels use the same object.
    """

    def __init__(self, mmio: Any) -> None:
        if not (callable(getattr(mmio, "read", None)) and callable(getattr(mmio, "write", None))):
            raise TypeError(f"mmio must have read(offset) and write(offset, value), got "
                            f"{type(mmio).__name__}")
        self.mmio = mmio

    @classmethod
    def of(cls, dma: Any) -> DmaRegisters:
        """The registers of a PYNQ DMA driver object."""
        mmio = getattr(dma, "mmio", None)
        if mmio is None:
            raise BackendError(f"the DMA driver {type(dma).__name__} has no register access "
                               "(mmio): the runtime supports pynq 2.7, 3.0 and 3.1 (the "
                               "PYNQ-Z2 images)")
        return cls(mmio)

    def read(self, channel: str, offset: int) -> int:
        return int(self.mmio.read(CHANNEL_BASE[channel] + offset))

    def write(self, channel: str, offset: int, value: int) -> None:
        self.mmio.write(CHANNEL_BASE[channel] + offset, int(value))

    def status(self, channel: str) -> int:
        """The channel's ``DMASR``."""
        return self.read(channel, DMASR)

    def reset(self, timeout_s: float) -> None:
        """Soft-reset the whole DMA (both channels halt, errors clear, transfers are
        dropped) and wait until the reset bit clears; :class:`DmaResetError` after
        ``timeout_s``."""
        self.write("MM2S", DMACR, DMACR_RESET)
        deadline = time.perf_counter() + timeout_s
        while self.read("MM2S", DMACR) & DMACR_RESET:
            if time.perf_counter() > deadline:
                raise DmaResetError(f"the DMA did not come out of reset within {timeout_s:g} s "
                                    "(an AXI transfer hangs)", channel="MM2S",
                                    status=self.status("MM2S"))

    def run(self, channel: str, timeout_s: float) -> None:
        """Set the channel's run bit and wait until it is no longer halted;
        :class:`DmaResetError` after ``timeout_s`` (an error is still latched)."""
        self.write(channel, DMACR, self.read(channel, DMACR) | DMACR_RS)
        deadline = time.perf_counter() + timeout_s
        while (st := self.status(channel)) & DMASR_HALTED:
            if time.perf_counter() > deadline:
                raise DmaResetError(f"DMA {_channel_words(channel)} did not start within "
                                    f"{timeout_s:g} s: {_status_text(st)}", channel=channel,
                                    status=st)


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

    # -- hybrid designs: the accelerator's AXI4-Lite control port and DDR buffers -------------

    def open_control(self, name: str) -> None:
        """Find the accelerator's control port (block-design cell ``name``); a design whose
        weights live in DDR needs it (:mod:`lowbit_hdl.runtime.control`)."""
        raise BackendError(f"{type(self).__name__} has no control port: it cannot run a "
                           "design that reads weights from DDR")

    def read_control(self, offset: int) -> int:
        """One 32-bit control register (after :meth:`open_control`)."""
        raise BackendError(f"{type(self).__name__} has no control port")

    def write_control(self, offset: int, value: int) -> None:
        """Write one 32-bit control register (after :meth:`open_control`)."""
        raise BackendError(f"{type(self).__name__} has no control port")

    def physical_address(self, buf: np.ndarray) -> int:
        """Bus address of a buffer from :meth:`allocate` (what the design's DMA reads)."""
        raise BackendError(f"{type(self).__name__} has no physical addresses")


def _cache_op(buf: Any, op: str) -> None:
    fn = getattr(buf, op, None)
    if callable(fn):
        fn()


class PynqBackend(Backend):
    """The real board: ``pynq.Overlay``, ``pynq.allocate`` and the AXI DMA driver.

    ``pynq_module`` replaces ``import pynq`` (tests pass the fake PYNQ of
    :mod:`lowbit_hdl.sim.fakepynq`); ``reset_timeout_s`` bounds the DMA reset after a fault.

    A DMA error, a framing error or a timeout raises :class:`DmaError`,
    :class:`FramingError` or :class:`DmaTimeoutError` after the DMA was reset and both
    channels run again, so the next :meth:`stream` can go on. A DMA reset does not reset the
    accelerator: it may still hold part of the failed batch, so reload the bitstream (a new
    ``Accelerator``) before trusting results again. When the reset itself fails
    (:class:`DmaResetError`), the backend refuses to stream until the overlay is loaded again.
    """

    def __init__(self, pynq_module: Any = None, reset_timeout_s: float = 1.0) -> None:
        if reset_timeout_s <= 0:
            raise ValueError(f"reset_timeout_s={reset_timeout_s} must be > 0")
        self._pynq = pynq_module
        self.reset_timeout_s = reset_timeout_s
        self._overlay: Any = None
        self._dma: Any = None
        self._regs: DmaRegisters | None = None
        self._broken: str | None = None  # why the DMA cannot be used until load() again
        self._buffers: list[Any] = []
        self._ctrl: Any = None  # the accelerator's AXI4-Lite port (hybrid designs)

    @property
    def pynq(self) -> Any:
        if self._pynq is None:
            try:
                self._pynq = importlib.import_module("pynq")
            except ImportError as e:
                raise BackendError("the pynq package is not installed: on a PYNQ board run "
                                   "the image's Python (sudo -E /usr/local/share/pynq-venv/"
                                   "bin/python3), on a development machine the simulated "
                                   "board (python -m lowbit_hdl deploy-sim)") from e
        return self._pynq

    def load(self, bitfile: Path | None, dma_name: str) -> None:
        if bitfile is None:
            raise BackendError("PynqBackend needs a bitstream")
        name = Path(bitfile).name
        try:
            self._overlay = self.pynq.Overlay(str(bitfile))
        except RuntimeError as e:
            raise OverlayError(f"PYNQ could not load {name}: {e}") from e
        try:
            self._dma = getattr(self._overlay, dma_name)
        except AttributeError as e:
            names = sorted(getattr(self._overlay, "ip_dict", {}) or {})
            raise OverlayError(f"overlay {name} has no IP named {dma_name!r} "
                               f"(IP: {names})") from e
        except RuntimeError as e:  # pynq's Overlay.__getattr__: "Overlay not currently loaded"
            raise OverlayError(f"overlay {name} is not loaded on the board ({e}): another "
                               "bitstream was downloaded meanwhile; load it again") from e
        if getattr(self._dma, "sendchannel", None) is None or \
                getattr(self._dma, "recvchannel", None) is None:
            raise OverlayError(f"{dma_name} needs both an MM2S (send) and an S2MM (receive) "
                               "channel")
        self._regs = DmaRegisters.of(self._dma)
        self._broken = None
        size = getattr(self._dma, "buffer_max_size", None)
        self.max_transfer_bytes = int(size) if size else None

    def allocate(self, nbytes: int) -> np.ndarray:
        buf = self.pynq.allocate(shape=(int(nbytes),), dtype=np.uint8)
        self._buffers.append(buf)
        return buf

    # -- faults ------------------------------------------------------------------------------

    def _recover(self) -> str:
        """Reset the DMA (bounded) and run both channels again; what happened, for the
        error message. PYNQ's ``start()`` is called only once its channel runs (it spins
        without a timeout otherwise); it re-allows a transfer on a channel not yet idle."""
        regs = self._regs
        assert regs is not None
        try:
            regs.reset(self.reset_timeout_s)
            for channel, ch in (("MM2S", self._dma.sendchannel),
                                ("S2MM", self._dma.recvchannel)):
                regs.run(channel, self.reset_timeout_s)
                ch.start()
        except DmaResetError as e:
            self._broken = str(e)
            return (f"; the DMA reset failed too ({e}): load the bitstream again (a new "
                    "Accelerator)")
        return ("; the DMA was reset and runs again (the accelerator itself was not reset: "
                "load the bitstream again before trusting further results)")

    def _fail(self, cls: type[DmaError], message: str, channel: str, frame: int | None,
              status: int | None = None) -> DmaError:
        return cls(message + self._recover(), channel=channel, frame=frame, status=status)

    def _wait(self, channel: str, ch: Any, frame: int, what: str, deadline: float,
              timeout_s: float) -> None:
        """Wait until ``channel`` is idle, then let PYNQ finish the transfer (cache
        invalidation, ``transferred``); raise at an error bit, a halt or the deadline."""
        regs = self._regs
        assert regs is not None
        other = "MM2S" if channel == "S2MM" else "S2MM"
        while True:
            st = regs.status(channel)
            # an error of the other channel stops this one as well (no input: no output)
            for c, cst in ((channel, st), (other, regs.status(other))):
                if cst & DMASR_ERRORS:
                    causes = "; ".join(_ERROR_CAUSES[c, n] for n in decode_status(cst)
                                       if (c, n) in _ERROR_CAUSES)
                    raise self._fail(DmaError, f"DMA {_channel_words(c)} error during {what}: "
                                     f"{_status_text(cst)}: {causes}", c, frame, cst)
            if st & DMASR_IDLE:
                break
            if st & DMASR_HALTED:
                raise self._fail(DmaError, f"DMA {_channel_words(channel)} halted during "
                                 f"{what} without an error bit: {_status_text(st)}",
                                 channel, frame, st)
            if time.perf_counter() > deadline:
                hint = ("the accelerator stalled, or its output has fewer frames or beats "
                        "than layout.json says" if channel == "S2MM" else
                        "the accelerator stopped taking input")
                raise self._fail(DmaTimeoutError, f"DMA {what} did not finish within "
                                 f"{timeout_s:g} s: {_status_text(st)}: {hint}",
                                 channel, frame, st)
        self._pynq_call(channel, ch.wait, frame, what)

    def _pynq_call(self, channel: str, fn: Any, frame: int, what: str, *args: Any,
                   **kwargs: Any) -> None:
        """``fn(*args, **kwargs)`` of a PYNQ channel; its ``RuntimeError`` (channel not
        started or not idle, a DMA error) becomes a :class:`DmaError`."""
        try:
            fn(*args, **kwargs)
        except RuntimeError as e:
            regs = self._regs
            assert regs is not None
            st = regs.status(channel)
            raise self._fail(DmaError, f"DMA {_channel_words(channel)} refused {what}: {e} "
                             f"({_status_text(st)})", channel, frame, st) from e

    # -- streaming ---------------------------------------------------------------------------

    def stream(self, send: np.ndarray, recv: np.ndarray, frames: int, framing: Framing,
               timeout_s: float = 10.0) -> StreamStats:
        if self._dma is None:
            raise BackendError("load() the overlay before streaming")
        if self._broken is not None:
            raise DmaResetError(f"the DMA is unusable since a failed reset ({self._broken}): "
                                "load the bitstream again (a new Accelerator)", channel="MM2S")
        sc, rc = self._dma.sendchannel, self._dma.recvchannel
        f = framing
        chunks = [(k, k + 1) for k in range(frames)] if f.per_frame else [(0, frames)]
        n_send = n_recv = 0
        _cache_op(send, "flush")
        t0 = time.perf_counter()
        deadline = t0 + timeout_s
        for a, b in chunks:
            # arm the receive channel first, then start the send
            self._pynq_call("S2MM", rc.transfer, a, f"receive of output frame {a}", recv,
                            start=a * f.out_stride, nbytes=f.out_frame_bytes)
            n_recv += 1
            self._pynq_call("MM2S", sc.transfer, a, f"send of frames {a}..{b - 1}", send,
                            start=a * f.in_stride, nbytes=(b - a) * f.in_frame_bytes)
            n_send += 1
            for k in range(a, b):
                self._wait("S2MM", rc, k, f"receive of output frame {k}", deadline, timeout_s)
                got = int(rc.transferred)
                if got != f.out_frame_bytes:
                    raise self._fail(FramingError, f"output frame {k}: the DMA received {got} "
                                     f"bytes, expected {f.out_frame_bytes} (tlast too early: "
                                     "the design does not match layout.json)", "S2MM", k)
                if k + 1 < b:
                    self._pynq_call("S2MM", rc.transfer, k + 1,
                                    f"receive of output frame {k + 1}", recv,
                                    start=(k + 1) * f.out_stride, nbytes=f.out_frame_bytes)
                    n_recv += 1
            self._wait("MM2S", sc, a, f"send of frames {a}..{b - 1}", deadline, timeout_s)
        t1 = time.perf_counter()
        _cache_op(recv, "invalidate")
        return StreamStats(frames, t1 - t0, n_send, n_recv)

    def open_control(self, name: str) -> None:
        if self._overlay is None:
            raise BackendError("load() the overlay before opening the control port")
        try:
            self._ctrl = getattr(self._overlay, name)
        except AttributeError as e:
            names = sorted(getattr(self._overlay, "ip_dict", {}) or {})
            raise OverlayError(f"overlay has no control port {name!r} (IP: {names}): the "
                               "bitstream is not a hybrid (DDR-weights) design") from e

    def read_control(self, offset: int) -> int:
        return int(self._ctrl.read(offset))

    def write_control(self, offset: int, value: int) -> None:
        self._ctrl.write(offset, int(value))

    def physical_address(self, buf: np.ndarray) -> int:
        addr = getattr(buf, "physical_address", None)
        if addr is None:
            addr = getattr(buf, "device_address", None)
        if addr is None:
            raise BackendError("the buffer has no physical address (not from pynq.allocate)")
        return int(addr)

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
