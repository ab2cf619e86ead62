"""Running a hybrid design (weights in DDR): the DDR image and the control registers.

At load, :class:`HybridControl` packs the weights of the design's DDR layers into one image
(:func:`~lowbit_hdl.runtime.ddrimage.pack_image`) in a buffer from the backend
(``pynq.allocate`` on the board) and writes its bus address to ``WEIGHTS_BASE_LO``. Every
batch of ``n`` frames is then: :meth:`~HybridControl.start` (``FRAMES = n``, ``CTRL.START``;
the design's read masters fetch each layer's weights once per frame), the DMA transfers of
the frames, and :meth:`~HybridControl.finish`, which waits (bounded) for ``STATUS.DONE`` and
reads the performance counters, or raises :class:`AcceleratorError` naming the AXI error
(``STATUS.ERROR``, ``ERROR`` code) so a DDR fault never hangs the caller.

Numpy and the standard library only (ships to the board).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from . import regs
from .backend import Backend, BackendError
from .ddrimage import DdrImageLayout, DdrLayoutError, pack_image

__all__ = ["HybridControl", "AcceleratorError", "load_ddr_weights", "DDR_WEIGHTS_FILE",
           "THRESHOLDS_SUFFIX", "split_ddr_parameters"]

#: the deployment bundle's file of DDR-layer weight matrices ({layer: (MH, MW) integers})
DDR_WEIGHTS_FILE = "ddr_weights.npz"


class AcceleratorError(BackendError):
    """The accelerator reported an error (a DDR read failed) or did not finish in time."""


#: key suffix of an engine layer's thresholds in :data:`DDR_WEIGHTS_FILE` (an engine design
#: reads them from DDR too): ``"conv3.thresholds"`` beside ``"conv3"``
THRESHOLDS_SUFFIX = ".thresholds"


def split_ddr_parameters(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A :data:`DDR_WEIGHTS_FILE` dictionary → ``(weights, thresholds)`` by layer (the
    arguments of :func:`~lowbit_hdl.runtime.ddrimage.pack_image`)."""
    n = len(THRESHOLDS_SUFFIX)
    weights = {k: v for k, v in params.items() if not k.endswith(THRESHOLDS_SUFFIX)}
    thresholds = {k[:-n]: v for k, v in params.items() if k.endswith(THRESHOLDS_SUFFIX)}
    return weights, thresholds


def load_ddr_weights(path: str | Path) -> dict[str, np.ndarray]:
    """The ``{layer: (MH, MW)}`` weight matrices of a bundle's :data:`DDR_WEIGHTS_FILE` (and,
    for an engine design, ``{layer + THRESHOLDS_SUFFIX: (MH, T)}`` thresholds)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"DDR weights {path} do not exist (the build writes "
                                f"{DDR_WEIGHTS_FILE} into deploy/ for hybrid designs)")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


class HybridControl:
    """The control port and DDR image of one hybrid design on ``backend``.

    Raises :class:`~lowbit_hdl.runtime.ddrimage.DdrLayoutError` when ``weights`` do not
    match the layout's regions, :class:`AcceleratorError` when the control port does not
    answer with the design's ID.
    """

    def __init__(self, backend: Backend, layout: DdrImageLayout, weights: dict[str, Any],
                 control_name: str) -> None:
        self.backend = backend
        self.layout = layout
        backend.open_control(control_name)
        ident = backend.read_control(regs.offset("ID"))
        if ident != regs.ID_VALUE:
            raise AcceleratorError(f"control port {control_name}: ID register reads "
                                   f"0x{ident:08X}, expected 0x{regs.ID_VALUE:08X} (not a "
                                   "lowbit-hdl hybrid design, or another register map)")
        image = pack_image(layout, *split_ddr_parameters(weights))
        self.buffer = backend.allocate(max(len(image), 8))
        self.buffer[:len(image)] = np.frombuffer(image, np.uint8)
        flush = getattr(self.buffer, "flush", None)
        if callable(flush):
            flush()
        self.base = backend.physical_address(self.buffer)
        if self.base % 4096:
            raise DdrLayoutError(f"DDR image at 0x{self.base:X} is not 4 KiB aligned")
        backend.write_control(regs.offset("WEIGHTS_BASE_LO"), self.base & 0xFFFF_FFFF)
        backend.write_control(regs.offset("WEIGHTS_BASE_HI"), self.base >> 32)

    def status(self) -> int:
        return self.backend.read_control(regs.offset("STATUS"))

    def start(self, frames: int) -> None:
        """Begin a run of ``frames`` frames (before their DMA transfers)."""
        if self.status() & regs.STATUS_BUSY:
            raise AcceleratorError("the accelerator is still busy with a previous run "
                                   "(load the bitstream again to reset it)")
        self.backend.write_control(regs.offset("FRAMES"), int(frames))
        self.backend.write_control(regs.offset("CTRL"), regs.CTRL_START)

    def abort(self) -> None:
        """End a run whose frames did not all get through (a DMA error): ``SOFT_RESET``,
        so that the next :meth:`start` does not find the accelerator busy."""
        self.backend.write_control(regs.offset("CTRL"), regs.CTRL_SOFT_RESET)

    def finish(self, timeout_s: float = 1.0) -> dict[str, int]:
        """Wait for ``DONE`` (at most ``timeout_s``); the performance counters."""
        deadline = time.perf_counter() + timeout_s
        while True:
            st = self.status()
            if st & regs.STATUS_ERROR:
                code = self.backend.read_control(regs.offset("ERROR"))
                self.backend.write_control(regs.offset("CTRL"), regs.CTRL_SOFT_RESET)
                raise AcceleratorError(
                    f"the accelerator reported a DDR read error: "
                    f"{regs.ERROR_CODES.get(code, f'code {code}')} (image at "
                    f"0x{self.base:X}, {self.layout.total_bytes} bytes)")
            if st & regs.STATUS_DONE:
                break
            if time.perf_counter() > deadline:
                self.backend.write_control(regs.offset("CTRL"), regs.CTRL_SOFT_RESET)
                raise AcceleratorError(f"the accelerator did not finish its run within "
                                       f"{timeout_s:g} s (STATUS 0x{st:X})")
        return {name: self.backend.read_control(regs.offset(name))
                for name in ("CYCLES", "STALL_CYCLES", "BYTES_READ")}
