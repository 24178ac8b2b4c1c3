"""``orchestrator serve``: a live web dashboard of a workspace, served on loopback. It reads the
workspace, and writes only what ``orchestrator cancel`` and ``retry`` write (``run/inflight/requests``),
when the page's buttons ask with the token ``serve`` printed.

``board`` reads the workspace (the same readers as ``status``), ``tailer`` follows
``state/events.jsonl`` once per server and fans its events out to every browser, ``picture``
draws the task graph as SVG, ``app`` is the Starlette application and ``server`` runs it with
uvicorn. The page itself (``static/``) is plain HTML, CSS and JavaScript: no build step, nothing
fetched from the network.
"""
