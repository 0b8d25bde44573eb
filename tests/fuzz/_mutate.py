"""JSON values of any shape, and valid JSON documents with one place changed.

:data:`JSON` draws values of every JSON type, nested. :func:`mutated_json` takes a
valid document (a request, a stream event) and changes one place in it: replaced by any
JSON value (a string where a number was, a list where an object was, a huge or negative
number), removed, or given an extra sibling. Documents near valid reach the checks
deep inside a decoder that random bytes never pass the first of.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import strategies as st

__all__ = ["JSON", "SCALARS", "mutated_json", "paths"]

#: Scalars of every JSON type; integers up to what orjson writes (64 bits).
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)


#: Any JSON value, nested a few levels.
JSON = st.recursive(SCALARS, _nested, max_leaves=8)


def paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value, the root included."""
    out = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            out += paths(item, (*here, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += paths(item, (*here, i))
    return out


@st.composite
def mutated_json(draw: st.DrawFn, value: Any, values: st.SearchStrategy[Any] = JSON) -> Any:
    """``value`` with one place replaced by one of ``values``, removed, or given a sibling."""
    path = draw(st.sampled_from(paths(value)))
    if not path:
        return draw(values)
    value = orjson.loads(orjson.dumps(value))  # a deep copy to change
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    how = draw(st.sampled_from(["replace", "remove", "extra"]))
    if how == "replace":
        parent[last] = draw(values)
    elif how == "remove":
        del parent[last]
    elif isinstance(parent, dict):
        parent[draw(st.text(max_size=6))] = draw(values)
    else:
        parent.append(draw(values))
    return value
