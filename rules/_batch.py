"""``batch = { max, wait }``: a route's embeddings requests share upstream calls."""

from typing import Any

import attrs

from ._errors import FieldError
from ._fields import Duration, all_of, at_least, at_most, positive

__all__ = ["MAX_BATCH", "MAX_BATCH_WAIT", "BatchConfig"]

#: Inputs one combined embeddings call may hold (OpenAI's own limit per request).
MAX_BATCH = 2048
#: The longest a request may wait for others to join its batch.
MAX_BATCH_WAIT = 1.0


@attrs.frozen
class BatchConfig:
    """Combine concurrent embeddings requests to the same target into one upstream call.

    Attributes:
        max: Inputs one combined call holds at most; a request with this many or more
            goes alone, and a batch that fills is sent at once.
        wait: How long the first request of a batch waits for others to join it.
    """

    max: int = attrs.field(default=64, validator=all_of(at_least(2), at_most(MAX_BATCH)))
    wait: Duration = attrs.field(default=0.005, validator=positive)

    @wait.validator
    def _check_wait(self, attribute: "attrs.Attribute[Any]", value: float) -> None:
        if value > MAX_BATCH_WAIT:
            raise FieldError(
                f"must be at most {MAX_BATCH_WAIT:g}s: a request alone waits this long "
                f"for others, got {value:g}s",
                (attribute.name,),
            )
