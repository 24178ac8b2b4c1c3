"""A plan's settings: `Settings` and how each value is read (`values`, the floor), task types,
profiles, params, the hedge, best-of, notify and trigger settings, cron expressions, and the
names of the backends and executors as the plan layer knows them."""
