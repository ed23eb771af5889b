"""The local Ray instance hw_build.distributed starts: its tasks can import every package the
compiler imports (shipped as py_modules, not found through the caller's working folder) and
run at the caller's priority (Ray's default puts task workers at nice +15)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run from a folder outside the checkout, as a user's script would be: a Ray worker then
# finds the project's packages only through the runtime environment.
PROBE = """
import os, sys
sys.path.insert(0, sys.argv[1])
from hw_build import distributed

def probe():
    import os
    import deploy.interface, hw_build.flow, quant_models.zoo
    return os.nice(0), [m.__file__ for m in (deploy.interface, hw_build.flow, quant_models.zoo)]

with distributed.session(None, num_cpus=1) as ray:
    niceness, files = ray.get(ray.remote(num_cpus=1)(probe).remote())
print(os.nice(0), niceness, *files)
"""


def test_local_ray_tasks_import_the_project_at_the_callers_priority(tmp_path):
    run = subprocess.run([sys.executable, "-c", PROBE, str(ROOT)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
    assert run.returncode == 0, run.stderr[-3000:]
    driver_nice, task_nice, *files = run.stdout.split()[-5:]
    assert task_nice == driver_nice
    # the task's copies are the runtime environment's, not the checkout's
    assert all("runtime_resources" in f for f in files), files
