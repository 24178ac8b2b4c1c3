"""Attempts raced against each other: a straggler hedged, best of N and its judges, the lanes
they run in, and which tasks may be raced at all."""
