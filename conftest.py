"""Suite scheduling for the repository's own test run (not part of the conformance kit).

With two or more pytest-xdist workers, both start on tests that need the shared BadNets victim,
so one trains it while the other waits for it (`RunStore.building`): ~40 s of a core idle at the
start of the full suite (session 9). The second worker trains the Blended victim first instead;
the suite needs it anyway (17 tests), and BadNets is ready by the time that worker asks for it.
Only the full suite (hundreds of tests) warms up: running a few tests trains nothing extra.
"""

import os

import pytest

WARM_UP = {"gw1": "blended"}
"""xdist worker -> the shared victim it trains before its first test."""


@pytest.fixture(scope="session", autouse=True)
def _warm_up_shared_victims(request):
    attack = WARM_UP.get(os.environ.get("PYTEST_XDIST_WORKER", ""))
    if attack is not None and len(request.session.items) >= 300:
        request.getfixturevalue("backdoored_run")(attack)
