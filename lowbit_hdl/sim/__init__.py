"""Everything that drives a simulator, on the development machine: the cocotb runner
(:mod:`.runner`), stream drivers and checkers for testbenches (:mod:`.stream`), the
testbenches the commands run (:mod:`.benches`), whole-network simulation (:mod:`.network`),
the simulated board (:mod:`.board`) and the fake PYNQ (:mod:`.fakepynq`), and the ``sim`` and
``deploy-sim`` commands. Nothing here ships to the board."""
