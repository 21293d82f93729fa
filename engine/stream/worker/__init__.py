"""The engine worker (``journeys run``): :mod:`.runtime` steps the core for one input,
:mod:`.wakes` produces due wake-ups, :mod:`.service` configures the service skeleton."""
