"""Settings read from the environment; one default is a password (planted)."""

import os

SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD", "hunter2")  # planted: a default password
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
