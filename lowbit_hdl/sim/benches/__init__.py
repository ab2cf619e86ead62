"""The cocotb testbenches that the simulation commands run: ``tb_network`` (a whole generated
network against its golden outputs) and ``tb_simboard`` (the generated design behind a
simulated AXI DMA). cocotb imports them by module name from :data:`BENCH_DIR`."""

from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
