"""The worktrees of `isolation: worktree`: what a run needs of the repository, the merge queue,
and a conflict a person resolved by hand."""
