"""Upstream transport: the Transport interface, the h11 keep-alive pool, the HTTP/2 pool,
httpx2, TLS, images.

May import: adapters, rules (pure). Never imports routing, traffic, http or ops.
"""
