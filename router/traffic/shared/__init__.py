"""Shared state on Redis: rate windows, budgets' spend, the response cache and the hedge
budget, shared by every daemon (and worker) pointing at one Redis.

``_resp`` speaks the wire protocol, ``_conn`` is one pipelined connection, ``_link``
keeps it up (timeouts, degradation, reconnection, the writes sent after an answer),
``_scripts`` holds the Lua that makes each update atomic, and ``_traffic`` puts the
key windows, budgets and cache behind the interface the local path has.

May import: what ``router.traffic`` may (upstream, adapters, rules) and ``router.traffic``.
"""
