"""Work a run holds back: a task's gate and Condition, the word that stands at it, a Blocked
cell, and a task held until its `Not before`."""
