"""Real parts for every test that needs a device (loaded for the whole suite by tests/conftest.py).

- ``sshd_server``: Debian's OpenSSH server (installed by `make test`, scripts/install-sshd.sh) started
  on 127.0.0.1 at a free port with a throwaway host key and one authorized throwaway user key, its
  own config (-D -e -f), StrictModes and PAM off; stopped after the session.
- ``ssh_client``: a per-test ssh client config naming that server as the Host alias ``sk-device``,
  with its own known_hosts (which already trusts the server's key), the user key, and no agent.
- ``device_python`` / ``bare_device_python``: the lean device environments `make test` builds:
  numpy<2 + tflite-runtime + onnxruntime like a Raspberry Pi, and numpy alone (no runtime).
- ``arm64_python`` / ``avx2_python``: the launchers of the emulated boards `make test` builds (an ARM64
  Debian userland under qemu-aarch64, and x86-64 without VNNI under qemu-x86_64 -cpu Haswell): the
  real kernels of those CPUs, whatever CPU runs the tests.

The ssh tests are skipped only when sshd really is not installed; under CI (CI=true, where the setup
installs it) a missing sshd or device environment fails instead of skipping.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from shufflekit.runtimes.remote import ConnectOptions, parse_address

ROOT = Path(__file__).resolve().parents[1]
ARM64_BOARD = ROOT / ".board-arm64"  # `make test-deps`: shufflekit board build --kind arm64
AVX2_BOARD = ROOT / ".board-avx2"  # ... --kind x86-avx2: x86-64 without AVX-512/VNNI (qemu -cpu Haswell)
DEVICE_VENV = ROOT / ".venv-device"
BARE_DEVICE_VENV = ROOT / ".venv-device-bare"
HOST_ALIAS = "sk-device"


def _missing(reason: str):
    """Skip on a developer's machine without the part; fail under CI, where `make test` installs it."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI runs `make test`, which must install it)")
    pytest.skip(reason)


def _sshd_binary() -> str | None:
    found = shutil.which("sshd") or ("/usr/sbin/sshd" if os.access("/usr/sbin/sshd", os.X_OK) else None)
    return str(Path(found).resolve()) if found else None  # sshd insists on an absolute path


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class SshServer:
    port: int
    user: str
    folder: Path
    host_key_line: str  # "ssh-ed25519 AAAA..." as known_hosts wants it
    user_key: Path  # authorized
    stranger_key: Path  # a valid key the server does not know

    @property
    def known_hosts_name(self) -> str:
        return f"[127.0.0.1]:{self.port}"


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory):
    sshd = _sshd_binary()
    if sshd is None:
        _missing("sshd is not installed (Debian: apt-get install openssh-server; `make test` does it)")
    folder = tmp_path_factory.mktemp("sshd")
    host_key, user_key, stranger_key = folder / "host_key", folder / "user_key", folder / "stranger_key"
    for key in (host_key, user_key, stranger_key):
        _keygen(key)
    (folder / "authorized_keys").write_text(user_key.with_suffix(".pub").read_text())
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation; /run is emptied at boot
    server = None
    for _ in range(5):  # another process may take the free port between the check and the bind
        port = _free_port()
        config = folder / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    "PidFile none",
                    f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                    "StrictModes no",
                    "UsePAM no",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    f"AllowUsers {user}",
                    "LogLevel VERBOSE",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )
        log = open(folder / "sshd.log", "wb")  # noqa: SIM115 - the server writes it until the session ends
        proc = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        if _wait_listening(proc, folder / "sshd.log"):
            server = proc
            break
        proc.kill()
        proc.wait()
    if server is None:
        pytest.fail(f"sshd did not start: {(folder / 'sshd.log').read_text()[-2000:]}")
    host_line = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
    try:
        yield SshServer(port, user, folder, host_line, user_key, stranger_key)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _wait_listening(proc: subprocess.Popen, log: Path, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if b"Server listening" in log.read_bytes():
            return True
        time.sleep(0.05)
    return False


@dataclass
class SshClient:
    """An ssh client setup for one test: its config file, known_hosts and keys."""

    server: SshServer
    config: Path
    known_hosts: Path
    alias: str = HOST_ALIAS

    def options(self, **overrides: object) -> ConnectOptions:
        fields = {"ssh_config": self.config, "connect_timeout": 5.0, "retries": 0, "command_timeout": 30.0}
        fields.update(overrides)
        return ConnectOptions(**fields)  # type: ignore[arg-type]

    def url(self, **params: str) -> str:
        """ssh://user@127.0.0.1:PORT, with ?python=... etc."""
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"ssh://{self.server.user}@127.0.0.1:{self.server.port}" + (f"?{query}" if query else "")

    def address(self, **params: str):
        return parse_address(self.url(**params))

    def trust_server(self, key_line: str | None = None) -> None:
        self.known_hosts.write_text(f"{self.server.known_hosts_name} {key_line or self.server.host_key_line}\n")

    def forget_server(self) -> None:
        self.known_hosts.write_text("")


@pytest.fixture
def ssh_client(sshd_server: SshServer, tmp_path: Path) -> SshClient:
    folder = tmp_path / "client"
    folder.mkdir()
    known_hosts = folder / "known_hosts"
    config = folder / "ssh_config"
    config.write_text(
        "\n".join(
            [
                f"Host {HOST_ALIAS}",
                "  HostName 127.0.0.1",
                f"  Port {sshd_server.port}",
                f"  User {sshd_server.user}",
                "Host *",
                f"  IdentityFile {sshd_server.user_key}",
                "  IdentitiesOnly yes",
                "  IdentityAgent none",
                f"  UserKnownHostsFile {known_hosts}",
                "  GlobalKnownHostsFile /dev/null",
                "",
            ]
        )
    )
    client = SshClient(sshd_server, config, known_hosts)
    client.trust_server()
    return client


def _device_python(python: Path, what: str) -> str:
    """A device Python `make test-deps` builds (a venv's, or an emulated board's launcher)."""
    if not os.access(python, os.X_OK):
        _missing(
            f"{what} {python.parents[1 if python.parent.name == 'bin' else 0].name} is missing "
            "(`make test-deps` builds it)"
        )
    return str(python)


def _device_env(venv: Path) -> str:
    return _device_python(venv / "bin" / "python", "the device environment")


@pytest.fixture(scope="session")
def device_python() -> str:
    """A Raspberry Pi-like Python: numpy<2, tflite-runtime and onnxruntime, nothing else."""
    return _device_env(DEVICE_VENV)


@pytest.fixture(scope="session")
def bare_device_python() -> str:
    """A device Python with numpy and no inference runtime at all."""
    return _device_env(BARE_DEVICE_VENV)


@pytest.fixture
def device_tmp(tmp_path: Path) -> Path:
    """Where a test's device makes its work folders (the device is this machine), so a test can see
    that nothing is left behind."""
    folder = tmp_path / "device-tmp"
    folder.mkdir()
    return folder


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real image classifier (conv, relu, pooling, fully connected; NCHW 3x32x32 -> 10) in
    ONNX, made with onnx.helper so the remote tests need no export step."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = {
        "w1": rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3,
        "b1": rng.standard_normal(8).astype(np.float32) * 0.1,
        "w2": rng.standard_normal((8, 10)).astype(np.float32),
        "b2": rng.standard_normal(10).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["images", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("GlobalAveragePool", ["r1"], ["p1"]),
        helper.make_node("Flatten", ["p1"], ["f1"]),
        helper.make_node("Gemm", ["f1", "w2", "b2"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by older onnxruntime builds on boards
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("models") / "tiny.onnx"
    onnx.save(model, str(path))
    return path


def _board(folder: Path) -> str:
    return _device_python(folder / "python", "the emulated board")


@pytest.fixture(scope="session")
def arm64_python() -> str:
    """An emulated ARM64 board's Python (Debian arm64 Python 3.11, onnxruntime 1.22, ai-edge-litert 1.4)."""
    return _board(ARM64_BOARD)


@pytest.fixture(scope="session")
def avx2_python() -> str:
    """An emulated x86-64 CPU without AVX-512/VNNI running the device requirements (saturating int8)."""
    return _board(AVX2_BOARD)
