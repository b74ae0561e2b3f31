import pytest

from shufflekit.errors import UsageError
from shufflekit.runtimes.remote import parse_address


@pytest.mark.parametrize(
    "text, scheme, host, user, port, serial",
    [
        ("local", "local", None, None, None, None),
        ("ssh://pi@raspberrypi.local:2222", "ssh", "raspberrypi.local", "pi", 2222, None),
        ("ssh://Board-7", "ssh", "Board-7", None, None, None),  # aliases are case-sensitive in ssh_config
        ("ssh://root@[fe80::1]:22", "ssh", "fe80::1", "root", 22, None),
        ("ssh://10.0.0.5/", "ssh", "10.0.0.5", None, None, None),
        ("adb://", "adb", None, None, None, None),
        ("adb://emulator-5554", "adb", None, None, None, "emulator-5554"),
        ("adb://192.168.1.20:5555", "adb", None, None, None, "192.168.1.20:5555"),
        # a phone on another computer's adb server (adb -H lab-pc -P 5038)
        ("adb://emulator-5554@lab-pc:5038", "adb", "lab-pc", None, 5038, "emulator-5554"),
        ("adb://192.168.1.20:5555@lab-pc", "adb", "lab-pc", None, None, "192.168.1.20:5555"),
        ("adb://@lab-pc:5037", "adb", "lab-pc", None, 5037, None),
    ],
)
def test_addresses_users_write(text, scheme, host, user, port, serial):
    address = parse_address(text)
    assert (address.scheme, address.host, address.user, address.port, address.serial) == (
        scheme,
        host,
        user,
        port,
        serial,
    )


def test_the_key_names_the_interpreter_but_not_the_work_folder():
    address = parse_address("ssh://pi@board?python=/home/pi/venv/bin/python&tmp=/home/pi/tmp")
    assert address.python == "/home/pi/venv/bin/python" and address.tmp == "/home/pi/tmp"
    assert address.key == "ssh://pi@board?python=/home/pi/venv/bin/python"
    assert parse_address("ssh://pi@board?tmp=/home/pi/tmp").key == "ssh://pi@board"
    assert parse_address(str(address)) == address
    # another interpreter on this computer does not file its figures under the host's own `local`
    assert parse_address("local?python=/opt/py/bin/python").key == "local?python=/opt/py/bin/python"
    assert parse_address("local?python=/opt/py/bin/python&name=py312").key == "py312"
    remote_phone = parse_address("adb://emulator-5554@lab-pc:5038?tmp=/data/local/tmp")
    assert remote_phone.key == "adb://emulator-5554@lab-pc:5038" and parse_address(str(remote_phone)) == remote_phone


@pytest.mark.parametrize(
    "text, says",
    [
        ("ssh://-oProxyCommand=touch%20x", "bad host"),  # would be read by ssh as an option
        ("ssh://-oProxyCommand=sh", "bad host"),
        ("ssh://-l@host", "bad user"),
        ("ssh://pi:secret@board", "passwords are never taken"),
        ("ssh://board:0", "bad port"),
        ("ssh://board:70000", "bad port"),
        ("ssh://board/home/pi", "bad ssh address"),
        ("ssh://", "no host"),
        ("ssh://bo ard", "bad host"),
        ("adb://-s", "bad adb serial"),
        ("adb://emulator-5554@-H:5037", "bad adb server host"),
        ("adb://emulator-5554@lab:99999", "bad adb server port"),
        ("adb://emulator-5554?jump=gw", "is for ssh devices"),
        ("ssh://board?jump=-oProxyCommand=sh", "bad value"),  # would be read by ssh as an option
        ("ssh://board?jump=gw;rm", "bad jump host"),
        ("ftp://board", "unknown device address scheme"),
        ("ssh://board?evil=1", "unknown option 'evil'"),
        ("ssh://board?python=-c", "bad value"),
        ("ssh://board?tmp=relative/dir", "not an absolute path"),
        ("raspberrypi", "unknown device address"),
        ("", "empty device address"),
    ],
)
def test_bad_addresses_are_one_line_usage_errors(text, says):
    with pytest.raises(UsageError) as info:
        parse_address(text)
    line = info.value.one_line()
    assert says in line and "\n" not in line


def test_a_bare_name_is_a_host_alias_only_when_the_ssh_config_names_it(tmp_path):
    """The config is read by OpenSSH itself (ssh -G): Host lines, quoted names, Include and Match blocks."""
    included = tmp_path / "boards.conf"
    included.write_text("Host jetson\n  HostName 10.0.0.9\n")
    config = tmp_path / "config"
    config.write_text(
        f'Host pi4 pi5\n  User pi\nHost "rock5"\n  Port 2201\nMatch host orin\n  User nvidia\n'
        f"Host *\n  ServerAliveInterval 30\nInclude {included}\n"
    )
    for alias in ("pi4", "pi5", "jetson", "rock5", "orin"):
        address = parse_address(alias, ssh_config=config)
        assert (address.scheme, address.host) == ("ssh", alias)
    with pytest.raises(UsageError, match="unknown device address"):
        parse_address("*.lab", ssh_config=config)
    with pytest.raises(UsageError, match="unknown device address"):
        parse_address("pi3", ssh_config=config)  # only Host * applies to it: not a name the config gives


def test_name_files_results_under_a_label_so_boards_on_one_host_are_told_apart():
    arm = parse_address("local?python=/boards/arm64/python&name=arm64-board")
    avx2 = parse_address("ssh://pi@host:2222?python=/boards/avx2/python&name=avx2")
    assert arm.key == "arm64-board" and avx2.key == "avx2" and arm.python == "/boards/arm64/python"
    assert parse_address(str(arm)) == arm  # the address round-trips with its name
    for bad in ("local?name=local", "local?name=-x", "local?name=a/b", "local?name=" + "x" * 65):
        with pytest.raises(UsageError, match="bad (name|value)"):
            parse_address(bad)
