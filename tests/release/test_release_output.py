"""`shufflekit release` as the other commands print: --json (it had none), -q, and its table at 80
columns. A rerun of the finished release skips every stage, so these cost a few seconds."""

from __future__ import annotations

import json

from click.testing import CliRunner
from release_helpers import CLI_FAST

from shufflekit.artifacts import Manifest
from shufflekit.cli import main
from shufflekit.cli.output import SCHEMA, is_progress_line


def _release(released_copy, *flags: str, env: dict | None = None):
    args = ["release", "--checkpoint", str(released_copy.checkpoint), *CLI_FAST, "--out", str(released_copy.folder)]
    result = CliRunner().invoke(main, [*args, *flags], env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def test_release_json_is_the_envelope_with_one_result_per_artifact(released_copy):
    data = json.loads(_release(released_copy, "--json").stdout)
    assert data["schema"] == SCHEMA and data["command"] == "release" and data["ok"] and data["error"] is None
    manifest = Manifest.load(released_copy.folder)
    assert sorted((r["artifact"], r["key"]) for r in data["results"]) == sorted(
        (a.name, a.key) for a in manifest.artifacts
    )
    for item in data["results"]:
        assert item["parity"]["passed"] and item["ships_to"] == ["local"]
        assert item["devices"]["local"]["p50_ms"] > 0
        assert 0 <= item["accuracy"]["top1"] <= 100  # percent, as every accuracy in the JSON
    report = data["report"]
    assert [v["device"] for v in report["verdicts"]] == ["local"] and report["verdicts"][0]["ship"]
    assert {status for counts in report["stages"].values() for status in counts} == {"skipped"}
    assert report["pytorch_accuracy"]["top1"] > 50 and report["card"].endswith("README.md")


def test_release_quiet_prints_the_verdict_and_table_but_no_stage_lines(released_copy):
    result = _release(released_copy, "-q")
    assert "verdict:" in result.stdout and "release folder:" in result.stdout
    assert "release into" not in result.stdout and "skipped" not in result.stdout.split("stages:")[0]
    assert not any(is_progress_line(line) for line in result.stderr.splitlines())


def test_release_table_at_80_columns_keeps_every_name_whole(released_copy):
    out = _release(released_copy, env={"COLUMNS": "80"}).stdout
    table = out[out.index("┏") : out.index("┘") + 1]
    assert "…" not in table and all(len(line) <= 80 for line in table.splitlines())
    stem = "shufflenet_v2_x0_5_"
    names = [a.name for a in Manifest.load(released_copy.folder).artifacts]
    firsts = [line.strip("│").split("│")[0].strip() for line in table.splitlines() if line.startswith("│")]
    assert all(name[len(stem) :] in firsts or name in firsts for name in names), firsts
