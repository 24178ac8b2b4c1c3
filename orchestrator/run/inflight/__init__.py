"""A run going on: what it takes (tasks added to the plan, rows edited while their tasks wait),
and what is asked of it from outside: cancel and retry, a person's word at a gate (`approve`,
`reject`), an agent's question and its answer."""
