"""What this machine can do, measured in the same run as the benchmarks: the peak each row is a
fraction of.

A large GEMM per engine and number type: fp32 through torch (`torch.mm`, for eager and
torch.compile rows), fp32 through ONNX Runtime (a session holding one MatMul) and int8 through
ONNX Runtime (one MatMulInteger, u8 x s8 -> s32, and one QLinearMatMul, u8 x s8 -> u8: the kernels
under QLinearConv/QGemm and DynamicQuantizeMatMul). The engines run with the thread settings the
rows use (torch's `get_num_threads()`, ONNX Runtime's default). A multiply-add counts 2, as in
compiler/flops.py, so a row's achieved GFLOP/s is `FLOPs per example x batch / time`.

The GEMMs are 512 x 512 (a few ms each) and the peak is the best of many calls: on a shared
machine a call of a second is always cut by the scheduler, and a 1024 or 2048 GEMM measured here
under load 8 came out 3x below the 512 one (27 against 91 GFLOP/s, torch, 1 thread), below what
the models' own short calls achieved. The best of short calls is the machine left alone, the
same condition the rows' short calls see; the operands still leave the L2 cache.

    python bench/peak.py [--n 512] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper

from specc.compiler.flops import dynamic_dims, layer_flops


def _session(nodes, inputs, outputs, initializers=(), threads=None) -> ort.InferenceSession:
    graph = helper.make_graph(nodes, "peak", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def gemm_contenders(n: int, threads: int | None = None) -> dict:
    """name -> a call that multiplies two n x n matrices once."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(n, n)).astype(np.float32), rng.normal(size=(n, n)).astype(np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    f32 = _session(
        [helper.make_node("MatMul", ["A", "B"], ["Y"])],
        [
            helper.make_tensor_value_info("A", TensorProto.FLOAT, [n, n]),
            helper.make_tensor_value_info("B", TensorProto.FLOAT, [n, n]),
        ],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [n, n])],
        threads=threads,
    )
    qa = rng.integers(0, 256, (n, n), dtype=np.uint8)
    qb = rng.integers(-128, 128, (n, n), dtype=np.int8)
    weight = helper.make_tensor("B", TensorProto.INT8, [n, n], qb.tobytes(), raw=True)
    integer = _session(
        [helper.make_node("MatMulInteger", ["A", "B", "za"], ["Y"])],
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [n, n])],
        [weight, helper.make_tensor("za", TensorProto.UINT8, [], [128])],
        threads=threads,
    )
    scalar = [
        helper.make_tensor("sa", TensorProto.FLOAT, [], [0.02]),
        helper.make_tensor("za", TensorProto.UINT8, [], [128]),
        helper.make_tensor("sb", TensorProto.FLOAT, [], [0.01]),
        helper.make_tensor("zb", TensorProto.INT8, [], [0]),
        helper.make_tensor("sy", TensorProto.FLOAT, [], [0.5]),
        helper.make_tensor("zy", TensorProto.UINT8, [], [128]),
    ]
    qlinear = _session(
        [helper.make_node("QLinearMatMul", ["A", "sa", "za", "B", "sb", "zb", "sy", "zy"], ["Y"])],
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info("Y", TensorProto.UINT8, [n, n])],
        [weight, *scalar],
        threads=threads,
    )
    return {
        "torch_fp32": lambda: torch.mm(ta, tb),
        "ort_fp32": lambda: f32.run(None, {"A": a, "B": b}),
        "ort_int8_matmulinteger": lambda: integer.run(None, {"A": qa}),
        "ort_int8_qlinearmatmul": lambda: qlinear.run(None, {"A": qa}),
    }


def peaks(
    n: int = 512, rounds: int = 50, threads: int | None = None, clock=time.perf_counter
) -> dict:
    """GFLOP/s (GOP/s for int8) of each engine's n x n GEMM: the best of `rounds` calls each,
    taken in turn in a shuffled order (seeded), after a warm-up. `clock`: wall clock, or
    `time.thread_time` with one thread (bench/run.py --cpu-time)."""
    calls = gemm_contenders(n, threads)
    with torch.inference_mode():
        for fn in calls.values():
            fn()
        times = {k: [] for k in calls}
        order, shuffle = list(calls), random.Random(0).shuffle
        for _ in range(rounds):
            shuffle(order)
            for k in order:
                start = clock()
                calls[k]()
                times[k].append(clock() - start)
    ops = 2 * n**3
    result = {k: ops / min(v) / 1e9 for k, v in times.items()}
    result["median"] = {k: ops / statistics.median(v) / 1e9 for k, v in times.items()}
    result["ort_int8"] = max(result["ort_int8_matmulinteger"], result["ort_int8_qlinearmatmul"])
    result["n"] = n
    return result


def spec_flops(compiled, size: int = 8) -> int:
    """FLOPs of one example of the compiled spec (what `specc check --json` reports), every named
    dim (time, ...) at `size`."""
    parsed = compiled.parsed
    sizes = {d: size for d in dynamic_dims(parsed)}
    return sum(layer_flops(parsed, compiled.inferred, sizes).values())


def gflops(flops_per_example: int, batch: int, ms: float) -> float:
    return flops_per_example * batch / (ms * 1e-3) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--threads", type=int, help="threads for torch and ONNX Runtime")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(peaks(args.n, threads=args.threads), indent=2))


if __name__ == "__main__":
    main()
