"""The views: every task's state as a person reads it, the facts on disk fed to the machine (``replay``).

A layer above ``machine/``, which reads no file, no clock and no process: here the journal, the
results, a person's words, the pause and the clock are read and told to the one machine a run
asks, so that a view says what the run would do, by the rule it does it by.
"""
