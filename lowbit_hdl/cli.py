"""Command line: ``python -m lowbit_hdl <command> ...``.

Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args)``;
commands whose module is not part of this installation report that and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .ir import NetworkError

COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("lowbit_hdl.info", "print the per-layer table of a network"),
    "build": ("lowbit_hdl.flow.build_cmd", "generate Verilog, reports, Vivado flow, driver"),
    "sim": ("lowbit_hdl.flow.sim_cmd", "simulate the generated design against the golden model"),
    "train": ("lowbit_hdl.train.cli", "quantization-aware training and export"),
    "deploy-sim": ("lowbit_hdl.runtime.sim_cmd",
                   "classify images through the runtime on a simulated board"),
}


def _load(modname: str):
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as e:
        if e.name and modname.startswith(e.name):
            return None
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lowbit_hdl", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    available = {}
    for name, (modname, helptext) in COMMANDS.items():
        mod = _load(modname)
        p = sub.add_parser(name, help=helptext if mod else f"(not available) {helptext}")
        if mod is not None:
            mod.add_arguments(p)
            available[name] = mod
        else:
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    mod = available.get(args.command)
    if mod is None:
        print(f"lowbit_hdl: command '{args.command}' is not implemented in this version",
              file=sys.stderr)
        return 2
    try:
        return int(mod.run(args) or 0)
    except (NetworkError, FileNotFoundError) as e:
        print(f"lowbit_hdl {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
