"""Git for ``isolation: worktree``: a worktree and a branch per task, the integration branch the
merge queue merges into, and ``orchestrator merge``. ``repo`` runs git (argument lists, process
groups, one error); ``worktrees`` makes, finds, lists and prunes the worktrees; ``merging`` merges.
"""
