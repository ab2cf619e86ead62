"""A fake PYNQ for tests and the simulated board: it records every call the runtime makes and
checks it the way the hardware and the driver would (buffer ownership, cache flushes, DMA
arming order, transfer lengths), and :func:`write_test_hwh` writes the ``.hwh`` it reads.

Development machine only; the board runtime (:mod:`lowbit_hdl.runtime`) never imports it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.hwh import DmaConfig, dma_config, read_hwh
from ..runtime.layout import IpNames

__all__ = ["FakePynq", "FakePynqError", "FakeDevice", "FakeBuffer", "write_test_hwh"]


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


def write_test_hwh(path: str | Path, dma_name: str = IpNames().dma, mm2s_tdata_bits: int = 8,
                   s2mm_tdata_bits: int = 8, sg_length_width: int = 26,
                   mem_bits: int = 64, scatter_gather: bool = False) -> Path:
    """Write a minimal ``.hwh`` with one AXI DMA, shaped like Vivado's (for tests and for
    the fake PYNQ; a real one comes from the Vivado flow)."""
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
    tree = ET.ElementTree(root)
    ET.indent(tree, space="  ")
    tree.write(path, encoding="UTF-8", xml_declaration=True)
    return path
