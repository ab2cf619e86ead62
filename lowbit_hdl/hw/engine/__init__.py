"""The engine (architecture (a) of ``docs/large_networks.md``): one runtime-configured
datapath that runs a network's middle layers layer after layer, driven by descriptors
(``lowbit_hdl.runtime.engine``). One concept per module: :mod:`.params` (build-time
parameters, descriptor layout), :mod:`.buffers` (activation buffers), :mod:`.window`
(activation addresses), :mod:`.tiles` (weight tiles), :mod:`.core` (lanes, accumulators,
activations), :mod:`.writer` (max-pool on write), :mod:`.loader`, :mod:`.drain`,
:mod:`.datapath` (the top), :mod:`.reference` (numpy model of one layer), :mod:`.sequencer`
(descriptor table and tile regions from DDR, layer after layer).
"""

from .datapath import EngineDatapath
from .params import EngineParams, descriptor_layout
from .sequencer import EngineSequencer

__all__ = ["EngineDatapath", "EngineParams", "EngineSequencer", "descriptor_layout"]
