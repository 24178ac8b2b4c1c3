"""The package's version, at the bottom of the layers: every layer may name it (a brief's
``rendered_by``, ``final_output.md``'s last line, a webhook's ``User-Agent``, ``--version``)
without importing the package's face, which sits above them all.

pyproject.toml's ``version`` says the same; a test holds the two together.
"""

from __future__ import annotations

__version__ = "0.1.0"
