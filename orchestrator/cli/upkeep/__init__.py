"""The commands that keep a workspace over time: `check`, `doctor`, `cleanup`, `archive`,
`checkpoint`, `schedule`, and `merge`/`worktrees`."""
