"""State on disk: everything a run or a person leaves in ``.orchestrator/``, written atomically.

``store`` (temp file, fsync, rename), ``planfile`` (master_plan.md's status blocks, rewritten
without losing a save made meanwhile), ``workspace`` (where each file lives), ``identity`` (the
agent id each task keeps), ``results`` (one result record), ``journal`` (which attempts run),
``status`` (each task's state as read from those), ``lock`` and ``pause``. Modules are imported
by name; this package exports nothing of its own.
"""
