"""Dry run of the Vivado Tcl with ``tclsh``: every Vivado command is replaced by a recorder
(a Tcl prelude, ``lowbit_hdl/flow/vivado_files/dry_run_prelude.tcl``), so the script's Tcl
syntax, control flow and file handling run for real while its Vivado calls are captured for
inspection.

Commands in :data:`lowbit_hdl.flow.vivado.TCL_VIVADO_COMMANDS` are recorded (those whose
result the script uses get a plausible one: a cell's name, ``100%`` progress, the tested
Vivado version); any other unknown command is an error, as in Vivado. ``wait_on_run impl_1``
creates stand-in bitstream and handoff files where Vivado 2022.2 puts them, so the copy step
is exercised too.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .vivado import TCL_VIVADO_COMMANDS, VIVADO_VERSION, tcl_list, tcl_word, vivado_file

__all__ = ["TclRun", "stub_prelude", "dry_run", "tclsh_available"]

@dataclass
class TclRun:
    """Result of a dry run: the recorded Vivado calls (command + arguments) and output."""

    calls: list[list[str]]
    stdout: str
    produced: list[str]
    #: the temporary copy of the output folder the script ran in (deleted after the run;
    #: recorded paths start with it)
    out_dir: str = ""

    def named(self, command: str) -> list[list[str]]:
        """Argument lists of every call to ``command``."""
        return [c[1:] for c in self.calls if c[0] == command]


def tclsh_available() -> bool:
    return shutil.which("tclsh") is not None


def stub_prelude() -> str:
    """The Tcl prelude that defines the recorders: two ``set`` lines (the commands of
    :data:`~lowbit_hdl.flow.vivado.TCL_VIVADO_COMMANDS`, the Vivado version ``version``
    answers) and the static ``dry_run_prelude.tcl``."""
    head = (f"set ::lowbit_vivado_cmds {tcl_list(list(TCL_VIVADO_COMMANDS))}\n"
            f"set ::lowbit_vivado_version {tcl_word(VIVADO_VERSION)}\n")
    return head + vivado_file("dry_run_prelude.tcl").decode()


def _parse_tcl_list(line: str) -> list[str]:
    """Split one Tcl list written by ``puts [list …]`` (braces or backslashes for quoting)."""
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            break
        if line[i] == "{":
            depth, j = 1, i + 1
            while j < n and depth:
                if line[j] == "\\":
                    j += 2
                    continue
                depth += {"{": 1, "}": -1}.get(line[j], 0)
                j += 1
            out.append(line[i + 1:j - 1])
            i = j
        else:
            j, word = i, []
            while j < n and not line[j].isspace():
                if line[j] == "\\" and j + 1 < n:
                    word.append(line[j + 1])
                    j += 2
                    continue
                word.append(line[j])
                j += 1
            out.append("".join(word))
            i = j
    return out


def dry_run(script: Path, board_parts: str = "", timeout: float = 60.0) -> TclRun:
    """Run the build's ``vivado/<script>`` under ``tclsh`` with the recorder prelude.

    The script's output folder (its ``rtl/`` and ``vivado/``) is copied to a temporary folder
    first, so the dry run never writes next to a real build. Raises ``RuntimeError`` on any
    Tcl error. ``board_parts`` is what ``get_board_parts`` answers (empty: board files not
    installed). :attr:`TclRun.produced` lists the files the script left in the output folder.
    """
    if not tclsh_available():
        raise FileNotFoundError("tclsh not found (apt-get install tcl)")
    script = Path(script).resolve()
    out_dir = script.parent.parent
    with tempfile.TemporaryDirectory(prefix="lowbit_tcl_") as tmp:
        tmpd = Path(tmp)
        copy = tmpd / "out"
        for sub in ("rtl", script.parent.name):
            if (out_dir / sub).is_dir():
                shutil.copytree(out_dir / sub, copy / sub)
        before = {p.name for p in copy.iterdir()}
        prelude = tmpd / "prelude.tcl"
        prelude.write_text(stub_prelude())
        main = tmpd / "main.tcl"
        target = copy / script.parent.name / script.name
        main.write_text(f"source {tcl_word(prelude)}\nsource {tcl_word(target)}\n"
                        "close $::lowbit_log\n")
        log = tmpd / "calls.log"
        env = {"LOWBIT_TCL_LOG": str(log), "LOWBIT_TCL_BOARDS": board_parts,
               "PATH": "/usr/bin:/bin"}
        proc = subprocess.run(["tclsh", str(main)], capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=tmpd)
        if proc.returncode != 0:
            raise RuntimeError(f"tclsh dry run of {script} failed:\n{proc.stdout[-2000:]}\n"
                               f"{proc.stderr[-3000:]}")
        calls = [_parse_tcl_list(line) for line in log.read_text().splitlines() if line]
        produced = sorted(p.name for p in copy.iterdir() if p.name not in before)
    return TclRun(calls, proc.stdout, produced, str(copy))
