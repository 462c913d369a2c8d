"""offerloop's benchmarks (`python -m bench [name]`); helpers they share."""
from __future__ import annotations

import os
import subprocess
import sys
import time


def seed_catalog(stack) -> None:
    """Seed the default catalog into the benchmark's throwaway stack (`python -m ops seed`)."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ops", "seed"], env={**os.environ, **stack.settings},
                   check=True, stdout=subprocess.DEVNULL)
    print(f"seeded the default catalog in {time.perf_counter() - began:.1f} s")
