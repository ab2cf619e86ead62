"""The DDR image of a hybrid design: where each DDR layer's weights lie and how the image is
laid out (numpy and stdlib only: the board runtime builds the image at load time).

A hybrid design (``build --arch hybrid``) reads the weights of some layers from DDR instead of
keeping them on chip. Each such layer owns one *region* of the image: its weights in the
order the MVTU consumes them, packed into 64-bit little-endian words by
:mod:`lowbit_hdl.runtime.ddr` (the one owner of the beat and word format). Every frame, the
layer's AXI4 read master reads its whole region once, from ``base + offset``.

Rules (checked here, so the build and the runtime agree):

* regions start at multiples of :data:`REGION_ALIGN` bytes (bursts never cross a 4 KiB page
  at a region start; the read master splits the rest);
* a region holds a whole number of 64-bit words: ``MH·MW·weight_bits`` must be a multiple of
  :data:`WORD_BITS` (else the width converter would carry the pad bits into the next frame);
* ``port`` is the index of the read master (one per DDR layer) and ``hp`` the Zynq HP port it
  is connected to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np

from .ddr import WORD_BITS
from .dtypes import parse_dtype

__all__ = ["WORD_BITS", "REGION_ALIGN", "DdrRegion", "EngineRegion", "DdrImageLayout",
           "DdrLayoutError", "region_bytes", "region_masters", "pack_image"]

#: alignment of every region's start (bytes)
REGION_ALIGN = 4096


class DdrLayoutError(ValueError):
    """A DDR image layout that breaks a rule of this module."""


def region_bytes(weight_bits: int, layer: str = "?") -> int:
    """Bytes of a region holding ``weight_bits`` bits of weights (whole 64-bit words only)."""
    if weight_bits <= 0 or weight_bits % WORD_BITS:
        raise DdrLayoutError(f"layer {layer}: {weight_bits} weight bits are not a whole number "
                             f"of {WORD_BITS}-bit DDR words (MH·MW·weight bits must be a "
                             f"multiple of {WORD_BITS})")
    return weight_bits // 8


@dataclass(frozen=True)
class DdrRegion:
    """One DDR layer's weights in the image.

    ``beat_bits`` is the MVTU weight beat (``PE·SIMD·weight_bits``), ``beats`` the beats per
    frame (``NF·SF``), ``placement`` ``"stream"`` (FC) or ``"tiled"`` (convolution); ``mh``,
    ``mw``, ``pe``, ``simd`` and ``weight_dtype`` are what :func:`pack_image` needs to lay
    the layer's (MH, MW) weight matrix out. ``masters`` read masters (``port``, ``port + 1``,
    …, on HP ports ``hps``; :func:`region_masters`) read it as that many interleaved
    sub-regions (:func:`lowbit_hdl.runtime.ddr.interleave_region`), merged into words of
    ``64·masters`` bits before the width converter; ``hp`` is master 0's HP port.
    """

    layer: str
    placement: str
    offset: int
    nbytes: int
    beat_bits: int
    beats: int
    port: int
    hp: int
    mh: int
    mw: int
    pe: int
    simd: int
    weight_dtype: str
    masters: int = 1
    hps: tuple = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "hps", tuple(self.hps) or (self.hp,))
        if self.masters not in (1, 2, 4) or len(self.hps) != self.masters \
                or self.hps[0] != self.hp \
                or (self.masters > 1 and self.beat_bits % (WORD_BITS * self.masters)):
            raise DdrLayoutError(f"layer {self.layer}: {self.masters} read masters on HP ports "
                                 f"{self.hps} (1, 2 or 4, master 0 on hp={self.hp}, "
                                 f"{self.beat_bits}-bit beats a multiple of "
                                 f"{WORD_BITS}·masters bits)")
        if self.placement not in ("stream", "tiled"):
            raise DdrLayoutError(f"layer {self.layer}: placement {self.placement!r} must be "
                                 "'stream' or 'tiled'")
        if self.offset < 0 or self.offset % REGION_ALIGN:
            raise DdrLayoutError(f"layer {self.layer}: offset {self.offset} is not a multiple "
                                 f"of {REGION_ALIGN}")
        wbits = parse_dtype(self.weight_dtype).bits
        if self.beat_bits != self.pe * self.simd * wbits or \
                self.beats * self.pe * self.simd != self.mh * self.mw:
            raise DdrLayoutError(f"layer {self.layer}: {self.beats} beats of {self.beat_bits} "
                                 f"bits do not match MH={self.mh}, MW={self.mw}, PE={self.pe}, "
                                 f"SIMD={self.simd}, {self.weight_dtype} weights")
        if self.nbytes * 8 != self.beat_bits * self.beats or self.nbytes * 8 % WORD_BITS:
            raise DdrLayoutError(f"layer {self.layer}: {self.nbytes} bytes do not hold "
                                 f"{self.beats} beats of {self.beat_bits} bits in whole "
                                 f"{WORD_BITS}-bit words")

    @property
    def words(self) -> int:
        """64-bit words the read masters fetch per frame (all of them)."""
        return self.nbytes * 8 // WORD_BITS


def region_masters(beat_bits: int, ports: int) -> int:
    """Read masters of a DDR layer's region given up to ``ports`` of them: the largest of 4,
    2, 1 not above ``ports`` whose ``64·masters``-bit merged words divide the layer's
    ``beat_bits``-bit weight beat (more words per cycle than a beat take gain nothing; a
    beat narrower than 128 bits keeps one master)."""
    return next(m for m in (4, 2, 1)
                if m == 1 or (m <= ports and beat_bits % (WORD_BITS * m) == 0))


@dataclass(frozen=True)
class EngineRegion:
    """The engine's part of the image (engine designs): its descriptor table and every
    engine layer's tiles (:mod:`lowbit_hdl.runtime.engine`), ``nbytes`` from ``offset``, read
    by ``masters`` read masters ``port``, ``port + 1``, … (the engine's ``ports``; master
    ``j`` reads sub-region ``j`` of every layer's tiles, master 0 also the table) on HP ports
    ``hps``: ``read_bytes`` per frame (the table and the tiles, not the gaps that align each
    layer's tiles to 4 KiB). ``hp`` is master 0's HP port. ``format`` is the
    datapath's :class:`~lowbit_hdl.runtime.engine.EngineFormat` (as JSON) and ``layers`` the
    engine's Conv/FC layers in order, ``{"name", "descriptor"}`` each: what the runtime needs
    to pack the image from the layers' weights and thresholds (:func:`pack_image`)."""

    offset: int
    nbytes: int
    port: int
    hp: int
    read_bytes: int
    format: dict = field(default_factory=dict)
    layers: tuple = ()
    masters: int = 1
    hps: tuple = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "hps", tuple(self.hps) or (self.hp,))
        if self.masters not in (1, 2, 4) or len(self.hps) != self.masters \
                or self.hps[0] != self.hp:
            raise DdrLayoutError(f"engine: {self.masters} read masters on HP ports "
                                 f"{self.hps} (1, 2 or 4 masters, master 0 on hp={self.hp})")
        if self.offset < 0 or self.offset % REGION_ALIGN:
            raise DdrLayoutError(f"engine: offset {self.offset} is not a multiple of "
                                 f"{REGION_ALIGN}")
        if self.nbytes <= 0 or self.nbytes * 8 % WORD_BITS:
            raise DdrLayoutError(f"engine: {self.nbytes} bytes are not whole "
                                 f"{WORD_BITS}-bit words")
        if not 0 < self.read_bytes <= self.nbytes or self.read_bytes * 8 % WORD_BITS:
            raise DdrLayoutError(f"engine: {self.read_bytes} bytes read per frame do not fit "
                                 f"its {self.nbytes} bytes in whole words")

    @property
    def words(self) -> int:
        """64-bit words the engine reads per frame."""
        return self.read_bytes * 8 // WORD_BITS

    def master_words(self) -> list[int]:
        """64-bit words per frame of each master: master 0 reads the descriptor table, every
        master an equal share of the tiles."""
        from .engine import table_words

        table = table_words(len(self.layers)) if self.layers else 0
        share = (self.words - table) // self.masters
        return [share + (table if j == 0 else 0) for j in range(self.masters)]


@dataclass(frozen=True)
class DdrImageLayout:
    """All regions of one design, in port order, the engine's region (engine designs; its
    read master comes after the regions'), and the image size."""

    regions: tuple[DdrRegion, ...]
    hp_ports: int
    engine: EngineRegion | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "regions", tuple(self.regions))
        end = k = 0
        for r in self.regions:
            if r.port != k:
                raise DdrLayoutError(f"layer {r.layer}: port {r.port}, expected {k} (regions "
                                     "are in port order, each with its masters' ports)")
            if r.offset < end:
                raise DdrLayoutError(f"layer {r.layer}: region at {r.offset} overlaps the "
                                     "previous one")
            if not all(0 <= h < self.hp_ports for h in r.hps):
                raise DdrLayoutError(f"layer {r.layer}: HP ports {r.hps} of {self.hp_ports}")
            end = r.offset + r.nbytes
            k += r.masters
        e = self.engine
        if e is not None:
            if e.port != k:
                raise DdrLayoutError(f"engine: port {e.port}, expected {k}")
            if e.offset < end:
                raise DdrLayoutError("engine: its region overlaps a layer's region")
            if not all(0 <= h < self.hp_ports for h in e.hps):
                raise DdrLayoutError(f"engine: HP ports {e.hps} of {self.hp_ports}")

    @classmethod
    def plan(cls, layers: list[tuple[str, str, int, int, int, int, str]], hp_ports: int = 1,
             engine: dict | None = None, stream_ports: int = 1) -> DdrImageLayout:
        """Lay out regions for ``(layer, placement, mh, mw, pe, simd, weight_dtype)`` in
        order, each at the next :data:`REGION_ALIGN` boundary, then the engine's image
        (engine designs: ``engine`` holds :class:`EngineRegion`'s ``nbytes``,
        ``read_bytes``, ``format`` and ``layers``; its ``masters`` read masters are
        ``format["ports"]``); each region gets :func:`region_masters` of ``stream_ports``
        read masters; read master ``k`` goes to HP port ``k mod hp_ports``."""
        if hp_ports not in (1, 2, 4):
            raise DdrLayoutError(f"hp_ports={hp_ports} must be 1, 2 or 4")
        regions, offset, k = [], 0, 0
        for name, placement, mh, mw, pe, simd, wdt in layers:
            beat_bits = pe * simd * parse_dtype(wdt).bits
            beats = (mh // pe) * (mw // simd)
            nbytes = region_bytes(beat_bits * beats, name)
            n = region_masters(beat_bits, stream_ports)
            regions.append(DdrRegion(name, placement, offset, nbytes, beat_bits, beats, k,
                                     k % hp_ports, mh, mw, pe, simd, wdt, n,
                                     tuple((k + j) % hp_ports for j in range(n))))
            offset += -(-nbytes // REGION_ALIGN) * REGION_ALIGN
            k += n
        region = None
        if engine is not None:
            n = int(engine["format"].get("ports", 1))
            region = EngineRegion(offset, engine["nbytes"], k, k % hp_ports,
                                  engine["read_bytes"], dict(engine["format"]),
                                  tuple(engine["layers"]), n,
                                  tuple((k + j) % hp_ports for j in range(n)))
        return cls(tuple(regions), hp_ports, region)

    @property
    def master_hps(self) -> tuple[int, ...]:
        """The HP port of every AXI4 read master, in port order (the regions', then the
        engine's)."""
        hps = [h for r in self.regions for h in r.hps]
        if self.engine is not None:
            hps.extend(self.engine.hps)
        return tuple(hps)

    @property
    def total_bytes(self) -> int:
        """Bytes of the whole image (the end of the last region)."""
        ends = [r.offset + r.nbytes for r in self.regions]
        if self.engine is not None:
            ends.append(self.engine.offset + self.engine.nbytes)
        return max(ends, default=0)

    @property
    def bytes_per_frame(self) -> int:
        """DDR bytes read per frame (every region once)."""
        return sum(r.nbytes for r in self.regions) \
            + (self.engine.read_bytes if self.engine else 0)

    def region(self, layer: str) -> DdrRegion:
        for r in self.regions:
            if r.layer == layer:
                return r
        raise KeyError(layer)

    def to_json(self) -> dict:
        return {"hp_ports": self.hp_ports, "total_bytes": self.total_bytes,
                "regions": [asdict(r) for r in self.regions],
                **({"engine": asdict(self.engine)} if self.engine is not None else {})}

    @classmethod
    def from_json(cls, d: object) -> DdrImageLayout:
        if not isinstance(d, dict) or not isinstance(d.get("regions"), list):
            raise DdrLayoutError("ddr: expected an object with a 'regions' list")
        try:
            regions = tuple(DdrRegion(**{k: r[k] for k in _REGION_FIELDS if k in r})
                            for r in d["regions"])
            e = d.get("engine")
            engine = EngineRegion(**{k: e[k] for k in ("offset", "nbytes", "port", "hp",
                                                       "read_bytes", "format")},
                                  layers=tuple(e["layers"]), masters=int(e.get("masters", 1)),
                                  hps=tuple(e.get("hps", ()))) if e is not None else None
            return cls(regions, int(d.get("hp_ports", 1)), engine)
        except (KeyError, TypeError) as e:
            raise DdrLayoutError(f"ddr: malformed region ({e})") from None


_REGION_FIELDS = tuple(f.name for f in fields(DdrRegion))


def pack_image(layout: DdrImageLayout, weights: dict[str, np.ndarray],
               thresholds: dict[str, np.ndarray] | None = None) -> bytes:
    """The DDR image: every region's (MH, MW) weight matrix (``weights[layer]``, integer
    values of the region's weight type) in MVTU consumption order, at its offset, and, in an
    engine design, the engine's image (:func:`lowbit_hdl.runtime.engine.pack_engine_image`
    of its layers' ``weights`` and ``thresholds``) at its region; the gaps between regions
    are zero. Raises :class:`DdrLayoutError` for a missing layer or a matrix of the wrong
    shape (values out of range: ``ValueError`` from the type's encoder)."""
    from .ddr import interleave_region, pack_words, weight_beats

    image = bytearray(layout.total_bytes)
    for r in layout.regions:
        if r.layer not in weights:
            raise DdrLayoutError(f"layer {r.layer}: no weights given for its DDR region")
        w = np.asarray(weights[r.layer])
        if w.shape != (r.mh, r.mw):
            raise DdrLayoutError(f"layer {r.layer}: weights of shape {w.shape}, the region "
                                 f"holds ({r.mh}, {r.mw})")
        beats = weight_beats(w, parse_dtype(r.weight_dtype), r.pe, r.simd)
        data = interleave_region(np.asarray(pack_words(beats, r.beat_bits, WORD_BITS),
                                            dtype=np.uint64), r.masters).astype("<u8").tobytes()
        if len(data) != r.nbytes:
            raise DdrLayoutError(f"layer {r.layer}: packed {len(data)} bytes, the region holds "
                                 f"{r.nbytes}")
        image[r.offset:r.offset + r.nbytes] = data
    e = layout.engine
    if e is not None:
        from .engine import EngineFormat, pack_engine_image

        names = [lay["name"] for lay in e.layers]
        missing = [n for n in names if n not in weights]
        if missing:
            raise DdrLayoutError(f"engine: no weights given for layers {missing}")
        t = thresholds or {}
        try:
            words = pack_engine_image([lay["descriptor"] for lay in e.layers],
                                      EngineFormat.from_json(e.format),
                                      [weights[n] for n in names],
                                      [t.get(n) for n in names], names)
        except ValueError as err:
            raise DdrLayoutError(f"engine: {err}") from None
        data = words.astype("<u8").tobytes()
        if len(data) != e.nbytes:
            raise DdrLayoutError(f"engine: packed {len(data)} bytes, its region holds "
                                 f"{e.nbytes}")
        image[e.offset:e.offset + e.nbytes] = data
    return bytes(image)
