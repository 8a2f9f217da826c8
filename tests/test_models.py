"""Model folders: skops round trip, untrusted types refused, promotion, version checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from pipeline.coding.stack import Features
from pipeline.coding.models import current_model_id, load_model_folder, make_current, resolve_model
from pipeline.errors import ModelCardMismatchError, ModelNotFoundError


class Intruder:
    """A type no codeer model contains."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


def test_models_round_trip(trained_model_dir: Path) -> None:
    loaded = load_model_folder(trained_model_dir, codebook_version="garvin2008")
    card = json.loads((trained_model_dir / "card.json").read_text(encoding="utf-8"))
    for key in ("model_id", "codebook_version", "encoder_id", "encoder_dim", "annotations_sha256", "n_per_code",
                "metrics", "libraries", "created_at"):
        assert key in card
    assert (trained_model_dir / "card.md").read_text(encoding="utf-8").startswith(f"# Model {card['model_id']}")
    X = Features(("De werkdruk is hoog.", "We volgen cursussen.", "Het regent."),
                 np.random.default_rng(0).normal(size=(3, loaded.model.dim)))
    assert loaded.model.predict_proba(X).shape == (3, len(loaded.model.codes))
    for key in ("sources_sha256", "model_format"):
        assert key in card
    assert "yardstick" in card["metrics"] and "real-text yardstick" in (trained_model_dir / "card.md").read_text()


def test_models_refuse_an_earlier_model_format(trained_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "old"
    shutil.copytree(trained_model_dir, folder)
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    del card["model_format"]
    (folder / "card.json").write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ModelCardMismatchError, match="earlier codeer .*'codeer train'"):
        load_model_folder(folder)
    assert not list(trained_model_dir.glob("*.pkl"))


def test_models_refuse_untrusted_type(trained_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "tampered"
    shutil.copytree(trained_model_dir, folder)
    model = sio.load(folder / "classifier.skops", trusted=sio.get_untrusted_types(file=folder / "classifier.skops"))
    model.extra = Intruder()
    sio.dump(model, folder / "classifier.skops")
    with pytest.raises(ModelCardMismatchError, match="refuses to load types.*Intruder"):
        load_model_folder(folder)


def test_models_refuse_other_codebook_version(trained_model_dir: Path) -> None:
    with pytest.raises(ModelCardMismatchError, match="trained on codebook version 'garvin2008'.*'scriptie2017'"):
        load_model_folder(trained_model_dir, codebook_version="scriptie2017")


def test_models_make_current_names_the_model(tmp_path: Path) -> None:
    models = tmp_path / "models"
    make_current(models, "m1")
    make_current(models, "m2")
    assert current_model_id(models) == "m2" and not (models / "CURRENT.tmp").exists()


def test_models_missing_model_says_how_to_train(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="codeer train"):
        resolve_model("current", [tmp_path / "models"])


def test_models_load_without_importing_torch_through_scikit_learn(tmp_path: Path) -> None:
    # skops walks every scikit-learn package on import; the array-API shims it would import pull
    # in torch (seconds of start-up for `codeer classify`). The packaged model must load and code
    # without it, and the real shim must still import afterwards.
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from pipeline.coding.models import PROJECT_MODELS, current_model_id, load_model_folder\n"
        "loaded = load_model_folder(PROJECT_MODELS / current_model_id(PROJECT_MODELS))\n"
        "print('torch' in sys.modules, 'dask.array' in sys.modules)\n"
        "import sklearn.externals.array_api_compat.torch as shim\n"
        "print(hasattr(shim, 'asarray'))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "True"]
