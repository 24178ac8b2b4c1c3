"""What is checked before a run starts and by `doctor`: the plan's backends and CLIs, a Dask
cluster's scheduler and workers."""
