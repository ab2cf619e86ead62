"""Simulation helpers and cocotb testbenches for the hardware library (used by tests/)."""
