"""cocotb testbench of the simulated board (run inside the simulator, development only)."""
