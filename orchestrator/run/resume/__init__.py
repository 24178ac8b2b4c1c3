"""What a run redoes and what it leaves: the rule of settled tasks, what a result ran from, the
cache, a dead runner's finished attempts, and the status blocks marked as `status` marks them."""
