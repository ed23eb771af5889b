"""Ray, the distributed engine of sweeps, sharded RTL accuracy runs and cluster synthesis.

A cluster is named by ``--ray-address`` or, failing that, ``$RAY_ADDRESS``. Without one,
sweeps and sharded accuracy runs start a local Ray instance (bound to 127.0.0.1, no
dashboard) for their own use and stop it when done; synthesis uses Ray only when a cluster
is named (on one machine its process pool does the same with less overhead).

Tasks run with this checkout's ``hw_build`` and ``quant_models`` packages shipped to the
workers (Ray ``py_modules``), so a cluster's nodes need the pinned environment
(requirements.lock), not a copy of the repository. Worker output is not forwarded to the
driver: every build keeps its own build.log.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from hw_build.errors import BuildError


def cluster_address(option: str | None = None) -> str | None:
    """The Ray cluster to use: ``option`` (``--ray-address``), else $RAY_ADDRESS, else None."""
    address = option or os.environ.get("RAY_ADDRESS") or None
    return address.strip() if address else None


#: Ray reads this when it starts (ray._private.ray_constants.ENABLE_RAY_CLUSTER): while it is
#: 1 (the Linux default), Ray replaces 127.0.0.1 by the machine's outward address, both as the
#: node address it listens on and in the cluster address a driver connects to
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def is_loopback(address: str | None) -> bool:
    host = (address or "").rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def _stay_on_loopback() -> None:
    """Keep a local instance, or a connection to a cluster on 127.0.0.1, on the loopback
    interface (see :data:`LOOPBACK_SWITCH`)."""
    os.environ[LOOPBACK_SWITCH] = "0"
    import ray._private.ray_constants as constants

    constants.ENABLE_RAY_CLUSTER = False


def _runtime_env() -> dict:
    """The project's own packages, shipped to every worker: the compiler imports the driver
    package (deploy: the interface record) and the model zoo."""
    import deploy
    import hw_build
    import quant_models

    return {"py_modules": [os.path.dirname(p.__file__) for p in (hw_build, quant_models, deploy)]}


@contextmanager
def session(address: str | None, *, num_cpus: int | None = None) -> Iterator[object]:
    """Yield the ``ray`` module connected to ``address`` (a running cluster) or, with None, to
    a local instance started here (``num_cpus``: default all cores). An already connected
    process (inside a Ray task, or within another session) keeps its connection."""
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BuildError("Ray is not installed: `pip install ray==2.60.0` (requirements.txt pins it).") from exc
    if ray.is_initialized():
        yield ray
        return
    if address is None or is_loopback(address):
        _stay_on_loopback()
    options = {"include_dashboard": False, "log_to_driver": False, "runtime_env": _runtime_env(),
               "logging_level": "ERROR"}
    try:
        if address:
            ray.init(address=address, **options)
        else:
            # "local": a private instance, whatever $RAY_ADDRESS says; loopback only
            # worker_niceness 0: Ray runs task workers at nice +15 by default, so under any other
            # load a sweep's builds got a fraction of the CPU that the same builds run one after
            # another get (a 2-build sweep: 427 s against 50 s serially at load 8-11)
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, _node_ip_address="127.0.0.1",
                     _system_config={"worker_niceness": 0}, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at '{address}'" if address else "a local Ray instance"
        raise BuildError(f"could not connect to {where}: {exc}. Start the cluster first (`ray start --head "
                         "--node-ip-address=127.0.0.1`), pass its address as --ray-address HOST:PORT, or leave "
                         "--ray-address and $RAY_ADDRESS unset to run on a local Ray instance.") from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def cluster_cpus(ray) -> int:
    """CPUs of the connected cluster (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


# --------------------------------------------------------------------------- sharded RTL simulation
def _simulate_shard(files: dict[str, bytes], frames_nhwc, sim_kwargs: dict):
    """Body of a shard task: the generated RTL (sources, memory files, manifest) written into
    a private folder, its own Verilator process over this shard's frames. The Verilator model
    comes from the node's cache (built once per node; concurrent shards wait for it)."""
    import tempfile
    from pathlib import Path

    from hw_build.rtl import sim

    with tempfile.TemporaryDirectory(prefix="rtl-shard.") as tmp:
        for name, content in files.items():
            (Path(tmp) / name).write_bytes(content)
        labels, _ = sim.simulate_top(Path(tmp), frames_nhwc, **sim_kwargs)
    return labels


def rtl_files(rtl_dir) -> dict[str, bytes]:
    """What a simulation of the generated design in ``rtl_dir`` reads: its manifest, Verilog
    files and memory files, by name."""
    from pathlib import Path

    from hw_build.rtl import codegen

    rtl_dir = Path(rtl_dir)
    manifest = codegen.read_manifest(rtl_dir)
    names = ["rtl_manifest.json", *manifest["files"], *manifest["memories"]]
    return {name: (rtl_dir / name).read_bytes() for name in dict.fromkeys(names)}


def simulate_top_sharded(rtl_dir, frames_nhwc, shards: int, address: str | None = None, progress=None,
                         **sim_kwargs):
    """Labels of ``frames_nhwc`` through the design in ``rtl_dir``, the frames split into
    ``shards`` contiguous parts, each simulated by its own Ray task (and Verilator process);
    the labels are put back in frame order. ``sim_kwargs`` go to :func:`sim.simulate_top`
    (the same stalls and seed for every shard: a stall pattern never changes a label).
    ``progress(done, total)`` is called as shards finish."""
    import numpy as np

    frames_nhwc = np.asarray(frames_nhwc)
    parts = [p for p in np.array_split(np.arange(len(frames_nhwc)), min(shards, len(frames_nhwc))) if len(p)]
    with session(address) as ray:
        files = ray.put(rtl_files(rtl_dir))
        task = ray.remote(num_cpus=1, max_retries=1)(_simulate_shard)
        refs = [task.remote(files, frames_nhwc[p], sim_kwargs) for p in parts]
        index = {ref: k for k, ref in enumerate(refs)}
        out: list = [None] * len(refs)
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            try:
                out[index[ready[0]]] = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                if isinstance(cause, BuildError):  # a deadlock, a wrong label count: the user's message
                    raise BuildError(f"RTL simulation of shard {index[ready[0]] + 1}/{len(refs)}: {cause}") from None
                raise
            if progress:
                progress(len(refs) - len(pending), len(refs))
    return np.concatenate(out).astype(np.int64)
