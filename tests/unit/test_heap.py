"""freeze_startup_heap: what exists is exempt from collections, what comes later is not.

Run in a child interpreter: freezing this test process's heap would exempt
every other test's objects too.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import gc
    from engine.heap import freeze_startup_heap

    startup = [[index] for index in range(20_000)]  # tracked containers, as modules hold
    frozen = freeze_startup_heap()
    assert frozen >= len(startup), frozen

    # Made after start-up: a reference cycle that only the collector can free.
    first, second = [], []
    first.append(second)
    second.append(first)
    del first, second
    collected = gc.collect()
    assert collected >= 2, collected
    assert gc.get_freeze_count() == frozen  # a collection does not thaw them
    print("ok", frozen)
    """
)


def test_freezing_exempts_what_exists_and_still_collects_what_comes_later() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok ")
