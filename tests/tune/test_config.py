"""The tune config: search-space paths and values checked against the training config, the
objective against the suite's figures, storage beside the catalogue."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from twinforge.errors import ConfigError
from twinforge.tune import FIGURES, load_tune_config, resolve_storage
from twinforge.tune.config import Param, apply_params, decode_choice, family_options, tunable_paths
from twinforge.tune.objective import describe_objective, suite_config


def _one_line(exc: pytest.ExceptionInfo[ConfigError]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_loads_and_resolves_the_training_config(project: Callable[..., Path]) -> None:
    cfg = load_tune_config(project())
    train = cfg.train_config()
    assert train.name == "tiny-vae"
    assert cfg.study == "tiny"
    assert cfg.study_dir() == Path("studies/tiny")
    assert cfg.executor.kind == "local"
    suite = cfg.suite_config()
    assert suite.metrics == ["fpd"]
    assert suite.noise_floor is False
    assert suite.energy_bins == 0
    assert suite.distances.fpd_batches == 2


def test_unknown_path_names_it_and_the_known_ones(project: Callable[..., Path]) -> None:
    path = project(space={"optim.lrr": {"type": "float", "low": 1e-4, "high": 1e-2}})
    with pytest.raises(ConfigError) as exc:
        load_tune_config(path)
    text = _one_line(exc)
    assert "tune.yaml" in text
    assert "space 'optim.lrr': not a parameter of the training config" in text
    assert "optim.lr" in text
    assert "optim.batch_size" in text
    assert "model.config.<vae option>" in text


def test_unknown_family_option_lists_the_family_options(project: Callable[..., Path]) -> None:
    path = project(space={"model.config.latent": {"type": "int", "low": 2, "high": 8}})
    with pytest.raises(ConfigError) as exc:
        load_tune_config(path)
    text = _one_line(exc)
    assert "the vae family has no option 'latent'" in text
    assert "beta, hidden, latent_dim" in text


@pytest.mark.parametrize("path", ["data.files", "name", "output", "model.family", "init_from"])
def test_what_is_trained_is_not_a_hyper_parameter(project: Callable[..., Path], path: str) -> None:
    with pytest.raises(ConfigError, match=f"space '{path}': not a hyper-parameter"):
        load_tune_config(project(space={path: {"type": "categorical", "choices": ["a"]}}))


def test_values_the_training_config_refuses(project: Callable[..., Path]) -> None:
    # a float range over an integer option: refused at an inner, non-integer point
    bad = project(space={"optim.batch_size": {"type": "float", "low": 16, "high": 512}})
    with pytest.raises(ConfigError) as exc:
        load_tune_config(bad)
    assert "space 'optim.batch_size': the training config refuses" in _one_line(exc)
    # out of the option's own bounds (val_fraction < 0.5)
    bad = project(space={"data.val_fraction": {"type": "float", "low": 0.1, "high": 0.6}})
    with pytest.raises(ConfigError, match=r"space 'data\.val_fraction'.*refuses 0\.6"):
        load_tune_config(bad)
    bad = project(space={"model.config.beta": {"type": "float", "low": -1.0, "high": 1.0}})
    with pytest.raises(ConfigError, match=r"model\.config\.beta"):
        load_tune_config(bad)


def test_unknown_objective_lists_the_suite_figures(project: Callable[..., Path]) -> None:
    with pytest.raises(ConfigError) as exc:
        load_tune_config(project(objective="fid"))
    text = _one_line(exc)
    assert "key 'objective'" in text
    assert "computes no figure 'fid'" in text
    assert "fpd, kpd, auc_high" in text
    assert "auc_low" in text
    with pytest.raises(ConfigError, match="computes no figure 'auc'"):
        load_tune_config(project(objective={"weighted": {"fpd": 1.0, "auc": 2.0}}))


def test_weighted_objective(project: Callable[..., Path]) -> None:
    cfg = load_tune_config(project(objective={"weighted": {"fpd": 1.0, "auc_high": 10.0}}))
    assert describe_objective(cfg.objective) == "1 x fpd + 10 x auc_high"
    assert cfg.suite_config().metrics == ["fpd", "classifier_high"]


def test_bad_distributions_are_one_line_errors(project: Callable[..., Path]) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "log sampling needs low > 0"),
        ({"type": "int", "low": 1.5, "high": 4}, "an int parameter needs an integer low"),
        ({"type": "float", "low": 2.0, "high": 1.0}, "low <= high"),
        ({"type": "categorical"}, "needs 'choices'"),
        ({"type": "float", "low": 1.0}, "needs 'low' and 'high'"),
        ({"type": "int", "low": 1, "high": 4, "choices": [1]}, "'choices' belong to"),
    ]
    for spec, message in cases:
        with pytest.raises(ConfigError) as exc:
            load_tune_config(project(space={"optim.lr": spec}))
        assert message in _one_line(exc)


def test_inline_training_config_is_checked_too(project: Callable[..., Path]) -> None:
    train = yaml.safe_load(Path("train.yaml").read_text())
    cfg = load_tune_config(project(train=train))
    assert cfg.train_config().name == "tiny-vae"
    with pytest.raises(ConfigError, match=r"space 'optim\.nope'"):
        load_tune_config(project(train=train, space={"optim.nope": {"type": "int", "low": 1,
                                                                     "high": 2}}))  # fmt: skip


def test_list_choices_round_trip_through_optuna() -> None:
    param = Param(type="categorical", choices=[[16], [32, 16], 8])
    distribution = param.distribution()
    assert distribution.choices == ("[16]", "[32, 16]", 8)  # Optuna keeps plain values
    assert decode_choice(param, "[32, 16]") == [32, 16]
    assert decode_choice(param, 8) == 8


def test_apply_params_sets_dotted_paths(project: Callable[..., Path]) -> None:
    train = load_tune_config(project()).train_config()
    out = apply_params(
        train, {"optim.lr": 0.003, "model.config.hidden": [32, 16], "transform.eps": 1e-5},
        updates={"name": "x", "output": "elsewhere"},
    )  # fmt: skip
    assert out.optim.lr == 0.003
    assert out.optim.max_steps == train.optim.max_steps
    assert out.model.config == {"latent_dim": 4, "hidden": [32, 16]}
    assert out.transform.eps == 1e-5
    assert (out.name, out.output) == ("x", "elsewhere")


def test_family_options_are_the_config_fields() -> None:
    assert family_options("vae") == {"latent_dim": 10, "hidden": [256, 128, 64], "beta": 1.0}
    assert family_options("flow")["n_layers"] is None  # filled in by training
    with pytest.raises(ConfigError, match="unknown model family 'nope'"):
        family_options("nope")


def test_every_figure_names_a_suite_metric() -> None:
    from twinforge.validation.suite import ALL_METRICS

    assert {f.metric for f in FIGURES.values()} == set(ALL_METRICS)
    assert suite_config("auc_low", None).metrics == ["classifier_low"]


def test_storage_beside_a_sqlite_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = tmp_path / "cat" / "catalog.sqlite"
    location = resolve_storage(None, str(catalog))
    assert location.url == f"sqlite:///{tmp_path / 'cat' / 'studies.sqlite'}"
    assert location.schema is None
    # the default catalogue: $TWINFORGE_CATALOG (set by the root conftest), else ./.twinforge
    monkeypatch.setenv("TWINFORGE_CATALOG", str(tmp_path / "env" / "c.sqlite"))
    assert resolve_storage(None).display == str(tmp_path / "env" / "studies.sqlite")
    monkeypatch.delenv("TWINFORGE_CATALOG")
    monkeypatch.chdir(tmp_path)
    assert resolve_storage(None).display == str(tmp_path / ".twinforge" / "studies.sqlite")
    # explicit storage: a path or a URL, as given
    assert resolve_storage("s.sqlite").url == f"sqlite:///{tmp_path / 's.sqlite'}"
    assert resolve_storage("sqlite:////x/y.db").url == "sqlite:////x/y.db"


def test_storage_beside_a_postgresql_catalogue() -> None:
    location = resolve_storage(None, "postgresql://tf:secret@127.0.0.1:5999/catalogue")
    assert location.schema == "optuna"
    assert location.url.startswith("postgresql+psycopg://tf:secret@127.0.0.1:5999/catalogue?")
    assert "options=-csearch_path%3Doptuna" in location.url
    assert "secret" not in location.display
    assert "schema optuna" in location.display
    with pytest.raises(ConfigError, match="give the study's storage"):
        resolve_storage(None, "sqlite://")


def test_the_example_loads() -> None:
    root = Path(__file__).resolve().parents[2]
    cfg = load_tune_config(root / "examples" / "tune" / "vae.yaml")
    assert cfg.train_config().name == "siw-electrons-vae"  # examples/train/vae.yaml
    assert cfg.suite_config().metrics == ["fpd"]
    assert set(cfg.space) <= set(tunable_paths(cfg.train_config()))


@pytest.mark.parametrize(
    ("objective", "message"),
    [
        (3, "expected a figure name such as fpd, or {weighted:"),
        ({"weighted": {"fpd": 1}, "extra": 2}, "expected a figure name"),
        ({"weighted": {"fpd": "x"}}, "weight of 'fpd' must be a number, got 'x'"),
        ({"weighted": []}, "weighted: expected {figure: weight, ...}"),
        ({"weighted": {"fpd": 0}}, "weight of 'fpd' must be finite and non-zero"),
    ],
)
def test_malformed_objectives(project: Callable[..., Path], objective: Any, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_tune_config(project(objective=objective))
    text = _one_line(exc)
    assert "key 'objective': " in text
    assert message in text
