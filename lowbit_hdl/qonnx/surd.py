"""Exact numbers of the form ``p + r·√d`` (``p``, ``r``, ``d`` rational, ``d > 0``).

Folding a batch norm divides by ``√(var + eps)``, which is irrational in general; the
importer keeps every per-channel scale and offset in this form so that the integer
thresholds it derives are the exact real-number boundaries of the graph's arithmetic (the
graph's float parameters taken as the exact binary fractions they are). Only one square
root per value is supported: a second, different one raises :class:`ValueError`.
"""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = ["Surd", "exact"]


def exact(x: float | int | Fraction) -> Fraction:
    """The exact rational value of a float (every finite float is a binary fraction)."""
    if isinstance(x, Fraction):
        return x
    if isinstance(x, float) and not math.isfinite(x):
        raise ValueError(f"not a finite number: {x}")
    return Fraction(x)


def _rational_sqrt(d: Fraction) -> Fraction | None:
    """√d when it is rational, else None."""
    n, m = d.numerator, d.denominator
    rn, rm = math.isqrt(n), math.isqrt(m)
    return Fraction(rn, rm) if rn * rn == n and rm * rm == m else None


def _sign(x: Fraction) -> int:
    return (x > 0) - (x < 0)


class Surd:
    """``p + r·√d``; ``d = 0`` (or ``r = 0``) means a rational number."""

    __slots__ = ("p", "r", "d")

    def __init__(self, p: Fraction | int | float = 0, r: Fraction | int | float = 0,
                 d: Fraction | int | float = 0) -> None:
        p, r, d = exact(p), exact(r), exact(d)
        if d < 0:
            raise ValueError(f"square root of a negative number {d}")
        if r != 0 and d != 0:
            root = _rational_sqrt(d)
            if root is not None:
                p, r, d = p + r * root, Fraction(0), Fraction(0)
        if r == 0 or d == 0:
            r, d = Fraction(0), Fraction(0)
        self.p, self.r, self.d = p, r, d

    @classmethod
    def sqrt(cls, d: Fraction | float) -> Surd:
        """√d exactly."""
        return cls(0, 1, d)

    def __repr__(self) -> str:
        return f"Surd({self.p}, {self.r}, {self.d})" if self.r else f"Surd({self.p})"

    def _common(self, other: Surd) -> Fraction:
        if self.r and other.r and self.d != other.d:
            raise ValueError("two different square roots in one value (two batch norms "
                             "without a quantizer between them?)")
        return self.d if self.r else other.d

    @staticmethod
    def of(x: object) -> Surd:
        return x if isinstance(x, Surd) else Surd(x)  # type: ignore[arg-type]

    def __add__(self, other: object) -> Surd:
        o = Surd.of(other)
        return Surd(self.p + o.p, self.r + o.r, self._common(o))

    __radd__ = __add__

    def __neg__(self) -> Surd:
        return Surd(-self.p, -self.r, self.d)

    def __sub__(self, other: object) -> Surd:
        return self + (-Surd.of(other))

    def __rsub__(self, other: object) -> Surd:
        return Surd.of(other) - self

    def __mul__(self, other: object) -> Surd:
        o = Surd.of(other)
        d = self._common(o)
        return Surd(self.p * o.p + self.r * o.r * d, self.p * o.r + self.r * o.p, d)

    __rmul__ = __mul__

    def inverse(self) -> Surd:
        """1 / self (the conjugate over the norm)."""
        norm = self.p * self.p - self.r * self.r * self.d
        if norm == 0:
            raise ZeroDivisionError("division by zero")
        return Surd(self.p / norm, -self.r / norm, self.d)

    def __truediv__(self, other: object) -> Surd:
        return self * Surd.of(other).inverse()

    def __rtruediv__(self, other: object) -> Surd:
        return Surd.of(other) * self.inverse()

    def sign(self) -> int:
        """-1, 0 or +1, exactly."""
        sp, sr = _sign(self.p), _sign(self.r)
        if sr == 0 or sp == sr:
            return sp if sp else sr
        if sp == 0:
            return sr
        # opposite signs: compare p² with r²·d
        return sp * _sign(self.p * self.p - self.r * self.r * self.d)

    def __float__(self) -> float:
        return float(self.p) + float(self.r) * math.sqrt(float(self.d))

    def ceil(self) -> int:
        """The smallest integer n with n ≥ self, exactly."""
        n = math.ceil(float(self))
        while (self - n).sign() > 0:
            n += 1
        while (self - (n - 1)).sign() <= 0:
            n -= 1
        return n

    def floor(self) -> int:
        """The largest integer n with n ≤ self, exactly."""
        return -(-self).ceil()
