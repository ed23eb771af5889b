"""A two-node Ray cluster on the loopback address, for tests: ``ray start --head`` plus a
second ``ray start --address`` on this machine, both with ``--block`` so that ending those
two processes (and nothing else: no ``ray stop``, which would end every Ray on the machine)
stops the cluster."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")


#: `ray start --address=127.0.0.1:PORT` for the second node. Joining a cluster needs Ray's
#: cluster switch on (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1, the Linux default), and with it on
#: Ray rewrites 127.0.0.1 to the machine's outward address, where the head (loopback only)
#: does not listen; so this node's `ray start` keeps the address as given, and then finds
#: its own node address (the one it reaches the head by) to be 127.0.0.1 as well.
JOIN_ON_LOOPBACK = (
    "import sys; import ray._private.services as services; "
    "services.resolve_ip_for_localhost = lambda host: host; "
    "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; sys.exit(main())"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive_nodes(address: str) -> int:
    """Alive nodes of the cluster at ``address`` (0 while its GCS does not answer yet)."""
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return 0
    code = ("import os; os.environ['RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER'] = '0'; "
            f"import ray; ray.init(address={address!r}, logging_level='ERROR'); "
            "print(sum(1 for n in ray.nodes() if n['Alive']))")
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        return int(proc.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, IndexError, ValueError):
        return 0


@contextmanager
def two_node_cluster(cpus_per_node: int = 1, timeout: float = 180.0) -> Iterator[str]:
    """Yield the address (127.0.0.1:PORT) of a head node and a worker node started here
    (their `ray start` output goes to $TMPDIR/ray-cluster-PORT.log)."""
    port = free_port()
    log = open(Path(tempfile.gettempdir()) / f"ray-cluster-{port}.log", "w")
    # a token of this cluster's own (Ray's token authentication), not the user's ~/.ray/auth_token
    token = Path(tempfile.gettempdir()) / f"ray-cluster-{port}.token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    saved = {k: os.environ.get(k) for k in auth}
    os.environ.update(auth)   # for the drivers this process and its children start
    address = f"127.0.0.1:{port}"
    common = ["--block", f"--num-cpus={cpus_per_node}", "--disable-usage-stats"]
    # a loaded machine starts the per-node agents slowly: give them time
    env = {**os.environ, **auth, "RAY_USAGE_STATS_ENABLED": "0", "RAY_agent_register_timeout_ms": "180000",
           # task workers at the driver's priority, as hw_build.distributed's local instance
           "RAY_worker_niceness": "0"}
    env.pop("RAY_ADDRESS", None)
    # Ray turns --node-ip-address=127.0.0.1 into the machine's outward address (and then
    # listens on every interface) unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0; the second node
    # (which needs the default, 1) takes the address it reaches the head by, 127.0.0.1
    procs = [subprocess.Popen([RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                               "--include-dashboard=false", *common],
                              env={**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)]
    try:
        deadline = time.monotonic() + timeout
        while _alive_nodes(address) < 1:
            if time.monotonic() > deadline or procs[0].poll() is not None:
                raise RuntimeError(f"the Ray head node at {address} did not start")
            time.sleep(1)
        # the switch on, explicitly: a driver that already started a local Ray in this process
        # (hw_build.distributed keeps that on the loopback) left it off in os.environ, and the
        # joining node would refuse to start ("Multi-node Ray clusters are not supported")
        procs.append(subprocess.Popen([sys.executable, "-c", JOIN_ON_LOOPBACK, "start", f"--address={address}",
                                       *common], env={**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"},
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        while _alive_nodes(address) < 2:
            if time.monotonic() > deadline or procs[1].poll() is not None:
                raise RuntimeError(f"the second Ray node did not join {address}")
            time.sleep(1)
        yield address
    finally:
        for proc in reversed(procs):
            # each `ray start --block` leads its own process group: end that group (its raylet,
            # workers, GCS), nothing else
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
        token.unlink(missing_ok=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
