"""The engine (architecture (a)): one runtime-configured datapath run layer after layer."""
