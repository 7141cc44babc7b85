"""reprolab: reproducible ML experiments on DVC pipelines, MLflow and dvclive."""

import os

# OpenMP threads that spin while waiting stall torch for seconds per step whenever the cores
# are shared (2 threads ran 5-40x slower on a loaded 2-core machine); sleeping waits cost
# nothing measurable on an idle one. Set before torch loads; the environment still wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

from reprolab.core import legacy

legacy.install()
