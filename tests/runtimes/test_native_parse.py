"""Reading the native tools' output: samples in the formats the real tools print, across the versions
users run, and the refusals (one line naming the line) when a line is not what the format says.

The samples reproduce the tools' formats line for line, with our own figures and ShuffleNet-like op
names: benchmark_model's from tensorflow/lite/tools/benchmark/benchmark_model.cc (the 'Inference
timings' and memory lines), tensorflow/core/util/stats_calculator.{h,cc} (Stat lines; op tables with
tab + setw columns, [start] in old builds), profile_summary_formatter.cc ('Delegate internal'), and the
logs pasted in tensorflow/tensorflow issues #42507 (TF 2.3), #26736 (2019, 'count=1 curr='), #46084,
#62775 (INFO: prefix), the TFLite benchmark README (old 'Average inference timings'), a TI board
guide (p5/median/p95 on Stat lines) and a LiteRT x86 log (space-aligned op table, XNNPACK operators as
'Delegate/<op>:<n>'); onnxruntime_perf_test's from onnxruntime/test/perftest/performance_runner.cc
(current), microsoft/onnxruntime issue #4647 (2020) and the perftest README (2019).
"""

from __future__ import annotations

import pytest

from shufflekit.runtimes import opcategories
from shufflekit.runtimes.native_parse import (
    NativeOutputError,
    categorize_op,
    parse_benchmark_model,
    parse_benchmark_model_ops,
    parse_perf_test,
    parse_perf_test_times,
    parse_run_stat,
)

TF_2_3 = """STARTING!
Log parameter values verbosely: [0]
Num threads: [4]
Graph: [/data/local/tmp/shufflenet_v2_x1_0_fp32.tflite]
Enable op profiling: [1]
#threads used for CPU inference: [4]
Loaded model /data/local/tmp/shufflenet_v2_x1_0_fp32.tflite
The input model file size (MB): 9.07716
Initialized session in 1.855ms.
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=29 first=22419 curr=16982 min=16655 max=22419 avg=17281.6 std=1106

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=59 first=17012 curr=16920 min=16601 max=18790 avg=16993.4 std=364

Inference timings in us: Init: 1855, First inference: 22419, Warmup (avg): 17281.6, Inference (avg): 16993.4
Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
Peak memory footprint (MB): init=0 overall=23.1172
Profiling Info for Benchmark Initialization:
============================== Run Order ==============================
\t             [node type]\t          [start]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t         AllocateTensors\t            0.000\t    0.473\t    0.473\t100.000%\t100.000%\t     0.000\t        1\tAllocateTensors/0

Timings (microseconds): count=1 curr=473
Memory (bytes): count=0
1 nodes observed



Operator-wise Profiling Info for Regular Benchmark Runs:
============================== Run Order ==============================
\t             [node type]\t          [start]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t                 CONV_2D\t            0.011\t    1.216\t    1.081\t  6.367%\t  6.367%\t     0.000\t        1\t[stage1/conv/Relu]:0
\t             MAX_POOL_2D\t            1.093\t    0.334\t    0.301\t  1.773%\t  8.140%\t     0.000\t        1\t[stage1/maxpool]:1
\t       DEPTHWISE_CONV_2D\t            1.395\t    0.269\t    0.242\t  1.425%\t  9.565%\t     0.000\t        1\t[stage2/0/branch1/dw]:2
\t               TRANSPOSE\t            1.638\t    0.201\t    0.188\t  1.107%\t 10.672%\t     0.000\t        1\t[stage2/0/shuffle/transpose]:3
\t           CONCATENATION\t            1.827\t    0.077\t    0.069\t  0.406%\t 11.078%\t     0.000\t        1\t[stage2/0/concat]:4
\t         FULLY_CONNECTED\t           16.711\t    0.281\t    0.270\t  1.590%\t100.000%\t     0.000\t        1\t[logits]:5

============================== Top by Computation Time ==============================
\t             [node type]\t          [start]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t                 CONV_2D\t            0.011\t    1.216\t    1.081\t  6.367%\t  6.367%\t     0.000\t        1\t[stage1/conv/Relu]:0

Number of nodes executed: 6
============================== Summary by node type ==============================
\t             [Node type]\t  [count]\t  [avg ms]\t    [avg %]\t    [cdf %]\t  [mem KB]\t[times called]
\t                 CONV_2D\t        1\t     1.081\t    50.000%\t    50.000%\t     0.000\t        1

Timings (microseconds): count=59 first=17001 curr=16908 min=16590 max=18779 avg=16981.9 std=363
Memory (bytes): count=0
6 nodes observed
"""

LITERT_SPACED = """INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Graph: [m.tflite]
INFO: Signature to run: []
INFO: Enable op profiling: [1]
INFO: Loaded model m.tflite
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
INFO: The input model file size (MB): 1.47104
INFO: Initialized session in 32.163ms.
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=1 curr=905463 p5=905463 median=905463 p95=905463
INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=50 first=900416 curr=898333 min=898007 max=906121 avg=899641 std=1549 p5=898333 median=899281 p95=904305
INFO: Inference timings in us: Init: 32163, First inference: 905463, Warmup (avg): 905463, Inference (avg): 899641
INFO: Memory footprint delta from the start of the tool (MB): init=22.0273 overall=34.8281
INFO: Overall peak memory footprint (MB) via periodic monitoring: 41.6992
INFO: Operator-wise Profiling Info for Regular Benchmark Runs:
============================== Run Order ==============================
                                     [node type]          [first]        [avg ms]            [%]          [cdf%]          [mem KB]        [times called]  [Name]
                   Convolution (NHWC, F32) IGEMM            0.398           0.407         2.658%          2.658%             0.000                1       Delegate/Convolution (NHWC, F32) IGEMM:0
                  Convolution (NHWC, F32) DWConv            0.428           0.051         4.317%          6.975%             0.000               13       Delegate/Convolution (NHWC, F32) DWConv:1
                             Transpose (ND, X32)            0.125           0.023         1.944%          8.919%             0.000               13       Delegate/Transpose (ND, X32):2
                                         SOFTMAX            0.199           0.203         1.328%         10.247%             0.000                1       [StatefulPartitionedCall:0]:57

Number of nodes executed: 4
Timings (microseconds): count=50 first=15808 curr=14892 min=14470 max=17363 avg=15309.2 std=542
Memory (bytes): count=0
4 nodes observed
"""

DELEGATE_INTERNAL = """Operator-wise Profiling Info for Regular Benchmark Runs:
============================== Run Order ==============================
\t             [node type]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t   TfLiteXNNPackDelegate\t    1.702\t    1.690\t 98.943%\t 98.943%\t     0.000\t        1\t[logits]:57
\t                 SOFTMAX\t    0.019\t    0.018\t  1.057%\t100.000%\t     0.000\t        1\t[probabilities]:58

Timings (microseconds): count=50 first=1721 curr=1706 min=1690 max=1830 avg=1708.2 std=21
Memory (bytes): count=0
2 nodes observed

Delegate internal:
============================== Run Order ==============================
\t             [node type]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\tConvolution (NHWC, F32) GEMM\t    0.030\t    0.029\t 42.000%\t 42.000%\t     0.000\t       24\tConvolution (NHWC, F32) GEMM
\t Max Pooling (NHWC, F32)\t    0.043\t    0.040\t  2.400%\t 44.400%\t     0.000\t        1\tMax Pooling (NHWC, F32)

Timings (microseconds): count=50 first=1650 curr=1661 min=1640 max=1760 avg=1662.0 std=20
Memory (bytes): count=0
2 nodes observed
"""

README_2019 = """STARTING!
Min num runs: [50]
Graph: [/data/local/tmp/mobilenet_quant_v1_224.tflite]
Loaded model /data/local/tmp/mobilenet_quant_v1_224.tflite
resolved reporter
Initialized session in 38.467ms
Running benchmark for at least 1 iterations and at least 0.5 seconds
count=7 first=127425 curr=66709 min=66709 max=127425 avg=83235 std=20944

Running benchmark for at least 50 iterations and at least 1 seconds
count=50 first=79449 curr=81350 min=77385 max=88213 avg=79760.9 std=1929

Average inference timings in us: Warmup: 83235, Init: 38467, Inference: 79760.9
"""

PERF_TEST_NOW = """Session creation time cost: 0.0842319 s
First inference time cost: 12 ms
Total inference time cost: 1.44871 s
Total inference requests: 100
Average inference time cost: 14.4871 ms
Total inference run time: 1.44916 s
Number of inferences per second: 69.0055
Avg CPU usage: 68 %
Peak working set size: 158171136 bytes
Min Latency: 0.013911 s
Max Latency: 0.019052 s
P50 Latency: 0.014321 s
P90 Latency: 0.015167 s
P95 Latency: 0.015522 s
P99 Latency: 0.019052 s
P999 Latency: 0.019052 s
"""

PERF_TEST_2020 = """Setting intra_op_num_threads to 0
Session creation time cost: 0.06094 s
Total inference time cost: 0.843236 s
Total inference requests: 10
Average inference time cost: 84.3236 ms
Total inference run time: 0.843668 s
Avg CPU usage: 96 %
Peak working set size: 96096256 bytes
"""

PERF_TEST_2019 = """Total time cost:58.8053
Total iterations:1000
Average time cost:58.8053 ms
Total run time:58.8102 s
Min Latency is 0.0559777sec
Max Latency is 0.0623472sec
P50 Latency is 0.0587108sec
P90 Latency is 0.0599845sec
P95 Latency is 0.0605676sec
P99 Latency is 0.0619517sec
P999 Latency is 0.0623472sec
"""


def test_stat_lines_of_every_shape():
    full = parse_run_stat("count=50 first=74456 curr=74516 min=73909 max=75323 avg=74481.6 std=268", 1, "")
    lat = full.latency_ms()
    assert (lat["mean_ms"], lat["min_ms"], lat["max_ms"]) == (74.4816, 73.909, 75.323)
    assert lat["p50_ms"] is None and lat["p90_ms"] is None and lat["p99_ms"] is None  # never invented
    one = parse_run_stat("count=1 curr=1058871", 1, "").latency_ms()
    assert one["mean_ms"] == one["p50_ms"] == one["p99_ms"] == one["max_ms"] == 1058.871 and one["std_ms"] == 0
    same = parse_run_stat("count=9 curr=1200(all same)", 1, "")  # every run the same: every percentile too
    assert same.all_same and same.latency_ms()["p90_ms"] == 1.2 and same.first == 1200
    assert parse_run_stat("count=0", 1, "").count == 0
    newer = parse_run_stat(
        "count=200 first=22931 curr=21788 min=19918 max=46079 avg=22493.8 std=2717 p5=20123 median=21899 p95=25453",
        1,
        "",
    ).latency_ms()
    assert (newer["p50_ms"], newer["p5_ms"], newer["p95_ms"]) == (21.899, 20.123, 25.453)


@pytest.mark.parametrize(
    "line, why",
    [
        ("count=50 first=1 curr=2 min=3 max=4 avg=fast std=1", "'fast' is not a number"),
        ("count=50 first=1 curr=2 min=3 max=4 avg=99 std=1", "min <= avg <= max does not hold"),
        ("count=50 first=1 curr=2 min=3 max=4 std=1", "no avg"),
        ("count=fifty", "'fifty' is not a number"),
        ("count=5 first=1 curr=2 min=1 max=4 avg=2 std=1 mean=2", "unknown field 'mean'"),
        ("count=50 first=1 curr=2 min=1 max=4 avg=2 std=1 (approx)", "not a statistics line"),
    ],
)
def test_a_stat_line_that_reads_wrong_is_refused_naming_it(line, why):
    with pytest.raises(NativeOutputError) as caught:
        parse_run_stat(line, 12, line)
    message = caught.value.one_line()
    assert message.startswith(f"cannot read benchmark_model's output: line 12 {line!r}") and why in message


def test_tf_2_3_output_and_its_op_table_with_the_start_column():
    out = parse_benchmark_model(TF_2_3)
    assert (out.warmup.count, out.timed.count) == (29, 59)
    assert out.timed.latency_ms()["mean_ms"] == 16.9934 and out.timed.latency_ms()["p50_ms"] is None
    assert (out.init_us, out.first_inference_us) == (1855, 22419)
    assert out.memory_delta_mb == {"init": 0, "overall": 23.1172} and out.peak_memory_mb is None
    assert out.params["Num threads"] == "4" and out.model_mb == 9.07716
    prof = parse_benchmark_model_ops(TF_2_3)
    assert [n["op_type"] for n in prof["nodes"]] == [
        "CONV_2D",
        "MAX_POOL_2D",
        "DEPTHWISE_CONV_2D",
        "TRANSPOSE",
        "CONCATENATION",
        "FULLY_CONNECTED",
    ]  # init table left out
    assert prof["nodes"][0] == {
        "name": "0:stage1/conv/Relu",
        "op_type": "CONV_2D",
        "calls": 1,
        "mean_ms": 1.081,
        "first_ms": 1.216,
        "provider": "builtin",
        "category": "conv",
    }
    assert [n["category"] for n in prof["nodes"]][2:5] == [
        "depthwise conv",
        "transpose/reshape/shuffle",
        "concat/split",
    ]
    assert prof["runs"] == 59 and prof["run_ms"] == pytest.approx(16.9819)


def test_litert_output_spaced_table_and_per_call_times():
    out = parse_benchmark_model(LITERT_SPACED)
    lat = out.timed.latency_ms()
    assert lat["p50_ms"] == 899.281 and out.peak_memory_mb == 41.6992 and out.xnnpack_created
    assert out.first_inference_us == 905463 and out.warmup.all_same
    prof = parse_benchmark_model_ops(LITERT_SPACED)
    dw = prof["nodes"][1]
    assert (
        dw["op_type"] == "Convolution (NHWC, F32) DWConv" and dw["name"] == "Delegate/Convolution (NHWC, F32) DWConv:1"
    )
    assert dw["calls"] == 13 and dw["mean_ms"] == pytest.approx(0.051 * 13)  # per call x calls per run
    assert dw["category"] == "depthwise conv" and dw["provider"] == "xnnpack"
    assert prof["nodes"][3]["name"] == "57:StatefulPartitionedCall:0" and prof["nodes"][3]["provider"] == "builtin"


def test_delegate_internal_operators_replace_the_delegate_kernel_row():
    prof = parse_benchmark_model_ops(DELEGATE_INTERNAL)
    assert [n["op_type"] for n in prof["nodes"]] == [
        "SOFTMAX",
        "Convolution (NHWC, F32) GEMM",
        "Max Pooling (NHWC, F32)",
    ]  # no time counted twice
    assert prof["nodes"][1]["mean_ms"] == pytest.approx(0.029 * 24)
    assert prof["run_ms"] == pytest.approx(1.7082)  # the model's runs, not the delegate's


def test_the_2019_readme_output():
    out = parse_benchmark_model(README_2019)
    assert out.init_us == 38467 and out.timed.latency_ms()["mean_ms"] == 79.7609
    assert out.first_inference_us == 127425  # the warm-up's first run
    assert parse_benchmark_model_ops(README_2019)["available"] is False


def test_benchmark_model_output_that_does_not_add_up_is_refused():
    with pytest.raises(NativeOutputError, match="expected one warm-up and one timed phase"):
        parse_benchmark_model(
            "Running benchmark for at least 1 iterations\ncount=3 first=1 curr=1 min=1 max=1 avg=1 std=0\n"
        )
    disagree = TF_2_3.replace("Inference (avg): 16993.4", "Inference (avg): 19993.4")
    with pytest.raises(
        NativeOutputError,
        match=r"the timed phase's avg \(16993.4\) and 'Inference \(avg\)' "
        r"\(19993.4\) disagree",
    ):
        parse_benchmark_model(disagree)
    bad_memory = TF_2_3.replace("init=0 overall=23.1172", "init=0 overall=23.1 MB")
    with pytest.raises(NativeOutputError, match="line 18 'Peak memory footprint"):
        parse_benchmark_model(bad_memory)
    bad_row = TF_2_3.replace("0.077\t    0.069", "0.077\t    n/a")
    with pytest.raises(NativeOutputError, match="CONCATENATION.*not a row of 9 columns"):
        parse_benchmark_model_ops(bad_row)


def test_perf_test_outputs_of_three_generations():
    now = parse_perf_test(PERF_TEST_NOW)
    assert (now.requests, now.mean_ms, now.session_s, now.first_ms) == (100, 14.4871, 0.0842319, 12)
    assert now.peak_bytes == 158171136 and now.cpu_percent == 68
    assert now.percentiles_s == {
        "min": 0.013911,
        "max": 0.019052,
        "p50": 0.014321,
        "p90": 0.015167,
        "p95": 0.015522,
        "p99": 0.019052,
        "p999": 0.019052,
    }
    old = parse_perf_test(PERF_TEST_2020)
    assert old.first_ms is None and old.percentiles_s == {} and old.requests == 10  # not printed: None
    oldest = parse_perf_test(PERF_TEST_2019)
    assert (oldest.requests, oldest.mean_ms, oldest.session_s) == (1000, 58.8053, None)
    assert oldest.percentiles_s["p90"] == 0.0599845


def test_perf_test_output_that_reads_wrong_is_refused():
    with pytest.raises(NativeOutputError, match=r"line 12 'P50 Latency: fast s'"):
        parse_perf_test(PERF_TEST_NOW.replace("P50 Latency: 0.014321 s", "P50 Latency: fast s"))
    with pytest.raises(NativeOutputError, match="'Total inference time cost' / requests .* disagree"):
        parse_perf_test(PERF_TEST_NOW.replace("Total inference requests: 100", "Total inference requests: 10"))
    with pytest.raises(NativeOutputError, match="onnxruntime_perf_test: Run failed"):
        parse_perf_test("Run failed:\n")
    with pytest.raises(NativeOutputError, match="printed no summary.*hello"):
        parse_perf_test("hello\n")


def test_perf_test_result_file_rows():
    rows = "model,0.0145,158171136,68,0\nmodel,0.0139,158171136,68,1\n\nMin Latency: 0.0139 s\n"
    assert parse_perf_test_times(rows) == [0.0145, 0.0139]
    with pytest.raises(
        NativeOutputError, match="cannot read onnxruntime_perf_test's result file: line 2 'model,slow,1,2,1'"
    ):
        parse_perf_test_times("model,0.0145,158171136,68,0\nmodel,slow,1,2,1\n")


@pytest.mark.parametrize(
    "op_type, category",
    [
        ("Convolution (NHWC, F32) IGEMM", opcategories.CONV),
        ("Convolution (NHWC, QC8) DWConv", opcategories.DEPTHWISE),
        ("Convolution (NHWC, F32) GEMM", opcategories.CONV),
        ("Fully Connected (NC, F32) GEMM", opcategories.FC),
        ("Max Pooling (NHWC, F32)", opcategories.POOLING),
        ("Global Average Pooling (NWC, F32)", opcategories.POOLING),
        ("Mean (ND)", opcategories.POOLING),
        ("Transpose (ND, X32)", opcategories.SHUFFLE),
        ("Copy (NC, X32)", opcategories.SHUFFLE),
        ("Slice (ND, X32)", opcategories.CONCAT_SPLIT),
        ("Constant Pad (ND, X32)", opcategories.PAD),
        ("Convert (NC, F32, QD8)", opcategories.QUANT),
        ("Binary Elementwise (ND)", opcategories.ELEMENTWISE),
        ("Add (ND, QS8)", opcategories.ELEMENTWISE),
        ("DEPTHWISE_CONV_2D", opcategories.DEPTHWISE),
        ("TfLiteXNNPackDelegate", opcategories.OTHER),
    ],
)
def test_operator_names_fall_in_the_runners_categories(op_type, category):
    assert categorize_op(op_type) == category
