"""What is kept beyond one run: the archive of tasks moved out of the plan, the cache of
results, checkpoints, every attempt's history, and what the aggregating agent spent."""
