"""Board back-ends: the one place that talks to PYNQ, a fake PYNQ for tests, and the
interface the simulated board (:mod:`lowbit_hdl.runtime.simboard`) implements too.

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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .hwh import DmaConfig, dma_config

__all__ = [
    "BackendError",
    "Framing",
    "StreamStats",
    "Backend",
    "PynqBackend",
    "FakePynq",
    "FakePynqError",
    "FakeDevice",
    "FakeBuffer",
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

    ``pynq_module`` replaces ``import pynq`` (tests pass a :class:`FakePynq`).
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


# --------------------------------------------------------------------------------------------
# Fake PYNQ: records every call and checks it the way the hardware and the driver would
# --------------------------------------------------------------------------------------------


class FakePynqError(AssertionError):
    """The runtime used the (fake) PYNQ API in a way that fails or hangs on a board."""


class FakeBuffer(np.ndarray):
    """A ``pynq.allocate`` buffer: an ndarray (the CPU's cached view) plus the DRAM behind it,
    which the DMA reads and writes. ``flush`` copies view → DRAM, ``invalidate`` DRAM → view.
    """

    physical_address: int
    _fake: FakePynq
    _index: int
    _dram: np.ndarray
    freed: bool

    def __array_finalize__(self, obj: Any) -> None:
        # views and slices are not buffers of their own: the fake DMA rejects them
        self._fake = None  # type: ignore[assignment]
        self.freed = False

    def flush(self) -> None:
        self._fake._record("flush", self._index)
        self._dram[...] = self.view(np.ndarray)

    def invalidate(self) -> None:
        self._fake._record("invalidate", self._index)
        self.view(np.ndarray)[...] = self._dram

    def freebuffer(self) -> None:
        if self.freed:
            raise FakePynqError(f"buffer {self._index} freed twice")
        self._fake._record("freebuffer", self._index)
        self.freed = True

    close = freebuffer


class FakeDevice:
    """The design behind the fake DMA: whole input frames (bytes) → output frames (bytes).

    ``capacity`` is how many frames the design can take in while its output is not being
    received (a send transfer larger than that only finishes as outputs are received).
    """

    def __init__(self, in_frame_bytes: int, out_frame_bytes: int,
                 fn: Callable[[np.ndarray], np.ndarray], capacity: int = 2) -> None:
        self.in_frame_bytes = in_frame_bytes
        self.out_frame_bytes = out_frame_bytes
        self.fn = fn
        self.capacity = capacity
        self.frames_in = 0

    @classmethod
    def from_layout(cls, layout: Any, fn: Callable[[np.ndarray], np.ndarray],
                    capacity: int = 2) -> FakeDevice:
        """A device computing ``fn`` on integer frames (N, C, H, W), packed and unpacked by
        the layout's stream layouts."""
        def run(data: np.ndarray) -> np.ndarray:
            return layout.output.pack(fn(layout.input.unpack(data)))
        return cls(layout.input.frame_bytes, layout.output.frame_bytes, run, capacity)

    def process(self, data: np.ndarray) -> list[bytes]:
        n = data.size // self.in_frame_bytes
        out = np.asarray(self.fn(data.reshape(n, self.in_frame_bytes)), dtype=np.uint8)
        if out.shape != (n, self.out_frame_bytes):
            raise FakePynqError(f"fake device returned {out.shape}, expected "
                                f"{(n, self.out_frame_bytes)}")
        self.frames_in += n
        return [out[i].tobytes() for i in range(n)]


class _FakeChannel:
    def __init__(self, dma: _FakeDma, tx: bool) -> None:
        self.dma = dma
        self.tx = tx
        self.name = "send" if tx else "recv"
        self.active: dict[str, Any] | None = None
        self.transferred = 0
        self._max_size = dma.config.max_transfer_bytes

    @property
    def running(self) -> bool:
        return True

    def _check_buffer(self, array: Any, start: int, nbytes: int) -> int:
        fake = self.dma.fake
        if not isinstance(array, FakeBuffer) or array._fake is not fake:
            raise FakePynqError(f"{self.name}channel.transfer: buffer was not allocated with "
                                "pynq.allocate")
        if array.freed:
            raise FakePynqError(f"{self.name}channel.transfer: buffer {array._index} was freed")
        if array.dtype != np.uint8:
            raise FakePynqError(f"{self.name}channel.transfer: buffer dtype {array.dtype}, the "
                                "stream layout packs uint8 bytes")
        if not array.flags["C_CONTIGUOUS"]:
            raise FakePynqError(f"{self.name}channel.transfer: buffer is not contiguous")
        if nbytes == 0:
            nbytes = array.nbytes - start
        if start < 0 or nbytes <= 0 or start + nbytes > array.nbytes:
            raise FakePynqError(f"{self.name}channel.transfer: bytes [{start}, {start + nbytes})"
                                f" outside the {array.nbytes}-byte buffer")
        if nbytes > self._max_size:
            raise ValueError(f"Transfer size is {nbytes} bytes, which exceeds the maximum DMA "
                             f"buffer size {self._max_size}.")
        mem_bits = self.dma.config.mm2s_mem_bits if self.tx else self.dma.config.s2mm_mem_bits
        if (array.physical_address + start) % (mem_bits // 8):
            raise RuntimeError("DMA does not support unaligned transfers; Starting address "
                               f"must be aligned to {mem_bits // 8} bytes.")
        if self.active is not None:
            raise FakePynqError(f"{self.name}channel.transfer while the previous transfer was "
                                "not waited for (DMA channel not idle)")
        return nbytes

    def transfer(self, array: Any, start: int = 0, nbytes: int = 0) -> None:
        nbytes = self._check_buffer(array, start, nbytes)
        self.dma.fake._record(f"{self.name}.transfer", array._index, start, nbytes)
        self.transferred = 0
        if self.tx:
            self.dma.start_send(array, start, nbytes)
        else:
            self.active = {"buf": array, "start": start, "nbytes": nbytes, "done": False,
                           "error": None}
            self.dma.fill_recv()

    @property
    def idle(self) -> bool:
        if self.active is None:
            return True
        if self.tx:
            return self.dma.send_done()
        return bool(self.active["done"])

    def wait(self) -> None:
        self.dma.fake._record(f"{self.name}.wait")
        if self.active is None:
            raise FakePynqError(f"{self.name}channel.wait() without a transfer")
        if not self.idle:
            if self.tx:
                raise FakePynqError(
                    "sendchannel.wait() would block forever: the design holds only "
                    f"{self.dma.device.capacity} frames while its outputs are not received; "
                    "receive the outputs before waiting for the send")
            raise FakePynqError("recvchannel.wait() would block forever: no output frame is "
                                "on its way (nothing was sent)")
        act = self.active
        self.active = None
        if self.tx:
            self.transferred = act["nbytes"]
            return
        if act["error"]:
            raise RuntimeError(act["error"])
        if self.dma.fake.implicit_cache_ops:  # pynq ≥ 2.6 invalidates in wait()
            act["buf"].view(np.ndarray)[...] = act["buf"]._dram
        self.transferred = act["got"]


class _FakeDma:
    def __init__(self, fake: FakePynq, config: DmaConfig) -> None:
        self.fake = fake
        self.config = config
        self.device = fake.device
        self.buffer_max_size = config.max_transfer_bytes
        self.packets: deque[bytes] = deque()
        self.sent_frames = 0
        self.delivered = 0
        self.sendchannel = _FakeChannel(self, True)
        self.recvchannel = _FakeChannel(self, False)

    def start_send(self, buf: FakeBuffer, start: int, nbytes: int) -> None:
        dev = self.device
        if dev is None:
            raise FakePynqError("FakePynq has no device to send to")
        rc = self.recvchannel
        if rc.active is None or rc.active["done"]:
            raise FakePynqError("sendchannel.transfer before the receive channel was armed: "
                                "start recvchannel.transfer first (or together)")
        if nbytes % dev.in_frame_bytes:
            raise FakePynqError(f"send of {nbytes} bytes is not whole {dev.in_frame_bytes}-byte "
                                "frames")
        if self.fake.implicit_cache_ops:  # pynq ≥ 2.6 flushes in transfer()
            buf._dram[...] = buf.view(np.ndarray)
        data = np.array(buf._dram[start:start + nbytes], dtype=np.uint8)
        self.sendchannel.active = {"first": self.sent_frames,
                                   "frames": nbytes // dev.in_frame_bytes, "nbytes": nbytes}
        self.sent_frames += nbytes // dev.in_frame_bytes
        self.packets.extend(dev.process(data))
        self.fill_recv()

    def send_done(self) -> bool:
        act = self.sendchannel.active
        assert act is not None
        return self.delivered >= act["first"] + act["frames"] - self.device.capacity

    def fill_recv(self) -> None:
        act = self.recvchannel.active
        if act is None or act["done"] or not self.packets:
            return
        pkt = self.packets.popleft()
        self.delivered += 1
        act["done"] = True
        if len(pkt) > act["nbytes"]:
            act["error"] = "DMA Internal Error (transfer length 0?)"  # length before tlast
            act["got"] = act["nbytes"]
            return
        buf = act["buf"]
        buf._dram[act["start"]:act["start"] + len(pkt)] = np.frombuffer(pkt, np.uint8)
        act["got"] = len(pkt)


class _FakeRail:
    def __init__(self, name: str, watts: float) -> None:
        self.name = name
        self.power = type("Sensor", (), {"value": watts})()


class _FakeOverlay:
    def __init__(self, fake: FakePynq, bitfile: str) -> None:
        path = Path(bitfile)
        if not path.exists():
            raise OSError(f"{bitfile} does not exist")
        hwh = path.with_suffix(".hwh")
        if not hwh.exists():
            raise ValueError(f"Cannot find HWH file {hwh}")
        self._fake = fake
        self._hwh = hwh
        from .hwh import read_hwh

        self.ip_dict = {name: {"type": m.vlnv, "parameters": m.parameters}
                        for name, m in read_hwh(hwh).items()}
        self._dmas: dict[str, _FakeDma] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        entry = self.ip_dict.get(name)
        if entry is None or "axi_dma" not in entry["type"]:
            raise AttributeError(f"Could not find IP or hierarchy {name} in overlay")
        if name not in self._dmas:
            self._dmas[name] = _FakeDma(self._fake, dma_config(self._hwh, name))
            self._fake.dma = self._dmas[name]
        return self._dmas[name]


class FakePynq:
    """Stands in for the ``pynq`` module (``Overlay``, ``allocate``, ``get_rails``) on a
    machine without a board. Pass it to :class:`PynqBackend`.

    Every call is appended to :attr:`calls` as a tuple (``("allocate", nbytes, dtype)``,
    ``("Overlay", path)``, ``("recv.transfer", buffer, start, nbytes)``,
    ``("send.transfer", …)``, ``("recv.wait",)``, ``("send.wait",)``, ``("flush", buffer)``,
    ``("invalidate", buffer)``, ``("freebuffer", buffer)``, ``("get_rails",)``; buffers are
    numbered in allocation order). It fails (:class:`FakePynqError`) where the board would
    fail or hang: buffers not from ``allocate``, not ``uint8`` or not contiguous, transfers
    out of range, over the DMA's maximum or unaligned, a send started before the receive
    channel is armed, a transfer on a channel whose last transfer was not waited for, a
    wait that would never return, partial input frames.

    With ``implicit_cache_ops=False`` it behaves like PYNQ before 2.6, where ``transfer``
    does not flush and ``wait`` does not invalidate: data then only moves between the CPU
    view and DRAM through explicit ``flush``/``invalidate`` calls.
    """

    def __init__(self, device: FakeDevice | None = None,
                 rails: dict[str, float] | None = None,
                 implicit_cache_ops: bool = True) -> None:
        self.device = device
        self.rails = rails
        self.implicit_cache_ops = implicit_cache_ops
        self.calls: list[tuple[Any, ...]] = []
        self.buffers: list[FakeBuffer] = []
        self.dma: _FakeDma | None = None
        self._next_address = 0x1000_0000

    def _record(self, *call: Any) -> None:
        self.calls.append(tuple(call))

    def names(self) -> list[str]:
        """The recorded call names, in order."""
        return [c[0] for c in self.calls]

    def Overlay(self, bitfile: str, download: bool = True) -> _FakeOverlay:  # noqa: N802
        self._record("Overlay", str(bitfile))
        return _FakeOverlay(self, bitfile)

    def allocate(self, shape: Any, dtype: Any = np.uint8, **kwargs: Any) -> FakeBuffer:
        shape_t = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
        arr = np.zeros(shape_t, dtype=dtype)
        self._record("allocate", shape_t, str(arr.dtype))
        buf = arr.view(FakeBuffer)
        buf.physical_address = self._next_address
        self._next_address += (arr.nbytes + 0xFFF) // 0x1000 * 0x1000 + 0x1000
        buf._fake = self
        buf._index = len(self.buffers)
        buf._dram = np.zeros(arr.nbytes, dtype=np.uint8).view(arr.dtype).reshape(shape_t)
        buf.freed = False
        self.buffers.append(buf)
        return buf

    def get_rails(self) -> dict[str, _FakeRail]:
        self._record("get_rails")
        return {k: _FakeRail(k, v) for k, v in (self.rails or {}).items()}
