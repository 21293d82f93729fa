"""Per-journey, per-node statistics from outcomes."""
