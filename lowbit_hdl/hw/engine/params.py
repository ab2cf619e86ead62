"""Build-time parameters of the engine datapath (:class:`EngineParams`) and the descriptor's
``data.StructLayout`` (built from :data:`lowbit_hdl.runtime.engine.DESCRIPTOR_FIELDS`)."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from ...runtime.dtypes import DataType
from ...runtime.engine import (
    DESCRIPTOR_FIELDS,
    ENGINE_PORTS,
    SIGNED_FIELDS,
    engine_thresholds,
    tile_threshold_words,
)
from ..params import check_dtype, check_int

__all__ = ["EngineParams", "descriptor_layout"]


def descriptor_layout() -> data.StructLayout:
    """The descriptor as a ``StructLayout``: the fields of ``DESCRIPTOR_FIELDS`` in order,
    field 0 in the least significant bits (``acc_offset`` signed)."""
    return data.StructLayout({name: (signed(b) if name in SIGNED_FIELDS else unsigned(b))
                              for name, b in DESCRIPTOR_FIELDS})


def _check_shape(name: str, shape: object) -> tuple[int, int, int] | None:
    if shape is None:
        return None
    if not isinstance(shape, tuple) or len(shape) != 3:
        raise TypeError(f"{name}={shape!r} must be an (H, W, C) tuple or None")
    return tuple(check_int(f"{name}[{i}]", v) for i, v in enumerate(shape))  # type: ignore


@dataclass(frozen=True)
class EngineParams:
    """Build-time parameters of :class:`~lowbit_hdl.hw.engine.datapath.EngineDatapath`.

    Parameters
    ----------
    pe, simd : int
        Output channels per output beat and lanes per PE; one divides the other and
        ``pe·simd`` is a multiple of 64 (a weight beat is whole 64-bit words).
    act : DataType
        The engine activation A: BIPOLAR or UINTk, k ≤ 4.
    buffer_words : int
        Words of each activation buffer (a word is ``simd`` elements of ``A.bits``).
    max_sf : int
        Largest ``K·K·CF`` of a layer: the depth of one weight-tile bank.
    acc_bits : int
        Width of a U-domain threshold.
    raw_bits : int
        Width of a raw output element (0: no raw port).
    ports : int
        64-bit words per tile-stream beat (1, 2 or 4, dividing ``pe·simd/64``): one AXI4
        read master each in the sequencer.
    load_shape : tuple or None
        (H, W, C) of the map the front writes into buffer 0 (``None``: no loader).
    load_elems : int
        Elements per beat of the load stream (divides ``simd`` or a multiple of it, and
        divides C).
    drain_shape : tuple or None
        (H, W, C) of the final map read out pixel-major by the drain (``None``: no drain).

    Raises
    ------
    TypeError
        If a value has the wrong type.
    ValueError
        If a value breaks a constraint (named in the message).
    """

    pe: int
    simd: int
    act: DataType
    buffer_words: int
    max_sf: int
    acc_bits: int
    raw_bits: int = 0
    ports: int = 1
    load_shape: tuple[int, int, int] | None = None
    load_elems: int = 1
    drain_shape: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        pe, simd = check_int("pe", self.pe), check_int("simd", self.simd)
        if pe % simd and simd % pe:
            raise ValueError(f"pe={pe} and simd={simd}: one must divide the other")
        if pe * simd % 64:
            raise ValueError(f"pe·simd = {pe * simd} must be a multiple of 64")
        act = check_dtype("act", self.act)
        if act.kind == "int" or act.bits > 4:
            raise ValueError(f"act={act}: the engine activation is BIPOLAR or UINTk, k ≤ 4")
        check_int("buffer_words", self.buffer_words)
        check_int("max_sf", self.max_sf)
        check_int("acc_bits", self.acc_bits)
        check_int("raw_bits", self.raw_bits, 0)
        if check_int("ports", self.ports) not in ENGINE_PORTS:
            raise ValueError(f"ports={self.ports} must be one of {ENGINE_PORTS}")
        if pe * simd // 64 % self.ports:
            raise ValueError(f"ports={self.ports} does not divide the {pe * simd // 64} words "
                             "of a weight beat")
        load = _check_shape("load_shape", self.load_shape)
        e = check_int("load_elems", self.load_elems)
        if load is not None:
            if simd % e and e % simd:
                raise ValueError(f"load_elems={e} must divide simd={simd} or be a multiple")
            if load[2] % e:
                raise ValueError(f"load_elems={e} must divide the loaded channels {load[2]}")
            if act.is_bipolar and load[2] % simd:
                raise ValueError(f"BIPOLAR maps need C % simd == 0 (C={load[2]})")
        drain = _check_shape("drain_shape", self.drain_shape)
        for name, shape in (("load_shape", load), ("drain_shape", drain)):
            if shape is not None and self.map_words(shape) > self.buffer_words:
                raise ValueError(f"{name}={shape} needs {self.map_words(shape)} words, "
                                 f"buffer_words={self.buffer_words}")

    @property
    def addr_bits(self) -> int:
        """Bits of an activation-buffer word address."""
        return max(1, (self.buffer_words - 1).bit_length())

    @property
    def abits(self) -> int:
        """Bits of one activation element."""
        return self.act.bits

    @property
    def word_bits(self) -> int:
        """Bits of one buffer word: ``simd·A.bits``."""
        return self.simd * self.act.bits

    @property
    def thresholds(self) -> int:
        """Thresholds per channel (T)."""
        return engine_thresholds(self.act)

    @property
    def t_words(self) -> int:
        """Threshold words at the head of a non-raw tile (padded to whole beats of
        ``ports`` words)."""
        return tile_threshold_words(self.pe, self.act, self.acc_bits, self.ports)

    @property
    def beat_words(self) -> int:
        """64-bit words of one weight beat: ``pe·simd / 64``."""
        return self.pe * self.simd // 64

    def cf(self, channels: int) -> int:
        """Channel folds of a map of ``channels`` channels."""
        return -(-channels // self.simd)

    def map_words(self, shape: tuple[int, int, int]) -> int:
        """Buffer words of an (H, W, C) map."""
        h, w, c = shape
        return h * w * self.cf(c)
