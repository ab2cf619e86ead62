"""The accelerator as a Python object: load a bitstream, classify images.

>>> acc = Accelerator("tfc_w1a1.bit")            # layout.json next to it  # doctest: +SKIP
>>> res = acc.classify(images)                   # uint8 images, any usual shape
>>> res.labels[:3], res.timing.fps, res.power_w

Every packing and unpacking goes through :class:`~lowbit_hdl.runtime.layout.StreamLayout`;
the board is reached through a :class:`~lowbit_hdl.runtime.backend.Backend` (PYNQ by
default, the simulated board or a fake PYNQ for tests). Numpy only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .backend import Backend, BackendError, Framing, PynqBackend
from .control import DDR_WEIGHTS_FILE, HybridControl, load_ddr_weights
from .hwh import DmaConfig, HwhError, dma_config
from .imagenet import imagenet_classes, imagenet_frames, top_k_classes
from .layout import DesignLayout, LayoutError
from .preprocess import labels_of, to_frames, topk
from .yolo import (
    DEFAULT_CONF_THRESH,
    DEFAULT_NMS_THRESH,
    VOC_ANCHORS,
    VOC_CLASSES,
    Detection,
    Placement,
    detect_grid,
    detection_frames,
)

__all__ = ["Accelerator", "ClassifyResult", "DetectResult", "Timing", "read_network_info"]


@dataclass
class Timing:
    """Speed figures of one :meth:`Accelerator.classify` / :meth:`Accelerator.execute`.

    On a board ``device_s`` is the wall time spent in DMA transfers (the accelerator at
    work, DMA set-up included); on the simulated board it is simulated time at the design's
    clock. ``total_s`` adds pre- and post-processing on the host.
    """

    images: int
    calls: int  # DMA round trips (one per batch)
    device_s: float
    total_s: float = 0.0
    simulated: bool = False
    clock_mhz: float = 100.0
    cycles: int | None = None  # simulated: sum over calls of first input … last output
    latency_cycles: list[int] = field(default_factory=list)  # simulated, per image
    #: hybrid designs: the control block's performance counters summed over the calls
    #: (CYCLES, STALL_CYCLES, BYTES_READ)
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def per_image_s(self) -> float:
        """Device time per image (the inverse of :attr:`fps`)."""
        return self.device_s / self.images if self.images else float("nan")

    @property
    def fps(self) -> float:
        """Images per second of device time."""
        return self.images / self.device_s if self.device_s > 0 else float("inf")

    @property
    def cycles_per_image(self) -> float | None:
        """Simulated clock cycles per image (batch throughput)."""
        return self.cycles / self.images if self.cycles is not None and self.images else None

    @property
    def latency_s(self) -> float | None:
        """Per-image latency: simulated (first input beat to last output beat), or on a
        board the mean DMA round trip when every call carried a single image."""
        if self.latency_cycles:
            return float(np.mean(self.latency_cycles)) / (self.clock_mhz * 1e6)
        if not self.simulated and self.calls and self.calls == self.images:
            return self.device_s / self.calls
        return None

    def summary(self) -> str:
        """One line for people."""
        parts = [f"{self.images} images in {self.calls} batch(es)",
                 f"{self.per_image_s * 1e6:,.2f} µs/image", f"{self.fps:,.1f} frames/s"]
        if self.simulated and self.cycles is not None:
            parts[1] += " (simulated)"
            parts.append(f"{self.cycles_per_image:,.1f} cycles/image at {self.clock_mhz:g} MHz")
            if self.latency_cycles:
                parts.append(f"mean latency {np.mean(self.latency_cycles):,.1f} cycles")
        elif self.latency_s is not None:
            parts.append(f"latency {self.latency_s * 1e6:,.2f} µs")
        return ", ".join(parts)


@dataclass
class ClassifyResult:
    """What :meth:`Accelerator.classify` returns."""

    outputs: np.ndarray  # raw integer outputs N×C×H×W, as the design produced them
    indices: np.ndarray | None  # N×k class indices, best first (None for raw feature maps)
    labels: list[Any] | None  # top-1 class names (indices when the design has no labels)
    timing: Timing
    power_w: dict[str, float] | None = None
    label_names: tuple[str, ...] | None = None
    output_kind: str = "indices"  # the layout's kind of output: indices, scores or raw

    @property
    def top1(self) -> np.ndarray | None:
        """Top-1 class index per image."""
        return None if self.indices is None else self.indices[:, 0]

    def topk_labels(self) -> list[list[Any]]:
        """Names of all returned classes per image."""
        if self.indices is None:
            raise ValueError("the design outputs a feature map, not classes")
        return labels_of(self.indices, self.label_names)

    def top_classes(self, k: int | None = None) -> list[list[tuple[int, str, Any]]]:
        """Per image the best classes as ``(index, name, score)``, best first: ``k`` of
        them (default: as many as :attr:`indices` holds). ``score`` is the design's
        integer score, ``None`` when the design outputs class indices only (a TopK layer);
        names are indices as text when the design has no labels."""
        if self.indices is None:
            raise ValueError("the design outputs a feature map, not classes")
        k = self.indices.shape[1] if k is None else k
        n = len(self.outputs)
        if self.output_kind == "scores":
            scores = self.outputs.reshape(n, -1)
            names = self.label_names or tuple(str(i) for i in range(scores.shape[1]))
            return top_k_classes(scores, k, names)  # type: ignore[return-value]
        if not 1 <= k <= self.indices.shape[1]:
            raise ValueError(f"k={k}: the design returns {self.indices.shape[1]} class(es)")
        names_of = labels_of(self.indices[:, :k], self.label_names)
        return [[(int(self.indices[r, j]), str(names_of[r][j]), None) for j in range(k)]
                for r in range(n)]

    def accuracy(self, true_labels: Sequence[int] | np.ndarray) -> float:
        """Fraction of images whose top-1 class equals ``true_labels``."""
        if self.top1 is None:
            raise ValueError("the design outputs a feature map, not classes")
        t = np.asarray(true_labels).reshape(-1)
        if t.size != self.top1.size:
            raise ValueError(f"{t.size} labels for {self.top1.size} images")
        return float(np.mean(self.top1 == t))


@dataclass
class DetectResult:
    """What :meth:`Accelerator.detect` returns."""

    outputs: np.ndarray  # raw integer output grids N×C×H×W
    detections: list[list[Detection]]  # per image, best score first
    placements: list[Placement]  # per image: where it went in the input frame
    timing: Timing
    power_w: dict[str, float] | None = None


def read_network_info(network: Any) -> dict[str, Any]:
    """The parts of a network description the runtime checks a layout against.

    ``network`` is a saved network (``.npz`` from ``lowbit_hdl.netfile.save``, read without
    lowbit_hdl), its JSON description (a ``.json`` file or dict), or a
    ``lowbit_hdl.Network`` object.
    """
    if isinstance(network, (str, Path)):
        path = Path(network)
        if not path.exists():
            raise FileNotFoundError(f"network file {path} does not exist")
        if path.suffix == ".npz":
            with np.load(path) as z:
                if "__network__" not in z:
                    raise LayoutError(f"{path.name} is not a saved lowbit-hdl network")
                d = json.loads(bytes(z["__network__"]).decode())
        else:
            d = json.loads(path.read_text())
    elif isinstance(network, dict):
        d = network
    else:
        layers = [{"kind": getattr(lay, "kind", ""), "k": getattr(lay, "k", None)}
                  for lay in network.layers]
        d = {"name": network.name, "input_shape": list(network.input_shape),
             "input_dtype": str(network.input_dtype), "labels": network.labels,
             "layers": layers, "random_weights": getattr(network, "random_weights", {}),
             "task": getattr(network, "task", None),
             "output_scale": getattr(network, "output_scale", None),
             "output_offset": getattr(network, "output_offset", None)}
    try:
        last = d["layers"][-1] if d.get("layers") else {}
        return {"name": d["name"], "input_shape": tuple(int(s) for s in d["input_shape"]),
                "input_dtype": str(d["input_dtype"]).upper(),
                "labels": tuple(d["labels"]) if d.get("labels") else None,
                "topk": int(last["k"]) if last.get("kind") == "topk" else None,
                "task": str(d["task"]) if d.get("task") else None,
                # layers whose weights and thresholds are random, not trained: {layer: seed}
                "random_weights": {str(k): int(v)
                                   for k, v in dict(d.get("random_weights") or {}).items()},
                # real value of the raw integer output q: scale·q + offset per channel (the
                # training export of a detector), else None
                "output_scale": None if d.get("output_scale") is None else
                np.asarray(d["output_scale"], dtype=np.float64),
                "output_offset": None if d.get("output_offset") is None else
                np.asarray(d["output_offset"], dtype=np.float64)}
    except (KeyError, TypeError, ValueError) as e:
        raise LayoutError(f"not a lowbit-hdl network description ({e})") from e


class Accelerator:
    """A generated design on a board (or its simulation), ready to classify.

    ``bitfile`` is the ``.bit`` with its ``.hwh`` next to it (may be ``None`` for the
    simulated board); ``layout_json`` the build's ``layout.json`` (a path or a
    :class:`DesignLayout`; default: ``layout.json`` next to the bitstream); ``backend`` the
    board (default :class:`PynqBackend`). ``network`` (a saved ``.npz`` network, its JSON, or
    a ``Network``) is checked against the layout when given. ``dma_name`` defaults to the
    layout's ``ip_names.dma`` (the build records its block-design cell names; layout files
    without them mean ``axi_dma_0``). ``max_batch`` frames are sent
    per DMA round trip at most (buffers for that many are allocated once, here);
    ``per_frame`` sends every frame in its own MM2S transfer; a batch whose DMA transfers do
    not finish within ``timeout_s`` raises.

    Hybrid designs (``layout.ddr``: some layers' weights in DDR) also need ``ddr_weights``:
    ``{layer: (MH, MW) weight matrix}`` or a ``.npz`` of them (default: the bundle's
    ``ddr_weights.npz`` next to ``layout.json``, or next to the bitstream when the layout is
    given as an object). They are packed into one DDR image in a buffer of the backend, once,
    here, and every batch runs under :class:`~.control.HybridControl` (``FRAMES``,
    ``CTRL.START``, then ``STATUS.DONE`` and the performance counters, summed into
    :attr:`Timing.counters`); an AXI error on the weight reads, or a run that does not finish
    within ``timeout_s``, raises :class:`~.control.AcceleratorError` after a soft reset of
    the accelerator, and so does a control port whose ID register does not match.

    Raises ``FileNotFoundError`` for a missing bitstream, ``.hwh`` or layout file,
    :class:`LayoutError` when the layout does not match the bitstream's name, the DMA's
    stream widths or the network, and :class:`~.backend.OverlayError` when PYNQ cannot load
    the bitstream. :meth:`classify` and :meth:`execute` raise the
    :class:`~.backend.BackendError` kinds of the board: on PYNQ a
    :class:`~.backend.DmaError` (an error bit in a DMA status register),
    :class:`~.backend.FramingError` (an output frame shorter than the layout says) or
    :class:`~.backend.DmaTimeoutError`, each after the DMA was reset, so the object can be
    used again (open it anew to reset the accelerator itself).
    """

    def __init__(self, bitfile: str | Path | None = None,
                 layout_json: str | Path | DesignLayout | None = None,
                 backend: Backend | None = None, *, network: Any = None,
                 dma_name: str | None = None, max_batch: int = 256, per_frame: bool = False,
                 timeout_s: float = 10.0, ddr_weights: str | Path | dict | None = None) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch={max_batch} must be ≥ 1")
        self.backend = backend if backend is not None else PynqBackend()
        self.bitfile = Path(bitfile) if bitfile is not None else None
        self.hwh: Path | None = None
        self.dma: DmaConfig | None = None
        self.timeout_s = timeout_s
        if self.bitfile is not None:
            if not self.bitfile.exists():
                raise FileNotFoundError(f"bitstream {self.bitfile} does not exist (build it "
                                        "with the Vivado Tcl in <build>/vivado, see "
                                        "docs/deploy.md)")
            self.hwh = self.bitfile.with_suffix(".hwh")
            if not self.hwh.exists():
                raise FileNotFoundError(f"hardware hand-off {self.hwh.name} is missing: copy "
                                        f"it next to {self.bitfile.name} (PYNQ needs both)")
        elif self.backend.requires_bitstream:
            raise ValueError("a bitstream (.bit with its .hwh) is needed on a board")

        if isinstance(layout_json, DesignLayout):
            self.layout = layout_json
        else:
            if layout_json is None:
                if self.bitfile is None:
                    raise ValueError("give layout_json (the build's layout.json)")
                layout_json = self.bitfile.with_name("layout.json")
            self.layout = DesignLayout.load(layout_json)
        dma_name = dma_name or self.layout.ip_names.dma
        self.dma_name = dma_name
        self._check_bitstream_name()
        if self.hwh is not None:
            self._check_dma(dma_name)
        #: :func:`read_network_info` of ``network`` (None without one)
        self.network_info: dict[str, Any] | None = None
        if network is not None:
            self.check_network(network)
            self.network_info = read_network_info(network)

        self.backend.load(self.bitfile, dma_name)
        #: hybrid designs (weights in DDR): the DDR image and control registers
        self.control: HybridControl | None = None
        if self.layout.ddr is not None:
            if ddr_weights is None:  # the bundle's file, next to layout.json
                where = layout_json if isinstance(layout_json, (str, Path)) else self.bitfile
                if where is None:
                    raise ValueError("a hybrid design needs ddr_weights (the bundle's "
                                     f"{DDR_WEIGHTS_FILE})")
                ddr_weights = Path(where).with_name(DDR_WEIGHTS_FILE)
            weights = ddr_weights if isinstance(ddr_weights, dict) else \
                load_ddr_weights(ddr_weights)
            self.control = HybridControl(self.backend, self.layout.ddr, weights,
                                         self.layout.ip_names.accelerator)
        self.framing = Framing.for_layout(self.layout, per_frame)
        limits = [m for m in (self.backend.max_transfer_bytes,
                              self.dma.max_transfer_bytes if self.dma else None) if m]
        ifb = self.layout.input.frame_bytes
        if limits and ifb > min(limits):
            raise LayoutError(f"an input frame is {ifb} bytes but the DMA moves at most "
                              f"{min(limits)} bytes per transfer: rebuild with a wider DMA "
                              "length register (c_sg_length_width)")
        per_call = max(1, min(limits) // ifb) if limits and not per_frame else max_batch
        self.max_batch = min(max_batch, per_call)
        self._send = self.backend.allocate(self.framing.send_bytes(self.max_batch))
        self._recv = self.backend.allocate(self.framing.recv_bytes(self.max_batch))

    # -- checks ------------------------------------------------------------------------------

    def _check_bitstream_name(self) -> None:
        if self.bitfile is not None and self.bitfile.stem != self.layout.network:
            raise LayoutError(f"layout.json describes network {self.layout.network!r} but the "
                              f"bitstream is {self.bitfile.name}: they come from different "
                              f"builds (expected {self.layout.network}.bit)")

    def _check_dma(self, dma_name: str) -> None:
        assert self.hwh is not None
        try:
            self.dma = dma_config(self.hwh, dma_name)
        except HwhError as e:
            raise LayoutError(str(e)) from e
        d, lay = self.dma, self.layout
        if not (d.has_mm2s and d.has_s2mm):
            raise LayoutError(f"{dma_name} needs both MM2S and S2MM channels")
        if d.scatter_gather or d.micro:
            mode = "scatter-gather" if d.scatter_gather else "micro"
            raise LayoutError(f"{dma_name} is in {mode} mode; the runtime drives the AXI DMA "
                              "in simple mode")
        for what, dma_bits, sl in (("MM2S (input)", d.mm2s_tdata_bits, lay.input),
                                   ("S2MM (output)", d.s2mm_tdata_bits, lay.output)):
            if dma_bits is not None and dma_bits != sl.tdata_bits:
                raise LayoutError(f"{dma_name} {what} stream is {dma_bits} bits wide but "
                                  f"layout.json says tdata is {sl.tdata_bits} bits: the "
                                  "layout and the bitstream come from different builds")

    def check_network(self, network: Any) -> None:
        """Raise :class:`LayoutError` when ``network`` does not match the layout."""
        info = read_network_info(network)
        lay = self.layout
        problems = []
        if info["name"] != lay.network:
            problems.append(f"network name {info['name']!r} ≠ layout's {lay.network!r}")
        if info["input_shape"] != tuple(lay.input.shape):
            problems.append(f"input shape {info['input_shape']} ≠ layout's {lay.input.shape}")
        if info["input_dtype"] != lay.input.dtype.upper():
            problems.append(f"input type {info['input_dtype']} ≠ layout's {lay.input.dtype}")
        if info["topk"] is not None and tuple(lay.output.shape) != (info["topk"], 1, 1):
            problems.append(f"output (top-{info['topk']}) ≠ layout's {lay.output.shape}")
        if info["labels"] and lay.labels and tuple(info["labels"]) != tuple(lay.labels):
            problems.append("class labels differ")
        if info["task"] != lay.task:
            problems.append(f"task {info['task']!r} ≠ layout's {lay.task!r}")
        if problems:
            raise LayoutError("layout.json does not match the network: " + "; ".join(problems))

    # -- running -----------------------------------------------------------------------------

    def execute(self, frames: np.ndarray, batch: int | None = None) -> tuple[np.ndarray, Timing]:
        """Integer input frames N×C×H×W (the network's input type) → integer outputs
        N×C×H×W, in batches of ``batch`` frames per DMA round trip."""
        lay, f = self.layout, self.framing
        b = self.max_batch if batch is None else int(batch)
        if not 1 <= b <= self.max_batch:
            raise ValueError(f"batch={batch} must be in 1..{self.max_batch} (buffers are "
                             "allocated for max_batch frames)")
        packed = lay.input.pack(frames)  # checks shape and value range
        n = packed.shape[0]
        if n == 0:
            raise ValueError("no frames to run")
        out = np.empty((n, f.out_frame_bytes), dtype=np.uint8)
        timing = Timing(n, 0, 0.0, simulated=self.backend.simulated, clock_mhz=lay.clock_mhz)
        for s in range(0, n, b):
            m = min(b, n - s)
            if f.per_frame:
                self._send[:m * f.in_stride].reshape(m, f.in_stride)[:, :f.in_frame_bytes] = \
                    packed[s:s + m]
            else:
                self._send[:m * f.in_frame_bytes] = packed[s:s + m].reshape(-1)
            if self.control is not None:
                self.control.start(m)
            try:
                st = self.backend.stream(self._send, self._recv, m, f, self.timeout_s)
            except BackendError:
                if self.control is not None:  # the run cannot finish: stop it
                    self.control.abort()
                raise
            if self.control is not None:
                counters = self.control.finish(self.timeout_s)
                for key, v in counters.items():
                    timing.counters[key] = timing.counters.get(key, 0) + v
            out[s:s + m] = np.asarray(self._recv[:m * f.out_stride]).reshape(
                m, f.out_stride)[:, :f.out_frame_bytes]
            timing.calls += 1
            timing.device_s += st.seconds
            if st.cycles is not None:
                timing.cycles = (timing.cycles or 0) + st.cycles
            if st.latency_cycles:
                timing.latency_cycles.extend(st.latency_cycles)
        return lay.output.unpack(out), timing

    @property
    def task(self) -> str | None:
        """The network's task (``layout.json``'s ``task``): "imagenet", "yolo-voc" or
        ``None``."""
        return self.layout.task

    def class_names(self) -> tuple[str, ...] | None:
        """The design's class names: its labels, else the ImageNet names for an "imagenet"
        network, else ``None``."""
        if self.layout.labels:
            return self.layout.labels
        return imagenet_classes() if self.layout.task == "imagenet" else None

    def input_frames(self, images: Any, *, resize: bool = False, crop: bool = False,
                     convert: bool = False, quantized: bool = False) -> np.ndarray:
        """The integer frames N×C×H×W :meth:`classify` sends for ``images`` (same options;
        an "imagenet" network's preprocessing included)."""
        lay = self.layout
        if lay.task == "imagenet" and not (resize or crop or quantized):
            c, h, w = lay.input.shape
            if c != 3 or h != w:
                raise LayoutError(f"an imagenet network takes 3×S×S frames, not {c}×{h}×{w}")
            images = imagenet_frames(images, h, 256 * h // 224)
        return to_frames(images, lay.input.shape, lay.input.dtype, resize=resize, crop=crop,
                         convert=convert, quantized=quantized)

    def detection_frames(self, images: Any, letterboxed: bool = True
                         ) -> tuple[np.ndarray, list[Placement]]:
        """The ``uint8`` frames :meth:`detect` sends for ``images`` and where each image went
        (:func:`~lowbit_hdl.runtime.yolo.detection_frames`)."""
        return detection_frames(images, self.layout.input.shape, letterboxed)

    def classify(self, images: Any, batch: int | None = None, k: int | None = None, *,
                 resize: bool = False, crop: bool = False, convert: bool = False,
                 quantized: bool = False) -> ClassifyResult:
        """Classify one image or a batch (see :func:`~lowbit_hdl.runtime.preprocess.to_frames`
        for the accepted forms and the ``resize``/``crop``/``convert``/``quantized``
        options). ``batch`` frames travel per DMA round trip (default: ``max_batch``);
        ``k`` classes are returned per image (default: all the design gives, 1 for
        scores).

        For an "imagenet" network (:attr:`task`) images of another size than the input
        (files too) get ImageNet's preprocessing unless ``resize``, ``crop`` or
        ``quantized`` is given: shorter side to 256 (for a 224 input), centre crop
        (:func:`~lowbit_hdl.runtime.imagenet.imagenet_frames`); classes are named with
        the 1000 ImageNet names when the design has no labels of its own
        (:meth:`ClassifyResult.top_classes`)."""
        t0 = time.perf_counter()
        lay = self.layout
        frames = self.input_frames(images, resize=resize, crop=crop, convert=convert,
                                   quantized=quantized)
        outputs, timing = self.execute(frames, batch)
        kind = lay.kind_of_output()
        indices: np.ndarray | None = None
        if kind == "indices":
            indices = outputs.reshape(outputs.shape[0], -1)
            if k is not None:
                if not 1 <= k <= indices.shape[1]:
                    raise ValueError(f"k={k}: the design returns {indices.shape[1]} class(es)")
                indices = indices[:, :k]
        elif kind == "scores":
            indices = topk(outputs, 1 if k is None else k)
        power = self.backend.power()
        timing.total_s = time.perf_counter() - t0
        names = self.class_names()
        labels = labels_of(indices[:, 0], names) if indices is not None else None
        return ClassifyResult(outputs, indices, labels, timing, power, names, kind)

    def output_affine(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(scale, offset)`` per output channel that the network's export records (the
        real value of an output integer ``q`` is ``scale·q + offset``), or ``None`` when the
        accelerator was opened without a network or its network has none (untrained)."""
        info = self.network_info
        if info is None or info.get("output_scale") is None:
            return None
        return info["output_scale"], info["output_offset"]

    def detect(self, images: Any, scale: Any = None, offset: Any = None, *,
               conf_thresh: float = DEFAULT_CONF_THRESH,
               nms_thresh: float = DEFAULT_NMS_THRESH, letterboxed: bool = True,
               batch: int | None = None, anchors: Any = VOC_ANCHORS,
               class_names: Sequence[str] | None = None) -> DetectResult:
        """Detect objects with a Tiny-YOLO-style design (a raw A·(5 + K)×H×W output grid).

        ``images``: one image (file, or ``uint8`` H×W×C / C×H×W array), a list of them or
        a batch array. Each is letterboxed to the input size (``letterboxed=False``:
        stretched; an image of exactly the input size passes unchanged), run, and its grid
        decoded by :func:`~lowbit_hdl.runtime.yolo.detect_grid`: real values
        ``scale · q + offset`` of the integer outputs ``q`` (``scale``, ``offset``: numbers
        or one per channel; by default those the network's export records,
        :meth:`output_affine`; a given ``scale`` without ``offset`` means offset 0), region
        decoding with ``anchors``, score > ``conf_thresh``, per-class NMS at IoU >
        ``nms_thresh``. Boxes are in the pixels of each original image. ``class_names``
        default to the layout's labels, else the 20 VOC classes.
        """
        t0 = time.perf_counter()
        lay = self.layout
        if lay.kind_of_output() != "raw":
            raise LayoutError("detect needs a design that outputs a feature map (the region "
                              f"grid), this one outputs {lay.kind_of_output()}")
        if scale is None:
            aff = self.output_affine()
            if aff is None:
                raise LayoutError("detect needs the scale of the output grid: give scale "
                                  "(and offset), or open the accelerator with the network "
                                  "that `train --voc` exported (it records them)")
            if offset is not None:
                raise ValueError("offset without scale: give both, or neither to use the "
                                 "export's")
            scale, offset = aff
        elif offset is None:
            offset = 0.0
        frames, placements = self.detection_frames(images, letterboxed)
        outputs, timing = self.execute(to_frames(frames, lay.input.shape, lay.input.dtype),
                                       batch)
        names = tuple(class_names) if class_names is not None else \
            (lay.labels or VOC_CLASSES)
        dets = [detect_grid(outputs[i], scale, offset, placement=placements[i],
                            conf_thresh=conf_thresh, nms_thresh=nms_thresh, anchors=anchors,
                            class_names=names) for i in range(len(placements))]
        power = self.backend.power()
        timing.total_s = time.perf_counter() - t0
        return DetectResult(outputs, dets, placements, timing, power)

    def close(self) -> None:
        """Free the DMA buffers."""
        self.backend.close()

    def __enter__(self) -> Accelerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
