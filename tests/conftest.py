"""Settings for the whole test run.

Hypothesis's *explain* phase re-runs a failing example under ``sys.settrace`` to point at
the lines it ran; with the sandbox tests' process-wide audit hook (tests/sandbox) every
traced line also calls back into Python, and a shrink that should take seconds ran into
the run's timeout instead of reporting the failing example. The failing example is what
we need; the explanation is left out.
"""

from __future__ import annotations

from hypothesis import Phase, settings

settings.register_profile("journeys", phases=[p for p in Phase if p is not Phase.explain])
settings.load_profile("journeys")
