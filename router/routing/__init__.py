"""Routing: the engine, its policies (fallback, balance, split, hedge), attempts, breakers,
health probes, latency stats, and the rules snapshot in force. May import: traffic, upstream,
adapters, rules. Never imports http or ops.
"""
