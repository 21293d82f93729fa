"""The simulator: the core on a virtual clock, with the contract's simulated provider."""

from engine.sim.simulator import SimResult, Simulator, read_events

__all__ = ["SimResult", "Simulator", "read_events"]
