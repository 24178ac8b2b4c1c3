"""``orchestrator serve``: a live web dashboard of a workspace, served on loopback. It reads the
workspace, and writes only what the commands write (``cancel``, ``retry``, ``approve``, ``reject``,
``answer``, ``budget``, ``add``, ``update``, ``run``), by calling them: when the page's buttons or the
API ask with the token ``serve`` printed, a notification's signed link is used, or a signed
webhook delivers a word.

``board`` reads the workspace (the same readers as ``status``), ``tailer`` follows
``state/events.jsonl`` once per server and fans its events out to every browser, ``picture``
draws the task graph as SVG, ``app`` is the Starlette application and ``server`` runs it with
uvicorn. The page itself (``static/``) is plain HTML, CSS and JavaScript: no build step, nothing
fetched from the network.
"""
