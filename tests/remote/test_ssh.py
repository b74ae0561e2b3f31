"""The ssh transport against a real OpenSSH server on 127.0.0.1 (see conftest.py): the same client
binaries, config, keys and known_hosts handling a user's board gets."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from shufflekit.errors import DeviceError
from shufflekit.runtimes.remote import DeviceTimeoutError, open_transport, parse_address
from shufflekit.runtimes.remote.probe import check_device

pytestmark = pytest.mark.ssh


def test_push_run_pull_through_sshd_into_the_device_python(ssh_client, device_python, device_tmp, tmp_path):
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(300_000) + b"\x00\r\n\xff")
    script = tmp_path / "digest.py"
    script.write_text(
        "import hashlib, sys, numpy\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "open('digest.txt', 'w').write(hashlib.sha256(data).hexdigest() + ' ' + numpy.__version__)\n"
        "print('ran')\n"
    )
    with open_transport(ssh_client.address(tmp=str(device_tmp)), ssh_client.options()) as device:
        work = device.make_workdir()
        assert Path(work).parent == device_tmp and oct(Path(work).stat().st_mode & 0o777) == "0o700"
        device.push([payload, script], work)
        result = device.run([device_python, "digest.py", "payload.bin"], timeout=60, cwd=work)
        assert (result.rc, result.stdout.strip()) == (0, "ran"), result.stderr
        device.pull(f"{work}/digest.txt", tmp_path / "back" / "digest.txt")
        device.pull(f"{work}/payload.bin", tmp_path / "back" / "payload.bin")
        device.remove_workdir(work)
    digest, numpy_version = (tmp_path / "back" / "digest.txt").read_text().split()
    assert digest == hashlib.sha256(payload.read_bytes()).hexdigest()
    assert numpy_version.startswith("1.")  # the device's own numpy<2, not the host's
    assert (tmp_path / "back" / "payload.bin").read_bytes() == payload.read_bytes()
    assert list(device_tmp.iterdir()) == []


def test_a_host_alias_from_the_ssh_config_connects(ssh_client, device_python):
    address = parse_address(f"{ssh_client.alias}?python={device_python}", ssh_config=ssh_client.config)
    check = check_device(address, ssh_client.options())
    assert check.ok, check.error
    assert check.facts["numpy"].startswith("1.")
    assert set(check.runtimes) == {"onnxruntime", "tflite_runtime"}
    assert "CPUExecutionProvider" in check.runtimes["onnxruntime"]["providers"]


def test_unknown_host_key_is_refused_unless_trusted_on_first_use(ssh_client):
    ssh_client.forget_server()
    with pytest.raises(DeviceError) as info:
        with open_transport(ssh_client.address(), ssh_client.options()):
            pass
    assert "host key" in info.value.one_line() and "not in known_hosts" in info.value.one_line()
    assert "--trust-new-host-key" in info.value.one_line()
    assert ssh_client.known_hosts.read_text() == ""  # nothing was recorded

    with open_transport(ssh_client.address(), ssh_client.options(trust_new_host_key=True)) as device:
        assert device.run(["true"], timeout=30).rc == 0
    assert ssh_client.server.host_key_line in ssh_client.known_hosts.read_text()


def test_changed_host_key_is_refused_even_with_trust_new_host_key(ssh_client):
    impostor = ssh_client.server.stranger_key.with_suffix(".pub").read_text().split()[:2]
    ssh_client.trust_server(" ".join(impostor))
    for trust in (False, True):
        with pytest.raises(DeviceError) as info:
            with open_transport(ssh_client.address(), ssh_client.options(trust_new_host_key=trust)):
                pass
        assert "CHANGED" in info.value.one_line() and "ssh-keygen -R" in info.value.one_line()
    assert ssh_client.known_hosts.read_text().split()[1:] == impostor  # the record was not touched


def test_wrong_user_key_is_a_login_error_and_never_a_password_prompt(ssh_client):
    config = ssh_client.config.read_text().replace(str(ssh_client.server.user_key), str(ssh_client.server.stranger_key))
    ssh_client.config.write_text(config)
    with pytest.raises(DeviceError, match="login refused") as info:
        with open_transport(ssh_client.address(), ssh_client.options()):
            pass
    assert "authorized_keys" in info.value.one_line()


def test_unreachable_port_is_one_line_and_bounded(ssh_client):
    address = parse_address(f"ssh://{ssh_client.server.user}@127.0.0.1:1")
    start = time.monotonic()
    with pytest.raises(DeviceError) as info:
        with open_transport(address, ssh_client.options(retries=2, retry_backoff=0.1)):
            pass
    assert "connection refused" in info.value.one_line()
    assert time.monotonic() - start < 10  # a refusal is final: not retried


def test_device_without_python_or_runtime(ssh_client, bare_device_python):
    missing = check_device(ssh_client.address(python="/nonexistent/bin/python3"), ssh_client.options())
    assert not missing.ok and "no Python at '/nonexistent/bin/python3'" in missing.error
    bare = check_device(ssh_client.address(python=bare_device_python), ssh_client.options())
    assert not bare.ok and bare.runtimes == {} and bare.facts["numpy"].startswith("1.")
    assert "no inference runtime works on the device; install onnxruntime there" in bare.error


def test_quoting_names_with_spaces_quotes_and_command_substitution(ssh_client, device_tmp, tmp_path):
    """Nothing the user or a file name supplies is ever read by the remote shell."""
    nasty = tmp_path / 'it\'s a "model" $(touch pwned) `touch pwned2`; rm -rf x.bin'
    nasty.write_bytes(b"weights")
    with open_transport(ssh_client.address(tmp=str(device_tmp)), ssh_client.options()) as device:
        work = device.make_workdir()
        device.push([nasty], work)
        listed = device.run(["ls", "-1", work], timeout=30)
        echoed = device.run(
            ["printf", "%s\n", "$(touch pwned)", "`touch pwned2`", "$HOME", "a;b", "*"], timeout=30, cwd=work
        )
        device.pull(f"{work}/{nasty.name}", tmp_path / "back.bin")
        assert not any(Path(work, name).exists() for name in ("pwned", "pwned2"))
        device.remove_workdir(work)
    assert listed.stdout.splitlines() == [nasty.name]
    assert echoed.stdout.splitlines() == ["$(touch pwned)", "`touch pwned2`", "$HOME", "a;b", "*"]
    assert (tmp_path / "back.bin").read_bytes() == b"weights"
    home = Path(os.path.expanduser("~" + ssh_client.server.user))
    assert not (home / "pwned").exists() and not (home / "pwned2").exists()


def test_timeout_kills_the_job_on_the_device(ssh_client, device_tmp):
    with open_transport(ssh_client.address(tmp=str(device_tmp)), ssh_client.options()) as device:
        work = device.make_workdir()
        with pytest.raises(DeviceTimeoutError, match="ran past its 1 s limit"):
            device.run(["sh", "-c", "sleep 60 & sleep 60; echo never"], timeout=1, cwd=work)
        pid = int(Path(work, ".shufflekit.pid").read_text())
        device.remove_workdir(work)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.05)
    assert not _group_alive(pid), "the job (or a child of it) outlived its timeout"
    assert list(device_tmp.iterdir()) == []


def _group_alive(pgid: int) -> bool:
    out = subprocess.run(["ps", "-eo", "pgid=,stat="], capture_output=True, text=True).stdout
    return any(line.split()[0] == str(pgid) and not line.split()[1].startswith("Z") for line in out.splitlines())


def test_remove_workdir_refuses_anything_it_did_not_make(ssh_client, tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    with open_transport(ssh_client.address(), ssh_client.options()) as device:
        for path in (str(keep), "/", "/tmp", "/tmp/shufflekit.", "/tmp/x/../shufflekit.abcdefgh/.."):
            with pytest.raises(DeviceError, match="not a shufflekit work folder"):
                device.remove_workdir(path)
    assert keep.is_dir()


def test_master_connection_is_closed_afterwards(ssh_client):
    with open_transport(ssh_client.address(), ssh_client.options()) as device:
        control = Path(device._control_dir, "m")
        assert control.exists()
    assert not control.parent.exists()


def _logins(ssh_client) -> int:
    return (ssh_client.server.folder / "sshd.log").read_text(errors="replace").count("Accepted publickey")


def test_a_board_behind_a_jump_host_is_reached_through_it(ssh_client, device_python):
    """ProxyJump, from the ssh config or as ?jump=: the board is reached through the gateway (two logins
    for one connection: the gateway's and, through its forwarding, the board's), and its results are filed
    under the board's own key whichever way it was reached."""
    server = ssh_client.server
    ssh_client.config.write_text(
        f"Host gateway\n  HostName 127.0.0.1\n  Port {server.port}\n  User {server.user}\n"
        f"Host board-behind\n  HostName 127.0.0.1\n  Port {server.port}\n  User {server.user}\n"
        "  ProxyJump gateway\n" + ssh_client.config.read_text()
    )
    by_config = parse_address("board-behind", ssh_config=ssh_client.config)
    by_url = parse_address(ssh_client.url(jump="gateway"))
    assert by_url.jump == "gateway" and by_url.key == ssh_client.address().key
    for address in (by_config, by_url):
        before = _logins(ssh_client)
        with open_transport(address, ssh_client.options()) as device:
            result = device.run([device_python, "-c", "print('on the board')"], timeout=30)
        assert (result.rc, result.stdout.strip()) == (0, "on the board"), result.stderr
        assert _logins(ssh_client) - before == 2, f"{address} did not go through the gateway"
    with pytest.raises(DeviceError, match="ssh failed|unknown host|refused"):
        with open_transport(parse_address(ssh_client.url(jump="no-such-gateway.invalid")), ssh_client.options()):
            pass
