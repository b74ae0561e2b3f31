"""The stage driver and the fingerprints: a unit done earlier with the same inputs is skipped, a unit whose
result went missing runs again, and every option field enters a fingerprint unless it is excluded."""

from __future__ import annotations

from dataclasses import dataclass

from shufflekit.release.driver import Context, Planned
from shufflekit.release.state import Unit, fingerprint, options_inputs


@dataclass(frozen=True)
class _Inner:
    size: int = 1


@dataclass(frozen=True)
class _Options:
    precision: str = "int8"
    data: str | None = None
    workers: int = 1  # does not change outputs
    inner: _Inner = _Inner()


def test_every_option_field_is_fingerprinted_unless_excluded(tmp_path):
    (tmp_path / "images.npy").write_bytes(b"x")
    base = options_inputs(_Options(data=str(tmp_path / "images.npy")), exclude={"workers"}, data={"data"})
    assert base == {
        "precision": "int8",
        "data": {"kind": "file", "sha256": base["data"]["sha256"]},
        "inner": {"size": 1},
    }
    assert options_inputs(_Options(workers=8), exclude={"workers"}) == options_inputs(_Options(), exclude={"workers"})
    changed = [_Options(precision="fp16"), _Options(inner=_Inner(2)), _Options(data="demo")]
    prints = {fingerprint("unit", options_inputs(o, exclude={"workers"}, data={"data"})) for o in changed}
    assert len(prints | {fingerprint("unit", options_inputs(_Options(), exclude={"workers"}))}) == 4


def test_the_driver_skips_done_units_and_reruns_one_whose_result_is_gone(released_copy):
    events = []
    ctx = Context(released_copy.folder, released_copy.options(), lambda *a: None, events.append)
    present = {"a": True, "b": True}
    plans = [
        Planned(Unit("probe", name, fingerprint("probe", {"name": name})), name, lambda name=name: present[name])
        for name in ("a", "b")
    ]
    calls = []
    ctx.run(ctx.pending(plans), lambda: calls.append("work") or "made", note=lambda plan, result: f"{result}")
    assert calls == ["work"] and [(e.unit.key, e.status, e.note) for e in events] == [
        ("probe a", "ran", "made"),
        ("probe b", "ran", "made"),
    ]

    events.clear()
    assert ctx.pending(plans) == [] and [e.status for e in events] == ["skipped", "skipped"]

    present["b"] = False  # its result was removed from the manifest since: the fingerprint alone is not enough
    events.clear()
    assert [p.item for p in ctx.pending(plans)] == ["b"]
    changed = [Planned(Unit("probe", "a", fingerprint("probe", {"name": "a", "new": 1})), "a")]
    assert [p.item for p in ctx.pending(changed)] == ["a"]  # a changed input runs again
