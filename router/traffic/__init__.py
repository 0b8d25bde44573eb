"""Traffic controls: client keys, rate windows, budgets and prices, the response cache, state.

May import: upstream, adapters, rules. Never imports routing, http or ops.
"""
