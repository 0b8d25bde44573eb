"""HTTP ingress: the raw ASGI app, the OpenAI and Anthropic ingress codecs, admin endpoints.

May import: routing, traffic, upstream, adapters, rules. Never imports ops.
"""
