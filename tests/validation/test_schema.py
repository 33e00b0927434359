"""metrics.json: the committed JSON schema matches the models; load_metrics checks files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from twinforge.errors import TwinforgeError
from twinforge.validation.schema import ValidationMetrics, load_metrics

SCHEMA = Path(__file__).parents[2] / "docs" / "validation-metrics.schema.json"


def test_committed_schema_is_current() -> None:
    # regenerate: python -c "import json; from twinforge.validation.schema import
    #   ValidationMetrics as M; print(json.dumps(M.model_json_schema(), indent=2))" > docs/...
    assert json.loads(SCHEMA.read_text()) == ValidationMetrics.model_json_schema()


def test_load_metrics_round_trip_and_refusals(tmp_path: Path) -> None:
    from tests.validation.test_suite import FAST, READOUT, _showers
    from twinforge.validation import run_validation

    (s1, e1), (s2, e2) = _showers(300, 1), _showers(300, 2)
    config = FAST.model_copy(update={"metrics": ["separation", "classifier_low"]})
    result = run_validation(s1, e1, s2, e2, READOUT, config)
    path = tmp_path / "metrics.json"
    path.write_text(result.to_json())
    loaded = load_metrics(path)
    assert loaded.protocol.classifier_seeds == [0]
    assert loaded.overall.classifier_low is not None
    assert loaded.overall.classifier_low.seeds[0].seed == 0
    assert loaded.overall.fpd is None  # not requested: absent, not null

    old = json.loads(path.read_text()) | {"format_version": 1}
    path.write_text(json.dumps(old))
    with pytest.raises(TwinforgeError, match="version 1 figures are not comparable"):
        load_metrics(path)
    bad = json.loads(result.to_json())
    bad["overall"]["classifier_low"]["auc"] = "high"
    path.write_text(json.dumps(bad))
    with pytest.raises(TwinforgeError, match=r"overall.classifier_low.auc"):
        load_metrics(path)
    path.write_text("{not json")
    with pytest.raises(TwinforgeError, match="cannot read validation metrics"):
        load_metrics(path)
