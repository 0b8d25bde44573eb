"""Upstream transport: the Transport interface, the h11 keep-alive pool, httpx2, TLS, images.

May import: adapters, rules (pure). Never imports routing, traffic, http or ops.
"""
