"""A small order-tracking service: the code the example analyses (its flaws are planted on purpose)."""
