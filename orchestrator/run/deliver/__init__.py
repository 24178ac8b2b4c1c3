"""A run's delivery: its work pushed, one pull request opened or updated, a comment where the run
came from; each effect once (``state/events/effects``)."""
