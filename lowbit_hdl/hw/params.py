"""Constructor parameter checks shared by the hardware modules: ``TypeError`` for a value of
the wrong type, ``ValueError`` for a value that breaks a constraint, both naming it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..runtime.dtypes import DataType

__all__ = ["check_int", "check_choice", "check_dtype"]


def check_int(name: str, value: object, minimum: int = 1, why: str = "") -> int:
    """``value`` as an ``int`` ≥ ``minimum``.

    Parameters
    ----------
    name : str
        Parameter name for the messages.
    value : object
        An ``int`` or NumPy integer (not ``bool``).
    minimum : int
        Smallest allowed value.
    why : str
        Reason appended to the ``ValueError`` message, e.g. ``"(two RAM words)"``.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        If ``value`` is not an integer.
    ValueError
        If it is below ``minimum``.
    """
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}={value!r} must be an int")
    if value < minimum:
        raise ValueError(f"{name}={value} must be ≥ {minimum}" + (f" {why}" if why else ""))
    return int(value)


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``choices``.

    Raises
    ------
    TypeError
        If ``value`` is not a ``str``.
    ValueError
        If it is not one of ``choices``.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name}={value!r} must be a str, one of {tuple(choices)}")
    if value not in choices:
        raise ValueError(f"{name}={value!r} must be one of {tuple(choices)}")
    return value


def check_dtype(name: str, value: object) -> DataType:
    """``value`` if it is a :class:`~lowbit_hdl.runtime.dtypes.DataType`.

    Raises
    ------
    TypeError
        If it is not.
    """
    if not isinstance(value, DataType):
        raise TypeError(f"{name}={value!r} must be a lowbit_hdl DataType")
    return value
