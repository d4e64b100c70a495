"""Quantizing the offline model must not silence the rest of the process's logging."""

from __future__ import annotations

import logging

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from inbox.ai.minilm import _int8


def tiny_matmul_model() -> bytes:
    weights = numpy_helper.from_array(np.ones((4, 4), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [weights])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def test_quantizer_advice_is_dropped_and_other_warnings_are_kept(caplog, monkeypatch):
    from onnxruntime import quantization

    real = quantization.quantize_dynamic

    def quantize_while_the_app_logs(*args, **kwargs):
        logging.getLogger().warning("the app still speaks")  # another part of the process, meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(quantization, "quantize_dynamic", quantize_while_the_app_logs)
    with caplog.at_level(logging.INFO):
        quantized = _int8(tiny_matmul_model())

    assert quantized and quantized != tiny_matmul_model()
    assert "the app still speaks" in caplog.messages
    assert not [r for r in caplog.records if "onnxruntime" in r.pathname]
    assert logging.getLogger().filters == []  # nothing left behind
