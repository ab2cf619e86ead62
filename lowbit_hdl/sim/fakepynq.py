"""A fake PYNQ for tests and the simulated board: it records every call the runtime makes and
checks it the way the hardware and the driver would (buffer ownership, cache flushes, DMA
arming order, transfer lengths), and :func:`write_test_hwh` writes the ``.hwh`` it reads.
Hybrid designs (weights in DDR) also get the accelerator's AXI4-Lite control block
(:class:`FakeAccelerator`, the register map of :mod:`lowbit_hdl.runtime.regs`), which reads
the DDR image from the fake physical memory of the ``pynq.allocate`` buffers.

Development machine only; the board runtime (:mod:`lowbit_hdl.runtime`) never imports it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime import regs
from ..runtime.backend import (
    CHANNEL_BASE,
    DMACR,
    DMACR_RESET,
    DMACR_RS,
    DMASR,
    DMASR_BITS,
    DMASR_ERRORS,
    DMASR_HALTED,
    DMASR_IDLE,
    LENGTH,
    decode_status,
)
from ..runtime.ddrimage import DdrImageLayout
from ..runtime.hwh import DmaConfig, dma_config, read_hwh
from ..runtime.layout import IpNames

__all__ = ["FakePynq", "FakePynqError", "FakeDevice", "FakeBuffer", "FakeAccelerator",
           "INJECTABLE_ERRORS", "ACCEL_VLNV", "write_test_hwh"]

#: the VLNV of the accelerator cell in a hybrid design's ``.hwh`` (a Vivado module reference
#: of the wrapper ``lowbit_accel``)
ACCEL_VLNV = "xilinx.com:module_ref:lowbit_accel:1.0"


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
    ``out_frame_bytes`` may differ from what the runtime's layout says (a design that does
    not match its ``layout.json``); a ``stalled`` device takes input and never outputs.
    """

    def __init__(self, in_frame_bytes: int, out_frame_bytes: int,
                 fn: Callable[[np.ndarray], np.ndarray], capacity: int = 2,
                 stalled: bool = False) -> None:
        self.in_frame_bytes = in_frame_bytes
        self.out_frame_bytes = out_frame_bytes
        self.fn = fn
        self.capacity = capacity
        self.stalled = stalled  # takes input, never outputs (a hung design)
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
        return [] if self.stalled else [out[i].tobytes() for i in range(n)]


class FakeAccelerator:
    """The control block of a hybrid design as PYNQ shows it (``overlay.<cell>.read`` /
    ``.write`` of 32-bit registers, :mod:`lowbit_hdl.runtime.regs`), with the hardware's
    run logic reduced to what the runtime can observe.

    ``CTRL.START`` (when not busy) begins a run of ``FRAMES`` frames: the block reads the DDR
    image (``layout.total_bytes``, or nothing without a ``layout``) at ``WEIGHTS_BASE`` from
    the DRAM side of the ``pynq.allocate`` buffers (so an image the CPU has not flushed is
    read stale) into :attr:`image`; an address range outside every buffer is a decode error
    (``ERROR_AXI_DECERR``), as on the board's interconnect. The run is done once the fake
    DMA has delivered ``FRAMES`` input frames to the device after the START; then
    ``CYCLES = cycles_per_frame · FRAMES``, ``STALL_CYCLES = stall_cycles_per_frame ·
    FRAMES`` and ``BYTES_READ = layout.bytes_per_frame · FRAMES``. ``fail`` (an
    :data:`~lowbit_hdl.runtime.regs.ERROR_CODES` code) makes every run's weight reads fail
    with that response: ``STATUS.ERROR`` and ``ERROR`` are set and, like the hardware's read
    masters, the run still completes. ``never_done`` keeps a run busy forever (a hung
    design). ``CTRL.SOFT_RESET`` clears BUSY, DONE and the error. ``ident`` is what the ID
    register reads.

    Writes are recorded on the fake PYNQ as ``("ctrl.write", offset, value)``.
    """

    def __init__(self, layout: DdrImageLayout | None = None, *, ident: int = regs.ID_VALUE,
                 fail: int | None = None, never_done: bool = False,
                 cycles_per_frame: int = 100, stall_cycles_per_frame: int = 0) -> None:
        # duck-typed: the deployment bundle's copy of the runtime has its own class
        if layout is not None and not all(hasattr(layout, a) for a in
                                          ("total_bytes", "bytes_per_frame", "regions")):
            raise TypeError(f"layout must be a DdrImageLayout, not {type(layout).__name__}")
        if fail is not None and fail not in regs.ERROR_CODES or fail == regs.ERROR_NONE:
            raise ValueError(f"fail={fail!r} must be an error code of regs.ERROR_CODES")
        self.layout = layout
        self.ident = ident
        self.fail = fail
        self.never_done = never_done
        self.cycles_per_frame = cycles_per_frame
        self.stall_cycles_per_frame = stall_cycles_per_frame
        self.fake: FakePynq | None = None
        self.values = {r.name: r.reset for r in regs.CONTROL_REGISTERS}
        self.busy = self.done = False
        self.error = regs.ERROR_NONE
        self.runs = 0
        self.image: bytes | None = None
        self._frames_at_start = 0

    def _device_frames(self) -> int:
        fake = self.fake
        return 0 if fake is None or fake.device is None else fake.device.frames_in

    def _update(self) -> None:
        """Finish a busy run whose frames have all gone in."""
        if self.busy and not self.never_done:
            frames = self.values["FRAMES"]
            if self._device_frames() - self._frames_at_start >= frames:
                self.busy, self.done = False, True
                per = self.layout.bytes_per_frame if self.layout is not None else 0
                self.values["CYCLES"] = self.cycles_per_frame * frames
                self.values["STALL_CYCLES"] = self.stall_cycles_per_frame * frames
                self.values["BYTES_READ"] = per * frames

    def _start(self) -> None:
        self.runs += 1
        frames = self.values["FRAMES"]
        self.busy, self.done = frames != 0, frames == 0
        self.error = regs.ERROR_NONE
        for name in ("CYCLES", "STALL_CYCLES", "BYTES_READ"):
            self.values[name] = 0
        self._frames_at_start = self._device_frames()
        if self.layout is not None and frames:
            base = self.values["WEIGHTS_BASE_LO"] | self.values["WEIGHTS_BASE_HI"] << 32
            data = None if self.fake is None else self.fake.read_dram(
                base, self.layout.total_bytes)
            if data is None:
                self.error = regs.ERROR_AXI_DECERR
            else:
                self.image = data
        if self.fail is not None and frames:
            self.error = self.fail

    def _check(self, offset: int) -> str:
        if type(offset) is not int or offset % regs.REGISTER_BYTES or not \
                0 <= offset < regs.REGISTER_BYTES * len(regs.CONTROL_REGISTERS):
            raise FakePynqError(f"control register offset {offset!r} is not one of the "
                                f"register map's (0x0..0x{4 * len(regs.OFFSETS) - 4:X}, "
                                "4-byte aligned)")
        return regs.CONTROL_REGISTERS[offset // regs.REGISTER_BYTES].name

    def read(self, offset: int, length: int = 4) -> int:
        name = self._check(offset)
        self._update()
        if name == "ID":
            return self.ident
        if name == "STATUS":
            return (self.busy * regs.STATUS_BUSY | self.done * regs.STATUS_DONE
                    | bool(self.error) * regs.STATUS_ERROR)
        if name == "ERROR":
            return self.error
        if name == "CTRL":
            return 0
        return self.values[name]

    def write(self, offset: int, data: int) -> None:
        if type(data) is not int:  # pynq's MMIO.write takes an int or bytes
            raise FakePynqError(f"control write of {type(data).__name__}: pass a Python int")
        name = self._check(offset)
        if not 0 <= data < 1 << 32:
            raise FakePynqError(f"control write of {data}: registers are 32 bits")
        if self.fake is not None:
            self.fake._record("ctrl.write", offset, data)
        access = regs.register(name).access
        if access == "rw":
            self.values[name] = data
        elif name == "CTRL":
            self._update()
            if data & regs.CTRL_START and not self.busy:
                self._start()
            if data & regs.CTRL_SOFT_RESET:
                self.busy = self.done = False
                self.error = regs.ERROR_NONE
        # writes to read-only registers are ignored, as by the hardware's register file


#: DMACR and DMASR after a reset (PG021: IRQThreshold 1, channel halted)
_DMACR_RESET_VALUE = 0x0001_0000
_IOC_IRQ = 1 << DMASR_BITS["IOC_Irq"]
_ERR_IRQ = 1 << DMASR_BITS["Err_Irq"]
#: DMASR bits that software clears by writing 1 (IOC_Irq, Dly_Irq, Err_Irq)
_DMASR_W1C = _IOC_IRQ | 1 << 13 | _ERR_IRQ
#: the error bits a test may inject
INJECTABLE_ERRORS = ("DMAIntErr", "DMASlvErr", "DMADecErr")
#: pynq's wait() messages, by error bit (pynq/lib/dma.py, 2.7 to 3.1)
_PYNQ_WAIT_ERRORS = {"DMAIntErr": "DMA Internal Error (transfer length 0?)",
                     "DMASlvErr": "DMA Slave Error (cannot access memory map interface)",
                     "DMADecErr": "DMA Decode Error (invalid address)"}


class _FakeChannel:
    """One channel of the AXI DMA in direct register mode: its registers (PG021) and
    PYNQ's ``_SDMAChannel`` API on top of them (``running``, ``idle``, ``error``,
    ``start``, ``stop``, ``transfer``, ``wait``, ``transferred``), with the driver's
    behaviour: ``start()`` and ``stop()`` spin until the status register agrees, ``wait()``
    until the channel is idle or shows an error."""

    def __init__(self, dma: _FakeDma, tx: bool) -> None:
        self.dma = dma
        self.tx = tx
        self.name = "send" if tx else "recv"
        self.channel = "MM2S" if tx else "S2MM"
        self.base = CHANNEL_BASE[self.channel]
        self.dmacr = _DMACR_RESET_VALUE
        self.dmasr = DMASR_HALTED
        self.length = 0
        # the transfer the hardware works on, or finished and not yet waited for
        self.active: dict[str, Any] | None = None
        self.transferred = 0
        self._first_transfer = True
        self._max_size = dma.config.max_transfer_bytes
        self.start()  # pynq's driver starts both channels when it is created

    # -- registers -----------------------------------------------------------------------

    def hw_reset(self) -> None:
        self.dmacr = _DMACR_RESET_VALUE
        self.dmasr = DMASR_HALTED
        self.length = 0
        self.active = None

    def read_status(self) -> int:
        act = self.active
        if (self.tx and act is not None and not act["done"] and not self.dmasr & DMASR_HALTED
                and self.dma.send_done()):
            self.complete(act["nbytes"])
        return self.dmasr

    def complete(self, nbytes: int) -> None:
        assert self.active is not None
        self.active["done"] = True
        self.length = nbytes
        self.dmasr |= DMASR_IDLE | _IOC_IRQ

    def fail(self, error: str) -> None:
        """An error bit latches, the channel halts (PG021): until a reset."""
        if self.active is not None:
            self.active["done"] = True
        self.dmacr &= ~DMACR_RS
        self.dmasr = (self.dmasr | 1 << DMASR_BITS[error] | _ERR_IRQ | DMASR_HALTED) \
            & ~DMASR_IDLE

    def write_control(self, value: int) -> None:
        if value & DMACR_RESET:
            self.dma.start_reset()
            return
        self.dmacr = value
        if value & DMACR_RS:
            if not self.dmasr & DMASR_ERRORS:  # a latched error keeps the channel halted
                self.dmasr &= ~DMASR_HALTED
        elif self.active is None or self.active["done"]:
            self.dmasr = (self.dmasr | DMASR_HALTED) & ~DMASR_IDLE
        # else: the channel halts only when its transfer completes, which it may never do

    # -- pynq's _SDMAChannel ---------------------------------------------------------------

    @property
    def running(self) -> bool:
        return not self.read_status() & DMASR_HALTED

    @property
    def idle(self) -> bool:
        return bool(self.read_status() & DMASR_IDLE)

    @property
    def error(self) -> bool:
        return bool(self.read_status() & DMASR_ERRORS)

    def _status_text(self) -> str:
        st = self.read_status()
        return f"DMASR=0x{st:08x} {list(decode_status(st))}"

    def start(self) -> None:
        self.dma.fake._record(f"{self.name}.start")
        self.write_control(DMACR_RS)
        if not self.running:
            raise self.dma.fake.hang(f"{self.name}channel.start() would hang: the channel "
                                     "stays halted while an error is latched "
                                     f"({self._status_text()}); only a DMA reset (DMACR bit "
                                     "2) clears it")
        self._first_transfer = True

    def stop(self) -> None:
        self.dma.fake._record(f"{self.name}.stop")
        self.write_control(0)
        if self.running:
            raise self.dma.fake.hang(f"{self.name}channel.stop() would hang: the channel "
                                     "halts only when its transfer completes, and nothing "
                                     "completes it")

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
        return nbytes

    def transfer(self, array: Any, start: int = 0, nbytes: int = 0) -> None:
        if self.active is not None and self.running:
            raise FakePynqError(f"{self.name}channel.transfer while the previous transfer was "
                                "not waited for (DMA channel not idle)")
        if not self.running:
            raise RuntimeError("DMA channel not started")
        if not self.idle and not self._first_transfer:
            raise RuntimeError("DMA channel not idle")
        nbytes = self._check_buffer(array, start, nbytes)
        if self.tx:
            self.dma.check_send(nbytes)
        self.dma.fake._record(f"{self.name}.transfer", array._index, start, nbytes)
        self.transferred = 0
        self._first_transfer = False
        self.dmasr &= ~DMASR_IDLE  # writing LENGTH starts the transfer
        self.length = nbytes
        self.active = {"buf": array, "start": start, "nbytes": nbytes, "done": False}
        if self.tx:
            self.dma.start_send(array, start, nbytes)
        else:
            self.dma.fill_recv()

    def wait(self) -> None:
        self.dma.fake._record(f"{self.name}.wait")
        if self.active is None:
            raise FakePynqError(f"{self.name}channel.wait() without a transfer")
        if not self.running:
            raise RuntimeError("DMA channel not started")
        st = self.read_status()
        for name in decode_status(st):
            if name in _PYNQ_WAIT_ERRORS:  # not reached: an error halts the channel first
                raise RuntimeError(_PYNQ_WAIT_ERRORS[name])
        if not st & DMASR_IDLE:
            if self.tx:
                raise self.dma.fake.hang(
                    "sendchannel.wait() would block forever: the design holds only "
                    f"{self.dma.device.capacity} frames while its outputs are not received; "
                    "receive the outputs before waiting for the send")
            raise self.dma.fake.hang("recvchannel.wait() would block forever: no output "
                                     "frame is on its way")
        act = self.active
        self.active = None
        if not self.tx and self.dma.fake.implicit_cache_ops:  # pynq ≥ 2.6 invalidates
            act["buf"].view(np.ndarray)[...] = act["buf"]._dram
        self.transferred = self.length


class _FakeMmio:
    """The DMA's register space as PYNQ's ``MMIO`` shows it (``read``/``write`` of 32-bit
    words): control, status and length of both channels."""

    def __init__(self, dma: _FakeDma) -> None:
        self.dma = dma

    def _reg(self, offset: int) -> tuple[_FakeChannel, int]:
        for ch in (self.dma.sendchannel, self.dma.recvchannel):
            if ch.base <= offset < ch.base + 0x30:
                return ch, offset - ch.base
        raise FakePynqError(f"MMIO offset 0x{offset:x} is outside the DMA's registers")

    def read(self, offset: int, length: int = 4) -> int:
        ch, reg = self._reg(offset)
        if reg == DMACR:
            return self.dma.read_control(ch)
        if reg == DMASR:
            return ch.read_status()
        if reg == LENGTH:
            return ch.length
        raise FakePynqError(f"the fake DMA does not model register 0x{offset:x}")

    def write(self, offset: int, data: int) -> None:
        if type(data) is not int:  # pynq's MMIO.write takes an int or bytes
            raise FakePynqError(f"MMIO.write of {type(data).__name__}: pass a Python int")
        self.dma.fake._record("mmio.write", offset, data)
        ch, reg = self._reg(offset)
        if reg == DMACR:
            ch.write_control(data)
        elif reg == DMASR:
            ch.dmasr &= ~(data & _DMASR_W1C)
        else:
            raise FakePynqError(f"the fake DMA takes transfers through channel.transfer, not "
                                f"a write to 0x{offset:x}")


class _FakeDma:
    def __init__(self, fake: FakePynq, config: DmaConfig) -> None:
        self.fake = fake
        self.config = config
        self.device = fake.device
        self.buffer_max_size = config.max_transfer_bytes
        self.mmio = _FakeMmio(self)
        self.packets: deque[bytes] = deque()
        self.sent_frames = 0
        self.delivered = 0
        self.resetting: int | None = None  # reads of DMACR until the reset completes
        self.sendchannel = _FakeChannel(self, True)
        self.recvchannel = _FakeChannel(self, False)

    def start_reset(self) -> None:
        self.fake._record("dma.reset")
        self.resetting = self.fake.reset_reads
        for ch in (self.sendchannel, self.recvchannel):
            ch.dmacr |= DMACR_RESET

    def read_control(self, ch: _FakeChannel) -> int:
        if self.resetting is not None:  # None in fake.reset_reads: the reset never completes
            if self.fake.reset_reads is not None:
                self.resetting -= 1
                if self.resetting <= 0:
                    self.finish_reset()
        return ch.dmacr

    def finish_reset(self) -> None:
        """The whole DMA is reset: both channels halted, errors cleared, transfers and the
        data in flight dropped."""
        self.resetting = None
        self.sendchannel.hw_reset()
        self.recvchannel.hw_reset()
        self.packets.clear()
        self.sent_frames = self.delivered = 0

    def check_send(self, nbytes: int) -> None:
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

    def start_send(self, buf: FakeBuffer, start: int, nbytes: int) -> None:
        dev = self.device
        assert dev is not None
        sc = self.sendchannel
        sc.active["first"] = self.sent_frames
        sc.active["frames"] = nbytes // dev.in_frame_bytes
        error = self.fake.injected.pop("MM2S", None)
        if error is not None:  # the memory read fails: nothing reaches the design
            sc.fail(error)
            return
        if self.fake.implicit_cache_ops:  # pynq ≥ 2.6 flushes in transfer()
            buf._dram[...] = buf.view(np.ndarray)
        data = np.array(buf._dram[start:start + nbytes], dtype=np.uint8)
        self.sent_frames += nbytes // dev.in_frame_bytes
        self.packets.extend(dev.process(data))
        self.fill_recv()

    def send_done(self) -> bool:
        act = self.sendchannel.active
        assert act is not None
        return self.delivered >= act["first"] + act["frames"] - self.device.capacity

    def fill_recv(self) -> None:
        rc = self.recvchannel
        act = rc.active
        if act is None or act["done"] or rc.dmasr & DMASR_HALTED or not self.packets:
            return
        pkt = self.packets.popleft()
        self.delivered += 1
        error = self.fake.injected.pop("S2MM", None)
        if error is not None:  # the memory write fails
            rc.fail(error)
            return
        n = min(len(pkt), act["nbytes"])
        buf = act["buf"]
        buf._dram[act["start"]:act["start"] + n] = np.frombuffer(pkt[:n], np.uint8)
        if len(pkt) > act["nbytes"]:  # the buffer is full before tlast (PG021: DMAIntErr)
            rc.length = n
            rc.fail("DMAIntErr")
            return
        rc.complete(len(pkt))


class _FakeRail:
    def __init__(self, name: str, watts: float) -> None:
        self.name = name
        self.power = type("Sensor", (), {"value": watts})()


class _FakeOverlay:
    def __init__(self, fake: FakePynq, bitfile: str, download: bool = True) -> None:
        path = Path(bitfile)
        if not path.exists():
            raise OSError(f"{bitfile} does not exist")
        hwh = path.with_suffix(".hwh")
        if not hwh.exists():
            raise ValueError(f"Cannot find HWH file {hwh}")
        self._fake = fake
        self._hwh = hwh
        self._bitfile = str(bitfile)
        if download:
            fake.loaded = self._bitfile

        self.ip_dict = {name: {"type": m.vlnv, "parameters": m.parameters}
                        for name, m in read_hwh(hwh).items()}
        self._dmas: dict[str, _FakeDma] = {}

    def is_loaded(self) -> bool:
        return self._fake.loaded == self._bitfile

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if not self.is_loaded():  # pynq's Overlay.__getattr__ (2.7 to 3.1)
            raise RuntimeError("Overlay not currently loaded")
        entry = self.ip_dict.get(name)
        if entry is not None and entry["type"] == ACCEL_VLNV:
            return self._fake.accelerator
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

    The DMA has the registers of PG021's direct register mode (``dma.mmio``: ``DMACR``,
    ``DMASR``, ``LENGTH`` of both channels) and fails as the hardware does: an output frame
    longer than the receive transfer sets ``DMAIntErr``, an error halts its channel
    (``Halted`` set, ``Idle`` clear) and stays latched until a reset (``DMACR`` bit 2, which
    clears after ``reset_reads`` reads of ``DMACR``; ``None``: never, an AXI transfer that
    hangs); PYNQ's ``start()`` would spin forever on a latched error and ``stop()`` on a
    transfer that never completes: both raise :class:`FakePynqError` instead and are listed
    in :attr:`hangs`, as are waits that would never return. Memory errors
    are injected with :meth:`inject_error`. ``loaded`` is the bitstream in the PL (pynq's
    ``Overlay.__getattr__`` raises ``RuntimeError`` when it is not the overlay's own).
    Writes to the registers are recorded as ``("mmio.write", offset, value)``, a reset as
    ``("dma.reset",)``, ``start()``/``stop()`` as ``("send.start",)`` etc.

    A ``.hwh`` with an accelerator cell (``write_test_hwh(..., accelerator=...)``) shows
    ``accelerator`` (a :class:`FakeAccelerator`; a default one without a DDR layout when not
    given) as that cell. Buffers get distinct, 4 KiB aligned ``physical_address`` values;
    :meth:`read_dram` reads the memory behind them by address.
    """

    def __init__(self, device: FakeDevice | None = None,
                 rails: dict[str, float] | None = None,
                 implicit_cache_ops: bool = True, reset_reads: int | None = 1,
                 accelerator: FakeAccelerator | None = None) -> None:
        if reset_reads is not None and reset_reads < 1:
            raise ValueError(f"reset_reads={reset_reads} must be ≥ 1 (or None: never)")
        self.device = device
        self.rails = rails
        self.implicit_cache_ops = implicit_cache_ops
        self.reset_reads = reset_reads
        self.calls: list[tuple[Any, ...]] = []
        self.buffers: list[FakeBuffer] = []
        self.dma: _FakeDma | None = None
        self.loaded: str | None = None
        self.injected: dict[str, str] = {}
        self.hangs: list[str] = []
        self._next_address = 0x1000_0000
        self.accelerator = accelerator if accelerator is not None else FakeAccelerator()
        self.accelerator.fake = self

    def hang(self, message: str) -> FakePynqError:
        """Where PYNQ would spin forever: remember it in :attr:`hangs` (a caller that
        swallows the error cannot hide it) and return the error to raise."""
        self.hangs.append(message)
        return FakePynqError(message)

    def inject_error(self, channel: str, error: str) -> None:
        """Make the next transfer of ``channel`` (``"MM2S"``/``"send"`` or
        ``"S2MM"``/``"recv"``) fail with the DMASR error bit ``error`` (``"DMASlvErr"``,
        ``"DMADecErr"`` or ``"DMAIntErr"``): a send reads nothing, a receive loses the frame
        it was writing."""
        if not isinstance(channel, str) or not isinstance(error, str):
            raise TypeError("channel and error must be str")
        names = {"MM2S": "MM2S", "send": "MM2S", "S2MM": "S2MM", "recv": "S2MM"}
        if channel not in names:
            raise ValueError(f"channel {channel!r} is not one of {sorted(names)}")
        if error not in INJECTABLE_ERRORS:
            raise ValueError(f"error {error!r} is not one of {INJECTABLE_ERRORS}")
        self.injected[names[channel]] = error

    def _record(self, *call: Any) -> None:
        self.calls.append(tuple(call))

    def names(self) -> list[str]:
        """The recorded call names, in order."""
        return [c[0] for c in self.calls]

    def Overlay(self, bitfile: str, download: bool = True) -> _FakeOverlay:  # noqa: N802
        self._record("Overlay", str(bitfile))
        return _FakeOverlay(self, bitfile, download)

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

    def read_dram(self, address: int, nbytes: int) -> bytes | None:
        """``nbytes`` of the memory behind the buffers at physical ``address`` (what a bus
        master reads: the DRAM side, not the CPU's cached view); ``None`` when the range is
        not inside one live buffer."""
        for buf in self.buffers:
            lo = buf.physical_address
            if not buf.freed and lo <= address and address + nbytes <= lo + buf.nbytes:
                raw = buf._dram.reshape(-1).view(np.uint8)
                return raw[address - lo:address - lo + nbytes].tobytes()
        return None

    def get_rails(self) -> dict[str, _FakeRail]:
        self._record("get_rails")
        return {k: _FakeRail(k, v) for k, v in (self.rails or {}).items()}


def write_test_hwh(path: str | Path, dma_name: str = IpNames().dma, mm2s_tdata_bits: int = 8,
                   s2mm_tdata_bits: int = 8, sg_length_width: int = 26,
                   mem_bits: int = 64, scatter_gather: bool = False,
                   accelerator: str | None = None) -> Path:
    """Write a minimal ``.hwh`` with one AXI DMA, shaped like Vivado's (for tests and for
    the fake PYNQ; a real one comes from the Vivado flow); ``accelerator`` adds the cell of a
    hybrid design's accelerator (its control port) under that name."""
    path = Path(path)
    params = {
        "C_INCLUDE_SG": int(scatter_gather), "c_include_sg": int(scatter_gather),
        "c_sg_length_width": sg_length_width,
        "C_SG_LENGTH_WIDTH": sg_length_width, "c_include_mm2s": 1, "c_include_s2mm": 1,
        "c_m_axis_mm2s_tdata_width": mm2s_tdata_bits,
        "C_M_AXIS_MM2S_TDATA_WIDTH": mm2s_tdata_bits,
        "c_s_axis_s2mm_tdata_width": s2mm_tdata_bits,
        "C_S_AXIS_S2MM_TDATA_WIDTH": s2mm_tdata_bits,
        "c_m_axi_mm2s_data_width": mem_bits, "c_m_axi_s2mm_data_width": mem_bits,
        "c_micro_dma": 0,
    }
    root = ET.Element("EDKSYSTEM", EDWVERSION="1.2", TIMESTAMP="Thu Jan  1 00:00:00 2026",
                      VIVADOVERSION="2022.2")
    ET.SubElement(root, "SYSTEMINFO", ARCH="zynq", BOARD="tul.com.tw:pynq-z2:part0:1.0",
                  DEVICE="7z020", NAME="top", PACKAGE="clg400", SPEEDGRADE="-1")
    modules = ET.SubElement(root, "MODULES")

    def module(attrs: dict[str, str], parameters: dict[str, Any]) -> None:
        mod = ET.SubElement(modules, "MODULE", attrs)
        plist = ET.SubElement(mod, "PARAMETERS")
        for k, v in parameters.items():
            ET.SubElement(plist, "PARAMETER", NAME=k, VALUE=str(v))

    module({"FULLNAME": f"/{dma_name}", "HWVERSION": "7.1", "INSTANCE": dma_name,
            "IPTYPE": "PERIPHERAL", "MODCLASS": "PERIPHERAL", "MODTYPE": "axi_dma",
            "VLNV": "xilinx.com:ip:axi_dma:7.1"}, params)
    ps = IpNames().ps
    module({"FULLNAME": f"/{ps}", "INSTANCE": ps, "MODTYPE": "processing_system7",
            "VLNV": "xilinx.com:ip:processing_system7:5.5"},
           {"C_FCLK_CLK0_FREQ": 100000000})
    if accelerator is not None:
        module({"FULLNAME": f"/{accelerator}", "INSTANCE": accelerator, "IPTYPE": "PERIPHERAL",
                "MODCLASS": "PERIPHERAL", "MODTYPE": "lowbit_accel", "VLNV": ACCEL_VLNV}, {})
    tree = ET.ElementTree(root)
    ET.indent(tree, space="  ")
    tree.write(path, encoding="UTF-8", xml_declaration=True)
    return path
