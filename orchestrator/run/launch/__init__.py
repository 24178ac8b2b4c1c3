"""Runs started for another program or time: a detached runner, one task seen through for
`spawn`, the crontab block of `schedule`."""
