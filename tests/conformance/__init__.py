"""One suite of scenarios, run against every provider kind."""
