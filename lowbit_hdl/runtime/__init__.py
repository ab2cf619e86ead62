"""On-board runtime (numpy only): stream layout, pre/post-processing, PYNQ and simulated
backends. Nothing on this path imports amaranth, torch or cocotb."""
