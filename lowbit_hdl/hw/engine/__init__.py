"""The engine (architecture (a) of ``docs/large_networks.md``): one runtime-configured
datapath that runs a network's low-bit layers one after another, driven by descriptors
(:mod:`lowbit_hdl.runtime.engine`, the one owner of the formats).

* :mod:`.descriptor`: the descriptor's ``data.StructLayout`` (:func:`descriptor_layout`).
* :mod:`.sequencer`: reads the descriptor table and tile regions from DDR and drives the
  datapath layer after layer (:class:`~.sequencer.EngineSequencer`).
"""
