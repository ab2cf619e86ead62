"""Stream layout of a generated design: how frames become AXI-Stream bytes and back.

The build writes ``layout.json``; the runtime (on the board or against the simulated board)
reads it. Numpy-only (numpy 1.x and 2.x); it imports only its runtime siblings
(:mod:`.dtypes`, :mod:`.words`), so it ships to a PYNQ board as it is.

Packing rule: a frame (C, H, W) travels in (H, W, C) order, ``elems_per_beat`` elements per
beat, element j of a beat in bits [j·elem_bits, (j+1)·elem_bits) of ``tdata``, ``tdata``
zero-padded to ``tdata_bits`` (a multiple of 8) and sent little-endian (the word rule of
:mod:`.words`). BIPOLAR values travel as 1 (+1) and 0 (-1); INTk as two's complement
(:meth:`DataType.encode <.dtypes.DataType.encode>`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from .ddrimage import DdrImageLayout, DdrLayoutError
from .dtypes import DataType, parse_dtype
from .words import pack_beats, unpack_beats

__all__ = ["StreamLayout", "DesignLayout", "IpNames", "LayoutError", "OUTPUT_KINDS", "TASKS"]

OUTPUT_KINDS = ("indices", "scores", "raw")
#: what a network is for, which decides its pre- and post-processing on the board:
#: "imagenet" (resize and centre crop, :mod:`.imagenet`; top-k with ImageNet class names),
#: "yolo-voc" (letterbox, Tiny-YOLO region decoding and NMS, :mod:`.yolo`); a network without
#: a task is a plain classifier of its own labels (or outputs a feature map)
TASKS = ("imagenet", "yolo-voc")


class LayoutError(ValueError):
    """Data that does not match the design's stream layout."""


def _dtype(text: str) -> DataType:
    try:
        return parse_dtype(text)
    except ValueError as e:
        raise LayoutError(str(e)) from e


@dataclass(frozen=True)
class StreamLayout:
    """One AXI-Stream direction: frame shape and type, and how elements fill beats."""

    shape: tuple[int, int, int]  # (C, H, W)
    dtype: str  # BIPOLAR, UINTk, INTk
    elems_per_beat: int
    tdata_bits: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        bits = _dtype(self.dtype).bits
        if self.tdata_bits % 8 or self.tdata_bits < self.elems_per_beat * bits:
            raise LayoutError(f"tdata_bits={self.tdata_bits} must be a multiple of 8 holding "
                              f"{self.elems_per_beat}×{bits} bits")
        if self.frame_elems % self.elems_per_beat:
            raise LayoutError(f"{self.elems_per_beat} elements per beat do not divide the "
                              f"{self.frame_elems} elements of a frame")

    @property
    def data_type(self) -> DataType:
        """``dtype`` parsed."""
        return _dtype(self.dtype)

    @property
    def elem_bits(self) -> int:
        return self.data_type.bits

    @property
    def frame_elems(self) -> int:
        c, h, w = self.shape
        return c * h * w

    @property
    def beats_per_frame(self) -> int:
        return self.frame_elems // self.elems_per_beat

    @property
    def beat_bytes(self) -> int:
        return self.tdata_bits // 8

    @property
    def frame_bytes(self) -> int:
        return self.beats_per_frame * self.beat_bytes

    def pack(self, frames: np.ndarray) -> np.ndarray:
        """Integer frames (N, C, H, W) → stream bytes (N, frame_bytes) uint8."""
        x = np.asarray(frames)
        if x.shape[1:] != self.shape:
            raise LayoutError(f"frames must be N×{self.shape} (NCHW), got shape {x.shape}")
        dt = self.data_type
        xi = x.astype(np.int64)
        if not dt.allowed(xi):
            raise LayoutError(f"values out of range for {self.dtype}: {xi.min()}..{xi.max()}")
        n = x.shape[0]
        flat = xi.transpose(0, 2, 3, 1).reshape(n, self.beats_per_frame, self.elems_per_beat)
        beats = pack_beats(dt.encode(flat), dt.bits, self.beat_bytes)
        return beats.reshape(n, self.frame_bytes)

    def unpack(self, data: np.ndarray | bytes) -> np.ndarray:
        """Stream bytes (N, frame_bytes) or a flat buffer → integer frames (N, C, H, W)."""
        raw = np.frombuffer(bytes(data), np.uint8) if isinstance(data, (bytes, bytearray)) \
            else np.asarray(data, dtype=np.uint8)
        if raw.size % self.frame_bytes:
            raise LayoutError(f"{raw.size} bytes is not a whole number of "
                              f"{self.frame_bytes}-byte frames")
        n = raw.size // self.frame_bytes
        dt = self.data_type
        beats = raw.reshape(n, self.beats_per_frame, self.beat_bytes)
        vals = dt.decode(unpack_beats(beats, dt.bits, self.elems_per_beat))
        c, h, w = self.shape
        return vals.reshape(n, h, w, c).transpose(0, 3, 1, 2)


@dataclass(frozen=True)
class IpNames:
    """Instance names of the block-design cells the Vivado flow creates.

    The defaults are the names every build uses (``lowbit_hdl.flow.plan.IP_NAMES`` is this
    class's defaults as a dict); ``layout.json`` records them under ``ip_names`` and the
    runtime opens the DMA by ``dma``. Layout files without them get the defaults.
    """

    dma: str = "axi_dma_0"
    accelerator: str = "lowbit_accel_0"
    ps: str = "processing_system7_0"

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, str):
                raise TypeError(f"ip_names.{f.name} must be a str, got {type(v).__name__}")
            if not v:
                raise ValueError(f"ip_names.{f.name} must not be empty")

    @classmethod
    def from_json(cls, d: object) -> IpNames:
        """From ``layout.json``'s ``ip_names`` (missing names take the defaults)."""
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise LayoutError(f"ip_names must be an object, got {d!r}")
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise LayoutError(f"ip_names: unknown cell(s) {unknown}")
        try:
            return cls(**d)
        except (TypeError, ValueError) as e:
            raise LayoutError(str(e)) from e


@dataclass(frozen=True)
class DesignLayout:
    """What the runtime needs to know about a generated design."""

    network: str
    input: StreamLayout
    output: StreamLayout
    clock_mhz: float
    cycles_per_frame: int
    labels: tuple[str, ...] | None = None
    #: what the output frame holds: "indices" (a TopK layer's class indices, largest first),
    #: "scores" (one value per class), "raw" (a feature map); ``None``: guessed, see
    #: :meth:`kind_of_output`
    output_kind: str | None = None
    #: the block design's cell names (the DMA the runtime drives among them)
    ip_names: IpNames = field(default_factory=IpNames)
    #: hybrid designs: the DDR image of the layers whose weights the design reads from DDR
    ddr: DdrImageLayout | None = None
    #: the network's task (one of :data:`TASKS`) or ``None``
    task: str | None = None

    def __post_init__(self) -> None:
        if self.ddr is not None and not isinstance(self.ddr, DdrImageLayout):
            raise TypeError(f"ddr must be a DdrImageLayout, got {type(self.ddr).__name__}")
        if not isinstance(self.ip_names, IpNames):
            raise TypeError(f"ip_names must be an IpNames, got {type(self.ip_names).__name__}")
        if self.output_kind not in (None, *OUTPUT_KINDS):
            raise LayoutError(f"output_kind={self.output_kind!r} must be one of "
                              f"{OUTPUT_KINDS} or None")
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))
        if self.task not in (None, *TASKS):
            raise LayoutError(f"task={self.task!r} must be one of {TASKS} or None")

    def kind_of_output(self) -> str:
        """``output_kind`` when the build set it, else a guess from the output stream:
        a 1×1 UINT output with fewer elements than labels (or one element) holds indices,
        another 1×1 output holds scores, anything else is a raw feature map."""
        if self.output_kind is not None:
            return self.output_kind
        c, h, w = self.output.shape
        if h != 1 or w != 1:
            return "raw"
        n = len(self.labels) if self.labels else None
        if self.output.data_type.kind == "uint" and (c < n if n else c == 1):
            return "indices"
        return "scores"

    def to_json(self) -> dict:
        d = asdict(self)
        d["format"] = "lowbit-hdl-layout"
        d["input"]["shape"] = list(self.input.shape)
        d["output"]["shape"] = list(self.output.shape)
        d["labels"] = list(self.labels) if self.labels else None
        d["ddr"] = self.ddr.to_json() if self.ddr is not None else None
        return d

    @classmethod
    def from_json(cls, d: dict) -> DesignLayout:
        if d.get("format") != "lowbit-hdl-layout":
            raise LayoutError("not a lowbit-hdl layout file")
        try:
            return cls(d["network"], StreamLayout(**d["input"]), StreamLayout(**d["output"]),
                       float(d["clock_mhz"]), int(d["cycles_per_frame"]),
                       tuple(d["labels"]) if d.get("labels") else None,
                       d.get("output_kind"), IpNames.from_json(d.get("ip_names")),
                       DdrImageLayout.from_json(d["ddr"]) if d.get("ddr") else None,
                       d.get("task"))
        except DdrLayoutError as e:
            raise LayoutError(f"layout file: {e}") from e
        except (KeyError, TypeError) as e:
            raise LayoutError(f"layout file is missing or has a malformed field: {e}") from e

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DesignLayout:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"layout file {path} does not exist")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise LayoutError(f"{path}: not valid JSON ({e})") from e
        if not isinstance(d, dict):
            raise LayoutError(f"{path}: not a lowbit-hdl layout file")
        return cls.from_json(d)
