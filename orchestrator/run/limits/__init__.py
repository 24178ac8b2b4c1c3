"""How much runs at once: admission (caps, limit groups, cost), the AIMD window under 429s, and
the circuit breaker that sends a task to its fallback."""
