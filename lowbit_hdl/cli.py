"""Command line: ``python -m lowbit_hdl <command> ...``.

Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args)``;
commands whose module is not part of this installation report that and exit with status 2.

A user's mistake (:class:`lowbit_hdl.errors.UserError`: a network, parameter, folding or
output path that breaks a rule) or a file that cannot be read or written is reported as one
line ``lowbit_hdl <command>: error: <message>``; the exit status is 1, or 2 for option values
(argparse's own usage errors also exit with 2). Option values are checked when parsed
(:func:`lowbit_hdl.errors.positive_float` and friends).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import UserError

COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("lowbit_hdl.info", "print the per-layer table of a network"),
    "build": ("lowbit_hdl.flow.build_cmd", "generate Verilog, reports, Vivado flow, driver"),
    "sweep": ("lowbit_hdl.flow.sweep", "print and plot the auto-folder's design space"),
    "sim": ("lowbit_hdl.sim.sim_cmd", "simulate the generated design against the golden model"),
    "train": ("lowbit_hdl.train.cli", "quantization-aware training and export"),
    "deploy-sim": ("lowbit_hdl.sim.deploy_sim_cmd",
                   "classify images through the runtime on a simulated board"),
    "import": ("lowbit_hdl.qonnx.import_cmd", "import a QONNX model (Brevitas, FINN) as a network"),
    "export-qonnx": ("lowbit_hdl.qonnx.export_cmd", "write a network as a QONNX model"),
}


def _load(modname: str) -> tuple[object | None, str | None]:
    """(module, None), or (None, name of the missing package) when a dependency is absent."""
    try:
        return importlib.import_module(modname), None
    except ModuleNotFoundError as e:
        if e.name and not e.name.startswith("lowbit_hdl"):
            return None, e.name.split(".")[0]
        raise


def _command_of(argv: list[str]) -> str | None:
    for a in argv:
        if not a.startswith("-"):
            return a
    return None


def main(argv: list[str] | None = None) -> int:
    """Run one command; only that command's module (and its dependencies) is imported, so
    e.g. ``train`` works on a machine without amaranth and ``build`` without torch."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m lowbit_hdl", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _command_of(argv)
    mod = None
    for name, (modname, helptext) in COMMANDS.items():
        p = sub.add_parser(name, help=helptext)
        if name != chosen:
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            continue
        mod, missing = _load(modname)
        if mod is None:
            print(f"lowbit_hdl {name}: needs the Python package '{missing}', which is not "
                  f"installed here (pip install -e '.[dev,train,qonnx]' installs everything)",
                  file=sys.stderr)
            return 2
        mod.add_arguments(p)  # type: ignore[attr-defined]
    args = parser.parse_args(argv)
    if args.command is None or mod is None:
        parser.print_help()
        return 2
    try:
        return int(mod.run(args) or 0)  # type: ignore[attr-defined]
    except UserError as e:
        print(f"lowbit_hdl {args.command}: error: {e}", file=sys.stderr)
        return e.exit_status
    except OSError as e:  # a file that is missing, unreadable or cannot be written
        print(f"lowbit_hdl {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
