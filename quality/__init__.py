"""Quality gates: contract checks, Great Expectations suites, national-standard checks."""
