"""``[simulate.providers.NAME]``: how ``llm-router simulate`` plays a provider.

The simulator plays every provider with the built-in simulated model. A ``simulated``
provider brings its own parameters; a real one (OpenAI, Anthropic, ...) gets the ones
given here, measured from its traffic (its p50 and p99 time to first token, its error
ratio, its output rate), or the defaults below. An entry for a simulated provider
overrides its own parameters in the simulation only: a what-if. The daemon reads the
table only to validate it.
"""

from collections.abc import Mapping
from typing import Any

import attrs

from ._errors import FieldError
from ._fields import Duration, fraction, positive

__all__ = ["SimulateConfig", "SimulateProfile", "SimulatedLatency"]


@attrs.frozen
class SimulatedLatency:
    """Time to the first token (or the error): its median and 99th percentile."""

    median: Duration = attrs.field(default=0.08, validator=positive)
    p99: Duration = attrs.field(default=0.6)

    @p99.validator
    def _check_p99(self, attribute: "attrs.Attribute[Any]", value: float) -> None:
        if value < self.median:
            raise FieldError("must not be less than median", (attribute.name,))


@attrs.frozen
class SimulateProfile:
    """One provider as the simulator plays it."""

    latency: SimulatedLatency = SimulatedLatency()
    error_rate: float = attrs.field(default=0.0, validator=fraction)
    tokens_per_second: float = attrs.field(default=200.0, validator=positive)


@attrs.frozen
class SimulateConfig:
    """The ``[simulate]`` table: the providers' profiles, by provider name."""

    providers: Mapping[str, SimulateProfile] = attrs.field(factory=dict)
