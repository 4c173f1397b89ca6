"""Property-based fuzzing (hypothesis) of every reader of untrusted files (issue 10).

The invariant: a valid result or a ``DigitrecError``, never another exception and never a hang.
CI runs ``EXAMPLES`` seeded examples per target; ``bench/fuzz.py`` runs 10,000+ each.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from fuzz_mutations import FuzzHang, hang_guard
from fuzz_targets import REFUSED, VALID, Target, run_example, targets

EXAMPLES = 200
NAMES = [t.name for t in targets(Path("unused"))]


@pytest.mark.parametrize("name", NAMES)
def test_reader_returns_a_result_or_a_digitrec_error(name: str, tmp_path: Path) -> None:
    target: Target = next(t for t in targets(tmp_path) if t.name == name)
    outcomes: dict[str, int] = {}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same examples on every run: CI stays reproducible
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy())
    def check(example) -> None:
        outcome = run_example(target, example, tmp_path)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    check()
    # Both outcomes occur: the strategies reach past the first check and into refusals.
    assert outcomes.get(VALID, 0) > 0 and outcomes.get(REFUSED, 0) > 0, outcomes


def test_hang_guard_interrupts_a_stuck_example() -> None:
    with pytest.raises(FuzzHang), hang_guard(0.05):
        while True:  # a parser stuck in a loop
            pass
