#!/bin/sh
# lowbit-hdl: build the bitstream (needs Vivado on PATH: the version in config.tcl,
# tested_version).
set -e
cd "$(dirname "$0")"
exec vivado -mode batch -nojournal -log vivado.log -source build.tcl
