"""The fidelity levels of the engine (a scenario's ``fidelity``).

``exact``: the instruction-level engine, the ground truth. ``fast``: the request-level
engine of :mod:`model.fast`, whose CPU costs the exact engine measured.
"""

EXACT = "exact"
FAST = "fast"
#: Every level, the default first.
FIDELITIES = (EXACT, FAST)
