"""A real multi-node Ray cluster on this machine, for tests.

Each node is a separate ``ray start --block`` process (its own process group,
so a test can kill a whole node), bound to a loopback address: the head to
127.0.0.2, further nodes to 127.0.0.3, ... (Ray rewrites 127.0.0.1 itself to
the machine's external address, other loopback addresses it leaves alone).
Token authentication is on, as Ray 2.60 requires for clusters; importing this
module sets the token for the whole test session, before Ray is imported.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Ray reads its authentication settings once, when first imported: set them before any test imports ray.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    def __init__(self, env: dict, address: str):
        self.env, self.address = env, address
        self.nodes: list[subprocess.Popen] = []

    def start_node(self, ip: str, head: bool, cpus: int, gpus: int = 0) -> subprocess.Popen:
        ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
        args = [ray, "start", "--block", f"--node-ip-address={ip}", f"--num-cpus={cpus}", f"--num-gpus={gpus}",
                "--disable-usage-stats"]
        if head:
            args += [f"--port={self.address.rsplit(':', 1)[1]}", "--head", "--include-dashboard=false"]
        else:
            args += [f"--address={self.address}"]
        process = subprocess.Popen(args, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        self.nodes.append(process)
        return process

    def wait_for(self, n_nodes: int, timeout: float = 90) -> None:
        probe = (
            "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False);"
            "print(sum(n['Alive'] for n in ray.nodes()))"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = subprocess.run([sys.executable, "-c", probe, self.address], env=self.env, capture_output=True,
                                  text=True, timeout=60)
            if done.returncode == 0 and done.stdout.strip().splitlines()[-1:] == [str(n_nodes)]:
                return
            time.sleep(1)
        raise TimeoutError(f"the Ray cluster did not reach {n_nodes} nodes")

    def kill_node(self, process: subprocess.Popen) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> None:
        for process in self.nodes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.nodes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def local_cluster(worker_nodes: int = 1, cpus_per_node: int = 1, worker_gpus: int = 0):
    """A head node and ``worker_nodes`` more; yields the cluster (its ``address`` and ``env``)."""
    env = dict(os.environ)  # the session's token (set above), shared by every node and this process
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    cluster = LocalCluster(env, f"127.0.0.2:{_free_port()}")
    try:
        cluster.start_node("127.0.0.2", head=True, cpus=cpus_per_node)
        cluster.wait_for(1)
        for index in range(worker_nodes):
            cluster.start_node(f"127.0.0.{3 + index}", head=False, cpus=cpus_per_node, gpus=worker_gpus)
        cluster.wait_for(1 + worker_nodes)
        yield cluster
    finally:
        _disconnect()  # a driver whose cluster dies under it is exited by Ray (code 1), taking pytest with it
        cluster.stop()


def _disconnect() -> None:
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
