"""Real-client check of Sluice with NVIDIA's tritonclient (HTTP and gRPC), as perf_analyzer uses it.

Usage: python tritonclient_check.py HTTP_HOST:PORT GRPC_HOST:PORT MODEL
Needs: pip install 'tritonclient[http,grpc]' numpy. Prints one line per check and exits 1 on
the first failure. Run by test/integration/tritonclient.test.ts when SLUICE_TEST_TRITONCLIENT_PYTHON
names a Python that has tritonclient.
"""
import sys

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def check(what, cond):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        sys.exit(1)


def refused(fn):
    try:
        fn()
    except InferenceServerException as e:
        return e
    return None


def compute_counts_equal(stats):
    """perf_analyzer's check, in ReportServerSideStats: compute counts must be the same."""
    s = stats["inference_stats"]
    return s["compute_input"]["count"] == s["compute_infer"]["count"] == s["compute_output"]["count"]


def main():
    http_url, grpc_url, model = sys.argv[1], sys.argv[2], sys.argv[3]
    x = np.full((2, 100), 0.01, dtype=np.float32)
    bad = x.copy()
    bad[1, 7] = np.nan

    h = httpclient.InferenceServerClient(http_url)
    check("http: server live and ready", h.is_server_live() and h.is_server_ready())
    check("http: model metadata", h.get_model_metadata(model)["name"] == model)
    config = h.get_model_config(model)
    check("http: model config has max_batch_size", config["max_batch_size"] > 0)
    before = h.get_inference_statistics(model)["model_stats"][0]
    for binary in (False, True):
        inp = httpclient.InferInput("features", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=binary)
        out = httpclient.InferRequestedOutput("probability", binary_data=binary)
        res = h.infer(model, [inp], outputs=[out])
        check(f"http infer (binary={binary}): 2 rows answered", res.as_numpy("probability").shape == (2, 1))
    inp = httpclient.InferInput("features", list(bad.shape), "FP32")
    inp.set_data_from_numpy(bad, binary_data=True)
    e = refused(lambda: h.infer(model, [inp]))
    check("http binary NaN refused: " + str(e), e is not None and "element 107 (NaN)" in str(e))
    e = refused(lambda: h.infer("no-such-model", [inp]))
    check("http unknown model refused as not found: " + str(e), e is not None and "not loaded" in str(e))

    g = grpcclient.InferenceServerClient(grpc_url)
    check("grpc: server live and ready", g.is_server_live() and g.is_server_ready())
    check("grpc: model metadata", g.get_model_metadata(model).name == model)
    inp = grpcclient.InferInput("features", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    res = g.infer(model, [inp])
    check("grpc infer (raw_input_contents): 2 rows answered", res.as_numpy("probability").shape == (2, 1))
    binp = grpcclient.InferInput("features", list(bad.shape), "FP32")
    binp.set_data_from_numpy(bad)
    e = refused(lambda: g.infer(model, [binp]))
    check("grpc raw NaN refused: " + str(e), e is not None and "INVALID_ARGUMENT" in str(e.status()) and "element 107 (NaN)" in str(e))
    e = refused(lambda: g.infer("no-such-model", []))
    check("grpc unknown model with no inputs is NOT_FOUND: " + str(e.status() if e else None), e is not None and "NOT_FOUND" in str(e.status()))

    after = h.get_inference_statistics(model)["model_stats"][0]
    check("http stats: compute counts equal (perf_analyzer's check)", compute_counts_equal(after))
    grown = after["inference_stats"]["queue"]["count"] - before["inference_stats"]["queue"]["count"]
    check(f"http stats: queue count grew by the 3 requests answered ({grown})", grown == 3)
    check("http stats: inference_count counts rows", after["inference_count"] - before["inference_count"] == 6)
    gstats = g.get_inference_statistics(model, as_json=True)["model_stats"][0]
    gs = gstats["inference_stats"]
    check("grpc stats: compute counts equal", int(gs["compute_input"]["count"]) == int(gs["compute_infer"]["count"]) == int(gs["compute_output"]["count"]))
    print("all checks passed")


main()
