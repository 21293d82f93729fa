"""The journey linter: every problem in every file at once, each with its line.

It sits above the channels (it checks channel limits before rendering) and below the
adapters that load journeys to run them (worker, simulator CLI, stats dashboard).
"""
