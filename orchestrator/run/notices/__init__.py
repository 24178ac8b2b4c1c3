"""Telling people: the reporter that notifies and finds stuck tasks, and the webhooks and commands
that deliver it."""
