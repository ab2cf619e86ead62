"""The errors a user's mistake raises, and the checks of command-line numbers.

Every mistake in what a user gives lowbit-hdl (a network file, a saved ``.npz``, a folding
file, an option value, an output folder) raises a :class:`UserError`; its message names the
file, the layer and the rule. The command line (:mod:`lowbit_hdl.cli`) prints it as one line
``lowbit_hdl <command>: error: <message>`` and exits with :attr:`UserError.exit_status`
(1 for bad inputs, 2 for bad option values, like argparse's own usage errors).

::

    UserError
    ├── UsageError               an option value or combination (exit status 2)
    ├── OutputError              an output folder that cannot be one (a file, below a file)
    ├── DatasetError             a training data folder or file that cannot be used
    ├── GraphError               a QONNX/ONNX graph that cannot be imported or exported
    │   └── UnsupportedGraphError   … a node it cannot map (names the node, its op, why)
    └── NetworkError             a network description or its parameters break a rule
        ├── NetworkTypeError     … a field of the wrong type (also a TypeError)
        ├── NetworkFileError     a network file that cannot be read (damaged, foreign, raises)
        └── MissingParametersError  layers without weights where they are needed
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = [
    "UserError",
    "UsageError",
    "OutputError",
    "DatasetError",
    "NetworkError",
    "NetworkTypeError",
    "NetworkFileError",
    "MissingParametersError",
    "BudgetError",
    "GraphError",
    "UnsupportedGraphError",
    "positive_float",
    "positive_int",
    "nonnegative_float",
    "nonnegative_int",
]


class UserError(Exception):
    """A mistake in what the user gave; the message names the file, layer and rule."""

    #: exit status of the command line
    exit_status = 1


class UsageError(UserError, ValueError):
    """A command-line option value or combination that is not allowed."""

    exit_status = 2


class OutputError(UserError, ValueError):
    """An output path that cannot be a folder (it is a file, or lies below a file)."""


class DatasetError(UserError, ValueError):
    """A training data set that cannot be used: a folder without the expected layout, a
    missing image, an annotation without objects or with an unknown class (the message
    names the file)."""


class GraphError(UserError, ValueError):
    """A QONNX/ONNX model that cannot be read, imported or written (:mod:`lowbit_hdl.qonnx`)."""


class UnsupportedGraphError(GraphError):
    """A node of a QONNX graph that has no exact equivalent in a lowbit network.

    The message names the node, its op type and why; :attr:`node` and :attr:`op` hold the
    first two.
    """

    def __init__(self, node: str, op: str, why: str) -> None:
        super().__init__(f"node {node!r} ({op}): {why}")
        self.node, self.op, self.why = node, op, why


class NetworkError(UserError, ValueError):
    """An invalid network description; the message names the layer and the broken rule."""


class NetworkTypeError(NetworkError, TypeError):
    """A network or layer field of the wrong type (``pe=2.0``, a string as a layer)."""


class NetworkFileError(NetworkError):
    """A network file that cannot be read: a damaged or foreign ``.npz``, a ``.py`` that
    raises (the message names the file and line), or one that defines no network."""


class BudgetError(UserError, ValueError):
    """No design of the auto-folder's search meets the given LUT/BRAM budget (and the part's
    limits); the message names the cheapest design there is, :attr:`cheapest` holds it
    (``{"cycles_per_frame", "lut", "ff", "bram36", "dsp", "folding"}``)."""

    def __init__(self, message: str, cheapest: dict) -> None:
        super().__init__(message)
        self.cheapest = dict(cheapest)


class MissingParametersError(NetworkError):
    """Layers without weights and thresholds where parameters are needed (build, sim,
    deploy-sim); ``--random-weights`` attaches random ones explicitly."""

    def __init__(self, message: str, layers: list[str]) -> None:
        super().__init__(message)
        self.layers = list(layers)


def _number(kind: type, test: Callable[[float], bool], rule: str
            ) -> Callable[[str], int | float]:
    """An argparse ``type`` that parses ``kind`` and accepts only finite values passing
    ``test`` (the message states ``rule``)."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        if not math.isfinite(value) or not test(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    parse.__name__ = f"{kind.__name__} {rule}"
    return parse


#: argparse types for option values: finite numbers > 0 or ≥ 0
positive_float = _number(float, lambda v: v > 0, "> 0")
positive_int = _number(int, lambda v: v > 0, "≥ 1")
nonnegative_float = _number(float, lambda v: v >= 0, "≥ 0")
nonnegative_int = _number(int, lambda v: v >= 0, "≥ 0")


def layer_names(text: str) -> list[str]:
    """An argparse ``type``: comma-separated layer names (at least one)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected layer names separated by commas")
    return names
