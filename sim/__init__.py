"""cocotb benches of the hardware library's modules and their runner helpers (used by tests/)."""
