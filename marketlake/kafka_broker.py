"""Apache Kafka in KRaft mode, single node: installed, started and stopped by the project.

The jars come from Maven Central through kafka/pom.xml (`make setup`), are
checked against kafka/jars.sha256 and cached under MARKETLAKE_HOME. A broker
is one `java kafka.Kafka` process with its own data directory and ports, so
tests can run their own broker beside the one `make run` started.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from marketlake.settings import REPO_ROOT

log = logging.getLogger(__name__)

KAFKA_DIR = REPO_ROOT / "kafka"
JAR_LOCK = KAFKA_DIR / "jars.sha256"


class KafkaSetupError(RuntimeError):
    """The broker's jars are missing or do not match their pinned checksums, or it did not start."""


def jar_dir(home: Path) -> Path:
    return home / "kafka" / "libs"


def fetch_jars(home: Path) -> Path:
    """Fetch the pinned jars with Maven (strict checksums) and verify them against jars.sha256."""
    target = jar_dir(home)
    if not _jars_ok(target):
        if target.exists():
            shutil.rmtree(target)
        cmd = [
            "mvn", "-q", "-B", "-C", "-f", str(KAFKA_DIR / "pom.xml"),
            "dependency:copy-dependencies", f"-DoutputDirectory={target}", "-DincludeScope=runtime",
        ]  # fmt: skip
        log.info("fetching Kafka jars: %s", " ".join(cmd))
        subprocess.run(cmd, check=True)
        problems = _verify(target)
        if problems:
            raise KafkaSetupError("Kafka jars do not match kafka/jars.sha256: " + "; ".join(problems))
    return target


def _verify(target: Path) -> list[str]:
    problems = []
    for line in JAR_LOCK.read_text().splitlines():
        digest, name = line.split()
        path = target / name
        if not path.exists():
            problems.append(f"{name} missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"{name} checksum differs")
    return problems


def _jars_ok(target: Path) -> bool:
    return target.is_dir() and not _verify(target)


_HANDED_OUT: set[int] = set()  # ports free_port() gave this process: never the same one twice
_LOWEST_PICKED = 10_000


def _ephemeral_low() -> int:
    """The first port of the kernel's range for outgoing connections' source ports (Linux default 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port free on 127.0.0.1 for a server we are about to start.

    Picked below the kernel's ephemeral range: a port the kernel hands out for `bind(0)` can, before our
    server binds it, become the source port of some client's outgoing connection (Kafka clients open many),
    and the server then fails with "Address already in use" (seen in CI). Never the same port twice in
    this process.
    """
    low = _ephemeral_low()
    if low - _LOWEST_PICKED > 1000:
        for _ in range(500):
            port = random.randrange(_LOWEST_PICKED, low)
            if port in _HANDED_OUT:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _HANDED_OUT.add(port)
            return port
    with socket.socket() as s:  # no room below the ephemeral range: let the kernel choose
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    _HANDED_OUT.add(port)
    return port


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def new_cluster_id() -> str:
    """A KRaft cluster id as Kafka's Uuid.randomUuid makes one: url-safe base64 of 16 random bytes, never starting
    with "-" (the storage tool's argument parser would take it for an option: 1 start in 64 failed so)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass
class KafkaBroker:
    """One KRaft broker+controller on 127.0.0.1:port, data in data_dir."""

    home: Path
    data_dir: Path
    port: int = 9092
    controller_port: int = 0
    heap: str = "512m"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    def _properties(self) -> Path:
        if not self.controller_port:
            self.controller_port = free_port()
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir / "logs"),
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "log.flush.interval.messages": "1",  # single node: fsync what we ack
        }
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _java(self, *args: str) -> list[str]:
        return [
            "java", f"-Xmx{self.heap}", f"-Xms{self.heap}",
            f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.properties'}",
            "-cp", f"{jar_dir(self.home)}/*", *args,
        ]  # fmt: skip

    def start(self, timeout: float = 60.0) -> KafkaBroker:
        fetch_jars(self.home)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props = self._properties()
        if not (self.data_dir / "logs" / "meta.properties").exists():
            cluster_id = new_cluster_id()
            fmt = subprocess.run(self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)),
                                 capture_output=True, text=True)  # fmt: skip
            if fmt.returncode != 0:
                raise KafkaSetupError(f"formatting the broker's storage in {self.data_dir} failed "
                                       f"(exit {fmt.returncode}): {(fmt.stderr or fmt.stdout).strip()[-2000:]}")
        log_fh = self.log_file.open("ab")
        self.process = subprocess.Popen(
            self._java("kafka.Kafka", str(props)), stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True
        )
        (self.data_dir / "broker.pid").write_text(str(self.process.pid))
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Ready when the broker answers a metadata request (not merely when the port opens)."""
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise KafkaSetupError(f"Kafka exited with {self.process.returncode}; see {self.log_file}")
            try:
                md = admin.list_topics(timeout=2)
                if md.brokers:
                    return
            except Exception as exc:  # KafkaException while the broker is still coming up
                last_error = exc
            time.sleep(0.2)  # polling a starting JVM; not test synchronisation
        raise KafkaSetupError(f"Kafka not ready on {self.bootstrap} after {timeout}s: {last_error}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (the broker flushes and closes its logs), then SIGKILL if it hangs."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


def ensure_topics(bootstrap: str, topics: dict[str, int], timeout: float = 30.0) -> None:
    """Create each topic with its partition count if it does not exist yet."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in topics.items() if name not in existing]
    if not missing:
        return
    for name, future in admin.create_topics(missing, operation_timeout=timeout).items():
        try:
            future.result(timeout)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise KafkaSetupError(f"could not create topic {name}: {exc}") from exc
