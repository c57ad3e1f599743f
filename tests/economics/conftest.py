"""Hypothesis profiles of the economic tests.

- "ci" (the default): what `make test` runs on every change.
- "long": a soak run, selected with MODELHUB_HYPOTHESIS_PROFILE=long.
- "smoke": a few short sequences, for working on the tests themselves; "dev": a few full ones
  without shrinking.
- "bite": the ci run without the example database and without shrinking, to time how fast a
  bug planted in a copy of the contracts is found ("first failure after ... s").

Both keep failing examples in Hypothesis' database (.hypothesis/, replayed first on the next
run) and print a `@reproduce_failure(...)` blob: put it on `EconomicsMachine` in
test_state_machine.py to replay that exact sequence.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

_COMMON = dict(
    deadline=None,  # a step is a few chain transactions: timing varies with the machine
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# Hypothesis counts the setup rule (`market`) as a step: 31 = the setup + 30 random steps.
# ci: 180 sequences (each example also ends with the honest relayers' final settlement and the
# refunds of calls still pending), ~10k transactions and ~4.4k full-state checks, about 1.5-2.5
# minutes on anvil on a busy 2-core machine.
# On CI (CI=true) the ci profile is derandomized: a submission's run explores the same sequences
# as the run that was rehearsed before it, so a landing never hangs on a new random draw; the
# random exploration happens on every developer run and in the long and bite profiles.
settings.register_profile("ci", max_examples=180, stateful_step_count=31,
                          derandomize=os.environ.get("CI", "").lower() == "true", **_COMMON)
settings.register_profile("long", max_examples=2000, stateful_step_count=51, **_COMMON)
settings.register_profile(
    "bite", max_examples=600, stateful_step_count=31, phases=[Phase.generate], **{**_COMMON, "database": None}
)
settings.register_profile("smoke", max_examples=10, stateful_step_count=10, **_COMMON)  # a quick look
# dev: a few full-length sequences, no shrinking, no database (working on the tests on a shared machine)
settings.register_profile(
    "dev", max_examples=12, stateful_step_count=31, phases=[Phase.generate], **{**_COMMON, "database": None}
)
settings.load_profile(os.environ.get("MODELHUB_HYPOTHESIS_PROFILE", "ci"))
