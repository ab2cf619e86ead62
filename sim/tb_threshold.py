"""cocotb testbench for the ThresholdUnit: the same stream check as the MVTU's (phases of
input words, expected output words, random stalls, exact cycle counts); see tb_mvtu."""

from tb_mvtu import run  # noqa: F401  (cocotb collects the test from this module)
