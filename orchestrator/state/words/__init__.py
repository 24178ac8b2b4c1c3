"""A person's words said from anywhere: an agent's questions and their answers (``questions``), and
the signed links a notification carries a word in (``links``)."""
