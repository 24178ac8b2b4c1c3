"""What a run takes while it goes on: tasks added to the plan, rows edited while their tasks
wait, and cancel and retry asked from outside."""
