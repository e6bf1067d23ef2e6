"""What the compiler makes of the GPU kernels, checked without a GPU (minicnn/apps/sass.py): NVIDIA's
own compiler, from pip (the ``sass`` extra, part of ``test``), turns each kernel into the machine code
an H100 runs, and these tests read it. They guard the instruction budget of the products' main loop,
which a GPU-less CI can otherwise never see: a change that brings back Numba's signed-index
wrap-around, loses the 128-bit shared loads, or spills the accumulators to local memory, fails here."""
import pytest

from minicnn.apps import sass

SYNTHETIC = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
.L_x_0:
        /*0010*/                   LDG.E R2, desc[UR4][R4.64] ;
        /*0020*/                   STS [R3], R2 ;
.L_x_1:
        /*0030*/                   LDS R6, [R3] ;
        /*0040*/                   FFMA R8, R6, R7, R8 ;
        /*0050*/                   FFMA R9, R6, R7, R9 ;
        /*0060*/              @P0 BRA `(.L_x_1) ;
        /*0070*/                   IADD3 R4, R4, 0x4, RZ ;
        /*0080*/                   FFMA R10, R6, R7, R10 ;
        /*0090*/              @!P1 BRA `(.L_x_0) ;
.L_x_2:
        /*00a0*/                   FFMA R11, R6, R7, R11 ;
        /*00b0*/                   BRA `(.L_x_2) ;
        /*00c0*/                   EXIT ;
"""


def test_loops_are_found_from_branches_back():
    found = sass.loops(SYNTHETIC)
    spans = sorted(span for span, _ in found)
    # the inner loop (LDS, FFMA, FFMA, BRA), the outer one around it, and a separate loop after both
    assert spans == [(1, 9), (3, 6), (10, 11)]
    assert dict(found)[(3, 6)] == ["LDS", "FFMA", "FFMA", "BRA"]


def test_double_precision_instructions_are_counted():
    listing = SYNTHETIC + "        /*00d0*/                   DSETP.GEU.AND P0, PT, R2, R4, PT ;\n" \
                          "        /*00e0*/                   I2F.F64.U64 R2, R6 ;\n"
    assert sass.float64_instructions(SYNTHETIC) == 0 and sass.float64_instructions(listing) == 2


def test_a_step_counts_the_inner_loop_once_per_trip():
    """9 multiply-adds per step = 1 outside the inner loop + 2 per trip, 4 trips; 8 would take 3.5
    trips, which no loop runs: refused. The loop after the main one is not nested in it and does
    not count."""
    mix = sass.main_loop_mix(SYNTHETIC, fmas_per_step=9)
    assert mix.inner_trips == 4
    # outside the inner loop: LDG, STS, IADD3, FFMA, BRA (5); inside: 4 instructions, 4 times
    assert mix.instructions == 5 + 4 * 4
    assert mix.per_step["FFMA"] == 9 and mix.per_step["LDS"] == 4
    assert mix.ffma_share == pytest.approx(9 / 21)
    with pytest.raises(ValueError, match="do not fit"):
        sass.main_loop_mix(SYNTHETIC, fmas_per_step=8)
    with pytest.raises(ValueError, match="no loop with an FFMA"):
        sass.main_loop_mix("/*0000*/ MOV R1, R2 ;", fmas_per_step=1)


@pytest.mark.parametrize("registers, threads, shared, warps", [
    (56, 256, 8192, 32),     # registers run out first: 65536 / (56 * 32) = 36 warps, 4 blocks of 8
    (32, 1024, 8192, 64),    # the SM's 64 warps
    (255, 256, 8192, 8),     # 256 registers a thread (rounded up to 8s): one block of 8 warps
    (32, 128, 100 * 1024, 8),  # shared memory: two blocks of 100 KB in 227 KB
])
def test_resident_warps_per_sm(registers, threads, shared, warps):
    assert sass.warps_per_sm(registers, threads, shared) == warps


def _compiled_cases():
    try:
        sass.tools()
    except sass.ToolsMissing as missing:
        pytest.skip(str(missing))
    return {case[0]: case[1:] for case in sass.kernel_cases()}


# (kernel, at least this share of FFMA per step of its main loop on compute capability 9.0). Measured
# 2026-12-07 with NVVM/ptxas 13.5: 66, 77, 63, 52, 57, 60, 73% (docs/gpu.md; the convolutions under their
# cap of 64 registers; without it 62, 52, 55%); before the loads' reduction
# indices were written as a first one plus constants (and engine_128's multiply unrolled by hand) 61, 70,
# 58, 53, 52, 60, 61%; with signed indices 29, 29, 23, 24, 24, 29, 29%; with unsigned indices but without
# the 128-bit shared loads 46, 56, 39, 37, 36, 45, 45%.
FLOORS = {"ladder: engine": 0.62, "ladder: engine_128": 0.73, "conv forward": 0.59, "conv weight gradient": 0.49,
          "conv input gradient": 0.54, "linear weight gradient": 0.56, "linear forward + ReLU": 0.68}


def test_the_engines_products_keep_their_accumulators_in_registers_and_their_loop_lean():
    cases = _compiled_cases()
    for name, floor in FLOORS.items():
        kernel, argtypes, fmas_per_step, threads = cases[name]
        row = sass.report(name, kernel, argtypes, fmas_per_step, threads)
        assert row["spill_bytes"] == 0 and row["stack_bytes"] == 0 and row["float64_instructions"] == 0, row
        assert row["ffma_share"] >= floor, row
        assert row["ffma_per_step"] == fmas_per_step
    # the convolutions' cap (conv._REGISTERS): 4 blocks of 256 threads per SM, not the 3 of the forward's own 72
    for name in ("conv forward", "conv forward + ReLU", "conv weight gradient", "conv input gradient"):
        kernel, argtypes, fmas_per_step, threads = cases[name]
        row = sass.report(name, kernel, argtypes, fmas_per_step, threads)
        assert row["registers"] <= 64 and row["warps_per_sm"] == 32 and row["spill_bytes"] == 0, row


def test_a_register_cap_reaches_cuda_jit_only_where_given_and_never_the_simulator(monkeypatch):
    import numpy as np

    from minicnn.kernels.cuda import conv, gemm, launch

    given = []
    monkeypatch.setattr(launch.cuda, "jit", lambda function, **options: given.append(options))
    for simulated in (False, True):
        monkeypatch.setattr(launch, "SIMULATED", simulated)
        launch.jit(lambda: None, max_registers=64)
        launch.jit(lambda: None)
    assert given == [{"max_registers": 64}, {}, {}, {}]
    monkeypatch.undo()
    assert conv._forward.compiled(np.float32, gemm.SQUARE)[0].max_registers == 64
    assert conv._forward.compiled(np.float32, gemm.WIDE)[0].max_registers is None
    assert conv._input_grad.compiled(np.float32, gemm.THIN)[0].max_registers is None


# Global loads per step and thread at 64 x 64 tiles: each thread stages 4 values of A and 4 of B a step.
# A convolution's loader reads, besides the value, only the index-table entries of the reduction index
# (the forward's B: one packed word for p, q and the offset of (c', p, q); the weight gradient's A:
# the column's grad_y offset, its B: h0, w0 and the offset of (n, i, j); the input gradient's A: the
# weight's offset, its B: one packed word for a, b, k'*H_out*W_out); the row's or column's entries
# are read once per thread, before the loop (``prepare_a`` / ``prepare_b``). Read per element, and
# unpacked, as before 2026-12-07: 32, 36 and 36.
GLOBAL_LOADS = {"conv forward": 4 * 1 + 4 * (1 + 1), "conv weight gradient": 4 * (1 + 1) + 4 * (1 + 3),
                "conv input gradient": 4 * (1 + 1) + 4 * (1 + 1), "linear weight gradient": 4 + 4}


def test_the_loaders_read_the_row_and_column_tables_once_per_thread_and_window_entries_packed():
    cases = _compiled_cases()
    for name, loads in GLOBAL_LOADS.items():
        kernel, argtypes, fmas_per_step, threads = cases[name]
        row = sass.report(name, kernel, argtypes, fmas_per_step, threads)
        assert row["global_loads_per_step"] == loads, row


def test_the_window_kernels_index_in_32_bits_and_keep_their_window_loop_short():
    """Pooling and LRN index in 32-bit unsigned integers (kernels/cuda/pool.py): with Numba's int64 they
    held 5-11 call sites each of the 64-bit division routine, 36-80 registers, and 18-29 instructions
    per global load in their window loop (2026-12-07); now none, at most 40 registers, and at most 12
    instructions per load (4.4-11.8)."""
    try:
        sass.tools()
    except sass.ToolsMissing as missing:
        pytest.skip(str(missing))
    for name, kernel, argtypes in sass.window_kernel_cases():
        row = sass.window_report(name, kernel, argtypes)
        assert row["integer_divisions_64"] == 0 and row["float64_instructions"] == 0 and row["spill_bytes"] == 0, row
        assert row["registers"] <= 40 and row["instructions_per_load"] <= 12, row


def test_64_bit_division_calls_and_the_window_loop_are_found():
    listing = SYNTHETIC + "        /*00d0*/                   CALL.REL.NOINC `($__internal_0_$__cuda_sm20_div_s64) ;\n" \
                          "        /*00e0*/                   CALL.REL.NOINC `($__internal_1_$__cuda_sm20_rem_u64) ;\n" \
                          "        /*00f0*/                   CALL.REL.NOINC `($__internal_2_$__cuda_sm20_sqrt_rn_f32_slowpath) ;\n"
    assert sass.integer_divisions_64(SYNTHETIC) == 0 and sass.integer_divisions_64(listing) == 2
    assert sass.innermost_loop(SYNTHETIC) == (9, 1)  # the outer loop: the inner one has no global load
    with pytest.raises(ValueError, match="no loop with a global load"):
        sass.innermost_loop("/*0000*/ MOV R1, R2 ;")


@pytest.mark.slow  # compiles the eighteen products and six window kernels: about 30 s
def test_gpu_sass_script_prints_every_kernel(tmp_path, capsys):
    from benchmarks import gpu_sass

    _compiled_cases()
    out_json = tmp_path / "sass.json"
    assert gpu_sass.main(["--out-json", str(out_json), "--out-md", str(tmp_path / "sass.md")]) == 0
    table = capsys.readouterr().out
    import json

    written = json.loads(out_json.read_text())
    rows, windows = written["rows"], written["window_kernels"]
    assert len(rows) == len(sass.kernel_cases()) and all(row["kernel"] in table for row in rows)
    assert len(windows) == len(sass.window_kernel_cases()) and all(row["kernel"] in table for row in windows)
    # each table's header and one line a kernel
    assert (tmp_path / "sass.md").read_text().count("\n| ") == len(rows) + 1 + len(windows) + 1
    with pytest.raises(SystemExit):
        gpu_sass.main(["--cc", "nine"])
    assert "expected a compute capability" in capsys.readouterr().err


@pytest.mark.slow  # a float32 workload under the simulator, then about fifty compiles: about a minute
def test_every_kernel_is_launched_by_the_workload_and_none_computes_in_float64_by_accident():
    """Every top-level kernel of minicnn.kernels.cuda compiles for sm_90 with the argument types the
    float32 workload gives it, without spills, and with float64 instructions only where it adds in
    float64 on purpose. Before 2026-12-07 the ReLU's and dropout's backward stores (``v if c else 0``),
    average pooling (a sum divided by an int64 count), the loss's mean and gradient (divided by the
    row count) and the running statistics' update (``1 - momentum``) computed in float64."""
    rows, not_launched = sass.every_kernel()
    assert not_launched == []
    assert {row["kernel"] for row in rows} == {name.replace("minicnn.kernels.cuda.", "")
                                              for name in sass.module_kernels()}
    for row in rows:
        assert row["spill_bytes"] == 0 and row["stack_bytes"] == 0, row
        assert row["float64_instructions"] == 0 or row["float64_allowed"], row
    fixed = {"activation:_relu_backward", "dropout:_dropout_apply", "pool:_avg_forward", "pool:_avg_backward",
             "softmax:_mean_negative_picked", "softmax:_cross_entropy_backward_rows", "batchnorm:_update_running"}
    assert all(row["float64_instructions"] == 0 for row in rows if row["kernel"] in fixed)
    assert any(row["float64_instructions"] for row in rows if row["kernel"] == "batchnorm:_stats")  # it can count
    # The kernels that split an index per element or walk a channel do it in 32 bits (kernels/cuda/pool.py,
    # reduce.py): no call to the 64-bit division routine. Before 2026-12-07: 3-15 call sites each.
    indexed_in_32_bits = {"pool:_forward", "pool:_backward", "pool:_avg_forward", "pool:_avg_backward", "lrn:_forward",
                          "lrn:_backward", "reduce:_channel_sums", "batchnorm:_stats",
                          "batchnorm:_grad_sums", "batchnorm:_normalise", "batchnorm:_train_grad_x",
                          "batchnorm:_eval_grad_x"}
    assert {row["kernel"] for row in rows if row["kernel"] in indexed_in_32_bits and row["integer_divisions_64"]} == set()
    assert any(row["integer_divisions_64"] for row in rows if row["kernel"] == "elementwise:_binary")  # it can count


def test_gpu_sass_every_kernel_fails_on_float64_where_not_allowed_and_on_a_kernel_never_launched(monkeypatch, capsys):
    from benchmarks import gpu_sass

    monkeypatch.setattr(sass, "kernel_cases", lambda: [])
    monkeypatch.setattr(sass, "window_kernel_cases", lambda: [])
    clean = {"kernel": "activation:_relu_backward", "registers": 28, "spill_bytes": 0, "stack_bytes": 0,
             "float64_instructions": 0, "float64_allowed": "", "integer_divisions_64": 1}
    for rows, not_launched, code in (([clean], [], 0), ([dict(clean, float64_instructions=10)], [], 1),
                                     ([dict(clean, float64_instructions=10, float64_allowed="on purpose")], [], 0),
                                     ([clean], ["minicnn.kernels.cuda.sgd:_sgd_step"], 1)):
        monkeypatch.setattr(sass, "every_kernel", lambda cc, rows=rows, not_launched=not_launched: (rows, not_launched))
        assert gpu_sass.main(["--every-kernel"]) == code
    err = capsys.readouterr().err
    assert "double-precision instructions in: activation:_relu_backward" in err
    assert "never launched (so not checked): minicnn.kernels.cuda.sgd:_sgd_step" in err


def test_gpu_sass_fails_on_a_window_kernel_with_a_64_bit_division(monkeypatch, capsys):
    from benchmarks import gpu_sass

    monkeypatch.setattr(sass, "kernel_cases", lambda: [])
    monkeypatch.setattr(sass, "window_kernel_cases", lambda: [("max pooling forward", None, ())])
    row = {"kernel": "max pooling forward", "registers": 32, "spill_bytes": 0, "float64_instructions": 0,
           "integer_divisions_64": 0, "window_loop_instructions": 131, "window_loop_loads": 16,
           "instructions_per_load": 131 / 16}
    for divisions, code in ((0, 0), (3, 1)):
        monkeypatch.setattr(sass, "window_report", lambda *args, divisions=divisions: dict(row, integer_divisions_64=divisions))
        assert gpu_sass.main([]) == code
    out, err = capsys.readouterr()
    assert "| max pooling forward | 32 | 0 | 0 | 3 | 131, 16 | 8.2 |" in out
    assert "64-bit integer divisions in: max pooling forward" in err


def test_the_simulator_is_refused_with_a_clear_error(monkeypatch):
    from numba import config

    monkeypatch.setattr(config, "ENABLE_CUDASIM", 1)
    with pytest.raises(sass.ToolsMissing, match="simulator"):
        sass.tools()


def test_missing_compiler_wheels_are_named_with_the_extra_that_installs_them(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(sass.ToolsMissing, match=r"ptxas is not installed; pip install -e \"\.\[sass\]\""):
        sass.tools()
