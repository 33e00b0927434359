from __future__ import annotations

import json
from pathlib import Path

import pytest

from twinforge.errors import TwinforgeError
from twinforge.training.cost import CostMeter, read_parts, total_cost


def test_meter_keeps_earlier_parts_and_rewrites_its_own(tmp_path: Path) -> None:
    earlier = {"started": "x", "wall_s": 10.0, "cpu_s": 18.0, "steps": 5, "accelerator": "cpu",
               "devices": 1, "nodes": 1, "threads": 2}  # fmt: skip
    (tmp_path / "cost.json").write_text(json.dumps([earlier]))
    meter = CostMeter(tmp_path, {"accelerator": "cpu", "devices": 2, "nodes": 1})
    assert not meter.running
    meter.start(steps=5)
    sum(i * i for i in range(200_000))  # some CPU time
    meter.update(steps=9)
    parts = meter.update(steps=12)  # a later update replaces the part, not adds one
    assert read_parts(tmp_path) == parts
    assert len(parts) == 2
    assert parts[0] == earlier
    assert parts[1]["steps"] == 7
    assert parts[1]["devices"] == 2
    assert parts[1]["wall_s"] >= 0
    assert parts[1]["cpu_s"] > 0


def test_total_cost_counts_what_was_held() -> None:
    parts = [
        {"wall_s": 3600.0, "cpu_s": 7000.0, "steps": 100, "accelerator": "cpu", "devices": 1,
         "nodes": 1, "threads": 2, "host": "a"},
        {"wall_s": 1800.0, "cpu_s": 3000.0, "steps": 50, "accelerator": "cpu", "devices": 1,
         "nodes": 1, "threads": 2, "host": "a"},
        {"wall_s": 360.0, "cpu_s": 400.0, "steps": 300, "accelerator": "gpu", "devices": 2,
         "nodes": 1, "device_name": "H100", "host": "b"},
    ]  # fmt: skip
    cost = total_cost(parts)
    assert cost["parts"] == 3
    assert cost["steps"] == 450
    assert cost["wall_s"] == 5760.0
    assert cost["cpu_s"] == 10400.0
    assert cost["core_hours"] == pytest.approx(3.0)  # 1.5 h x 2 threads
    assert cost["gpu_hours"] == pytest.approx(0.2)  # 0.1 h x 2 GPUs
    assert len(cost["hardware"]) == 2  # the two CPU parts share a set-up
    assert total_cost([])["parts"] == 0


def test_bad_cost_record_is_a_clear_error(tmp_path: Path) -> None:
    assert read_parts(tmp_path) == []
    (tmp_path / "cost.json").write_text("{not json")
    with pytest.raises(TwinforgeError, match=r"cost.json: unreadable training-cost record"):
        read_parts(tmp_path)
    (tmp_path / "cost.json").write_text('{"a": 1}')
    with pytest.raises(TwinforgeError, match="expected a JSON list"):
        read_parts(tmp_path)
