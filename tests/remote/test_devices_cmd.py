"""`shufflekit devices` as a user runs it: a table or JSON, an error line per unusable device, exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from shufflekit.cli import main


def _invoke(*args: str):
    return CliRunner().invoke(main, ["devices", *args])


def test_local_is_checked_when_no_address_is_given():
    result = _invoke("--json")
    assert result.exit_code == 0, result.output
    (local,) = json.loads(result.stdout)["results"]
    assert local["address"] == "local" and local["ok"] and "onnxruntime" in local["runtimes"]


@pytest.mark.ssh
def test_ssh_devices_are_checked_and_unusable_ones_exit_2(ssh_client, device_python, bare_device_python):
    good = ssh_client.url(python=device_python)
    bare = ssh_client.url(python=bare_device_python)
    dead = f"ssh://{ssh_client.server.user}@127.0.0.1:1"
    result = _invoke(good, bare, dead, "--ssh-config", str(ssh_client.config), "--json")
    assert result.exit_code == 2
    envelope = json.loads(result.stdout)
    assert not envelope["ok"] and envelope["error"]["exit_code"] == 2  # the results are there all the same
    rows = {row["address"]: row for row in envelope["results"]}
    assert rows[good]["ok"] and set(rows[good]["runtimes"]) == {"onnxruntime", "tflite_runtime"}
    assert rows[good]["numpy"].startswith("1.")
    assert not rows[bare]["ok"] and rows[bare]["python"] and "no inference runtime" in rows[bare]["error"]
    assert not rows[dead]["ok"] and "connection refused" in rows[dead]["error"]
    assert sorted(result.stderr.splitlines()) == sorted(f"error: {rows[a]['error']}" for a in (bare, dead))


@pytest.mark.ssh
def test_a_new_host_key_needs_the_flag(ssh_client, device_python):
    ssh_client.forget_server()
    alias = f"{ssh_client.alias}?python={device_python}"
    refused = _invoke(alias, "--ssh-config", str(ssh_client.config))
    assert refused.exit_code == 2 and "not in known_hosts" in refused.stderr
    trusted = _invoke(alias, "--ssh-config", str(ssh_client.config), "--trust-new-host-key")
    assert trusted.exit_code == 0, trusted.output
    assert "ok" in trusted.stdout and "tflite_runtime 2.14.0" in trusted.stdout
    assert ssh_client.server.host_key_line in ssh_client.known_hosts.read_text()


def test_adb_devices_are_listed_when_adb_is_installed(tmp_path, monkeypatch):
    """Through the stand-in adb of tests/remote/fake_adb (no Android device can run here)."""
    monkeypatch.setenv("PATH", f"{Path(__file__).with_name('fake_adb')}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_ROOT", str(tmp_path))
    monkeypatch.setenv("FAKE_ADB_DEVICES", "emulator-5554=device,R58M12ABC=unauthorized")
    result = _invoke("--json")
    assert result.exit_code == 0, result.output
    adb = {d["serial"]: d for d in json.loads(result.stdout)["report"]["adb"]}
    assert adb["emulator-5554"]["address"] == "adb://emulator-5554" and adb["R58M12ABC"]["state"] == "unauthorized"


def test_a_bad_address_is_one_usage_line():
    result = _invoke("ssh://-oProxyCommand=evil")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: bad host '-oProxyCommand=evil' in ssh address 'ssh://-oProxyCommand=evil'; use local, "
        "ssh://[user@]host[:port], a Host from your ssh config, adb://SERIAL[@HOST[:PORT]] or adb://"
    ]
