"""Integer data types of lowbit-hdl and their bit encodings.

Values are always plain integers in the golden model:

* ``BIPOLAR``: values {-1, +1}; encoded in hardware as one bit, ``1`` for +1, ``0`` for -1.
* ``UINT(k)``: values 0 … 2**k - 1, encoded as unsigned k-bit.
* ``INT(k)``: values -2**(k-1) … 2**(k-1) - 1, two's complement k-bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DataType", "BIPOLAR", "UINT", "INT", "parse_dtype", "signed_bits_for_range"]


@dataclass(frozen=True)
class DataType:
    """An integer data type: ``kind`` is ``"bipolar"``, ``"uint"`` or ``"int"``."""

    kind: str
    bits: int

    def __post_init__(self) -> None:
        if self.kind not in ("bipolar", "uint", "int"):
            raise ValueError(f"unknown data type kind {self.kind!r}")
        if self.kind == "bipolar" and self.bits != 1:
            raise ValueError("BIPOLAR is always 1 bit wide")
        if self.kind == "int" and self.bits < 2:
            raise ValueError(f"INT({self.bits}): signed types need at least 2 bits")
        if not 1 <= self.bits <= 32:
            raise ValueError(f"{self.kind.upper()}({self.bits}): width must be 1..32 bits")

    @property
    def name(self) -> str:
        return "BIPOLAR" if self.kind == "bipolar" else f"{self.kind.upper()}{self.bits}"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return "BIPOLAR" if self.kind == "bipolar" else f"{self.kind.upper()}({self.bits})"

    @property
    def is_bipolar(self) -> bool:
        return self.kind == "bipolar"

    @property
    def signed(self) -> bool:
        """Whether the value range includes negative numbers."""
        return self.kind != "uint"

    @property
    def min(self) -> int:
        if self.kind == "bipolar":
            return -1
        if self.kind == "uint":
            return 0
        return -(1 << (self.bits - 1))

    @property
    def max(self) -> int:
        if self.kind == "bipolar":
            return 1
        if self.kind == "uint":
            return (1 << self.bits) - 1
        return (1 << (self.bits - 1)) - 1

    def allowed(self, values: np.ndarray) -> bool:
        """True when every value is representable (bipolar: exactly ±1)."""
        v = np.asarray(values)
        if v.size == 0:
            return True
        if not np.issubdtype(v.dtype, np.integer):
            if not np.all(np.equal(np.mod(v, 1), 0)):
                return False
        if self.kind == "bipolar":
            return bool(np.all((v == 1) | (v == -1)))
        return bool(v.min() >= self.min and v.max() <= self.max)

    def check(self, values: np.ndarray, what: str) -> None:
        """Raise ``ValueError`` naming ``what`` when ``values`` do not fit this type."""
        if not self.allowed(values):
            v = np.asarray(values)
            raise ValueError(
                f"{what}: values must be {self.name} "
                f"({'±1' if self.is_bipolar else f'{self.min}..{self.max}'}), "
                f"got range {v.min()}..{v.max()}"
            )

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Integer values → unsigned bit patterns (uint64) as the hardware stores them."""
        v = np.asarray(values, dtype=np.int64)
        if self.kind == "bipolar":
            return (v > 0).astype(np.uint64)
        return (v & ((1 << self.bits) - 1)).astype(np.uint64)

    def decode(self, bits: np.ndarray) -> np.ndarray:
        """Unsigned bit patterns → integer values (int64)."""
        b = np.asarray(bits).astype(np.int64) & ((1 << self.bits) - 1)
        if self.kind == "bipolar":
            return 2 * b - 1
        if self.kind == "int":
            return np.where(b >= (1 << (self.bits - 1)), b - (1 << self.bits), b)
        return b


BIPOLAR = DataType("bipolar", 1)


def UINT(bits: int) -> DataType:  # noqa: N802 - reads like a type name
    """Unsigned ``bits``-wide integers."""
    return DataType("uint", bits)


def INT(bits: int) -> DataType:  # noqa: N802
    """Signed two's-complement ``bits``-wide integers."""
    return DataType("int", bits)


def parse_dtype(text: str) -> DataType:
    """Parse ``"BIPOLAR"``, ``"UINT2"``, ``"INT8"`` (as written by ``DataType.name``)."""
    t = text.strip().upper()
    if t == "BIPOLAR":
        return BIPOLAR
    for kind in ("UINT", "INT"):
        if t.startswith(kind) and t[len(kind):].isdigit():
            return DataType(kind.lower(), int(t[len(kind):]))
    raise ValueError(f"unknown data type {text!r} (expected BIPOLAR, UINTk or INTk)")


def signed_bits_for_range(lo: int, hi: int) -> int:
    """Fewest two's-complement bits that hold every integer in [lo, hi]."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits
