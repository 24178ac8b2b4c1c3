"""What the runs before say of this one: each task's estimate, the run's end, the deadlines it
will miss."""
