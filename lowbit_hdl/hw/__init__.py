"""Parametric Amaranth 0.5 hardware library (one concept per module)."""
