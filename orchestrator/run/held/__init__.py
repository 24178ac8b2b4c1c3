"""Work a run holds back: a task's gate and Condition, a person's word at it (`approve`,
`reject`), a Blocked cell, and a task held until its `Not before`."""
