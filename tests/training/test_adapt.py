"""``train --init-from``: a model trained on one readout starts a model on another."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.models.test_contract import SMALL
from twinforge.errors import ConfigError
from twinforge.models import Surrogate
from twinforge.models.base import available_families
from twinforge.simulation.synthetic import SyntheticConfig, write_synthetic_file
from twinforge.training.adapt import _layer_map
from twinforge.training.train import TrainConfig, run_training

# the tiny detector's layer binning on 8 layers of another absorber (4 z bins, 64 voxels)
OTHER = """kind: detector
name: tiny-pb
geometry: {kind: sampling, absorber: G4_Pb, absorber_thickness: 5.0, sensitive: G4_Si,
           sensitive_thickness: 0.3, n_layers: 8}
transverse_size: 300.0
readout: {r_edges: [0.0, 5.0, 10.0, 20.0, 40.0], n_alpha: 4, layers_per_bin: 2,
          threshold: 0.01515}
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapt")
    (root / "tiny-pb.yaml").write_text(OTHER)
    out = {}
    for name, detector in (("tiny", "tiny"), ("other", str(root / "tiny-pb.yaml"))):
        config = SyntheticConfig(detector=detector, n_events=160, seed=3)
        out[name] = write_synthetic_file(config, root / f"{name}.h5")
    return out


def config(
    family: str, data: Path, out: Path, init_from: Path | None = None, **model: object
) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "name": out.name,
            "data": {"files": [str(data)], "chunk_events": 160},
            "model": {"family": family, "config": {**SMALL.get(family, {}), **model}},
            "optim": {"max_steps": 2, "batch_size": 32},
            "output": str(out),
            "init_from": str(init_from) if init_from else None,
        }
    )


def test_layers_map_at_equal_fractional_depth() -> None:
    assert _layer_map(6, 4).tolist() == [0, 2, 3, 5]
    assert _layer_map(4, 6).tolist() == [0, 1, 1, 2, 3, 3]
    assert _layer_map(45, 30)[[0, -1]].tolist() == [0, 44]
    assert _layer_map(5, 5).tolist() == list(range(5))


@pytest.mark.parametrize("family", sorted(available_families()))
def test_every_family_adapts_to_a_readout_with_fewer_layers(
    family: str, files: dict[str, Path], tmp_path: Path
) -> None:
    source = run_training(config(family, files["tiny"], tmp_path / "src"), quiet=True)
    target = run_training(
        config(family, files["other"], tmp_path / "dst", init_from=source), quiet=True
    )
    transfer = Surrogate.load(target).provenance["transfer"]
    assert transfer["init_from"] == str(source)
    assert transfer["copied"] > 0
    assert transfer["resampled"] > 0  # tensors with a feature axis were mapped, not dropped
    assert 0.3 < transfer["fraction_transferred"] <= 1.0


def test_weights_map_voxel_by_voxel(files: dict[str, Path], tmp_path: Path) -> None:
    source = Surrogate.load(run_training(config("vae", files["tiny"], tmp_path / "s"), quiet=True))
    start = config("vae", files["other"], tmp_path / "t", init_from=tmp_path / "s")
    start.optim.lr = 1e-12  # two steps that change nothing measurable: the initial weights
    target = Surrogate.load(run_training(start, quiet=True))
    mine, theirs = target.model.state_dict(), source.model.state_dict()
    # a hidden layer: copied
    torch.testing.assert_close(mine["encoder.3.weight"], theirs["encoder.3.weight"])
    # the encoder's input: target voxel (z=1, alpha=2, r=3) <- source z=_layer_map(6, 4)[1]=2;
    # the condition columns after the voxels are copied
    w_t, w_s = mine["encoder.0.weight"], theirs["encoder.0.weight"]
    torch.testing.assert_close(w_t[:, 1 * 16 + 2 * 4 + 3], w_s[:, 2 * 16 + 2 * 4 + 3])
    torch.testing.assert_close(w_t[:, 64:], w_s[:, 96:])
    # the decoder's output rows and biases likewise
    b_t, b_s = mine["decoder.6.bias"], theirs["decoder.6.bias"]
    np.testing.assert_allclose(b_t.reshape(4, 16).numpy(), b_s.reshape(6, 16)[[0, 2, 3, 5]].numpy())


def test_same_readout_copies_everything(files: dict[str, Path], tmp_path: Path) -> None:
    source = run_training(config("flow-matching", files["tiny"], tmp_path / "a"), quiet=True)
    again = run_training(
        config("flow-matching", files["tiny"], tmp_path / "b", init_from=source), quiet=True
    )
    transfer = Surrogate.load(again).provenance["transfer"]
    assert transfer["resampled"] == 0
    assert transfer["initialised"] == []
    assert transfer["fraction_transferred"] == 1.0


def test_incompatible_sources_are_refused(
    files: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    vae = run_training(config("vae", files["tiny"], tmp_path / "vae"), quiet=True)
    with pytest.raises(ConfigError, match=r"--init-from .*vae: a vae model cannot initialise a "):
        run_training(config("flow-matching", files["other"], tmp_path / "x", init_from=vae))
    with pytest.raises(ConfigError, match="model directory not found"):
        run_training(config("vae", files["other"], tmp_path / "x", init_from=tmp_path / "no"))
    # another transverse binning: nothing maps voxel to voxel
    other = tmp_path / "wide.yaml"
    other.write_text(OTHER.replace("n_alpha: 4", "n_alpha: 2"))
    wide = write_synthetic_file(
        SyntheticConfig(detector=str(other), n_events=160), tmp_path / "w.h5"
    )
    with pytest.raises(ConfigError, match=r"cannot be mapped onto this one: layers binned diff"):
        run_training(config("vae", wide, tmp_path / "x", init_from=vae), quiet=True)
    # other conditions: two particles (one-hot) against one
    two = tmp_path / "two.h5"
    from twinforge.showers import Conditions, ShowerFile, ShowerWriter

    with ShowerFile(files["other"]) as f:
        cond, showers = f.read()
        readout, provenance = f.readout, f.provenance
    pdg = np.where(np.arange(len(cond)) % 2, 11, 22)
    with ShowerWriter(two, readout, provenance) as w:
        w.append(Conditions.make(cond.energy, pdg, cond.theta, cond.phi), showers)
    with pytest.raises(ConfigError, match=r"its conditions differ \(particles \[11\]"):
        run_training(config("vae", two, tmp_path / "x", init_from=vae), quiet=True)
    assert not (tmp_path / "x").exists()


def test_voxel_fractions_of_another_kind_are_refused() -> None:
    """Logit and softmax fractions are other features: no weight of the one means the other."""
    from twinforge.detector.config import load_detector
    from twinforge.models import ShowerTransform
    from twinforge.training.adapt import feature_maps

    binning = load_detector("tiny").binning()
    xml, offsets = binning.to_xml(), [int(o) for o in binning.offsets]
    logit, softmax = (
        ShowerTransform(96, kind="layers", threshold=0.01515, layer_offsets=offsets, fractions=f)
        for f in ("logit", "softmax")
    )
    assert set(feature_maps(logit, xml, logit, xml)) == {"voxels", "layers", "features"}
    with pytest.raises(ConfigError, match="voxel fractions 'logit' there, 'softmax' here"):
        feature_maps(logit, xml, softmax, xml)


def test_cli_trains_from_a_model_and_tracks_the_run(
    files: dict[str, Path], tmp_path: Path, twinforge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``twinforge train --init-from`` with MLflow on: the run has the config, the per-epoch
    losses and the model; the catalogue's model links the run."""
    import yaml
    from mlflow import MlflowClient

    from twinforge.catalog import Catalog

    monkeypatch.delenv("TWINFORGE_NO_TRACKING")
    source = run_training(config("vae", files["tiny"], tmp_path / "src"), quiet=True)
    target = config("vae", files["other"], tmp_path / "dst")
    target.optim.max_steps = 12  # two epochs: validation losses per epoch
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(target.model_dump(mode="json")))
    result = twinforge("-q", "train", "t.yaml", "--init-from", str(source))
    assert result.returncode == 0, result.stderr
    model = Surrogate.load(tmp_path / "dst")
    assert model.provenance["transfer"]["init_from"] == str(source)
    link = model.provenance["mlflow"]
    with Catalog.open() as cat:
        (record,) = cat.list("models")
        assert record.provenance["mlflow"] == link
    client = MlflowClient(link["tracking_uri"])
    run = client.get_run(link["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["init_from"] == str(source)
    assert run.data.params["model.family"] == "vae"
    assert len(client.get_metric_history(link["run_id"], "val/loss")) >= 2
    assert "final/val/loss" in run.data.metrics
    names = {a.path for a in client.list_artifacts(link["run_id"], "model")}
    assert {"model/model.json", "model/weights.safetensors"} <= names
    bad = twinforge(
        "-q",
        "train",
        "t.yaml",
        "--overwrite",
        "--init-from",
        str(tmp_path / "no"),
        "--catalog",
        str(tmp_path / "other.sqlite"),
    )  # (dst is in the first one)
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("error: --init-from: ")
    assert "model directory not found" in bad.stderr
