"""Every rung of the GEMM ladder (kernels/cuda/gemm_ladder.py) computes NumPy's product, on shapes
that fill no tile exactly (the edges are where tiled kernels go wrong)."""
import numpy as np
import pytest

from minicnn import device
from minicnn.kernels.cuda import gemm_ladder
from minicnn.kernels.cuda.launch import SIMULATED
from tests.helpers import rel_error
from tests.strategies import normal

pytestmark = pytest.mark.filterwarnings("error:Host array used in CUDA kernel")
SHAPES = [(9, 11, 7), (1, 5, 13)] if SIMULATED else [(131, 257, 67), (1, 129, 1000), (300, 3, 9)]  # M, N, K


@pytest.mark.parametrize("rung", gemm_ladder.RUNGS)
@pytest.mark.parametrize("shape", SHAPES)
def test_each_rung_computes_the_product(rung, shape):
    m, n, k = shape
    a, b = normal(1, (m, k), np.float32), normal(2, (k, n), np.float32)
    c = device.to_device(np.full((m, n), np.nan, np.float32))  # every output must be written
    gemm_ladder.RUNGS[rung][1]()(device.to_device(a), device.to_device(b), c)
    assert rel_error(device.to_host(c), a.astype(np.float64) @ b) < 1e-5


@pytest.mark.parametrize("shape", SHAPES)
def test_the_engines_thin_tiles_compute_the_product(shape):
    """gemm.THIN, the tiles a product of few rows gets (conv1's input gradient), on any shape."""
    from minicnn.kernels.cuda import gemm

    m, n, k = shape
    a, b = normal(5, (m, k), np.float32), normal(6, (k, n), np.float32)
    c = device.to_device(np.full((m, n), np.nan, np.float32))
    gemm_ladder.engine(gemm.THIN)(device.to_device(a), device.to_device(b), c)
    assert rel_error(device.to_host(c), a.astype(np.float64) @ b) < 1e-5


@pytest.mark.parametrize("staged", [False, True])
def test_eight_by_eight_outputs_a_thread_take_the_multiply_unrolled_by_hand(staged):
    """At 8 x 8 outputs a thread (engine_128 on a GPU) the multiply's loop over the slab runs four of
    its rows per trip (gemm.make_gemm's UNROLL); the simulator's own ENGINE_128 tiles are 4 x 4, so
    this builds 8 x 8 ones at 64 threads with 8-deep slabs (two trips of the loop a step, as on a GPU),
    on shapes that fill no tile and no slab."""
    from minicnn.kernels.cuda import gemm

    tiles = (8, 8, 8, 8, 8)
    product = gemm_ladder.engine(tiles, staged=staged)
    for seed, (m, n, k) in enumerate([(9, 11, 7), (70, 3, 21)]):
        a, b = normal(7 + seed, (m, k), np.float32), normal(9 + seed, (k, n), np.float32)
        c = device.to_device(np.full((m, n), np.nan, np.float32))
        product(device.to_device(a), device.to_device(b), c)
        assert rel_error(device.to_host(c), a.astype(np.float64) @ b) < 1e-5
    assert gemm.unrolled(tiles) == 4 and gemm.unrolled(gemm.SQUARE) == 1


def test_tiles_whose_threads_cannot_share_out_the_slab_by_rows_are_refused():
    """Each thread loads one row of A and one column of B at every step (gemm.make_gemm), which needs
    the block's thread count to be a multiple of the tile's sides: 2 x 2 threads for 8 x 8 tiles is not."""
    from minicnn.kernels.cuda import gemm

    product = gemm.make_gemm(gemm.load_rows, gemm.load_cols, gemm.store_plain, tiles=(2, 2, 4, 4, 4))
    with pytest.raises(ValueError, match=r"make_gemm: tiles \(2, 2, 4, 4, 4\) give 4 threads, which must be a multiple"):
        product.compiled(np.float32, (2, 2, 4, 4, 4))


def test_the_top_rung_is_the_engines_kernel():
    """The ladder ends at the product the layers run (gemm.make_gemm), not at a kernel of its own: its
    result is the linear layer's input gradient (grad_y @ w), bit for bit."""
    from minicnn.kernels.cuda import linear

    grad_y, w = normal(3, (5, 9), np.float32), normal(4, (9, 6), np.float32)
    c = device.to_device(np.zeros((5, 6), np.float32))
    gemm_ladder.RUNGS["engine"][1]()(device.to_device(grad_y), device.to_device(w), c)
    grad_x, _, _ = linear.linear_backward(device.to_device(np.zeros((5, 6), np.float32)), device.to_device(w),
                                          device.to_device(grad_y), (True, False, False))
    np.testing.assert_array_equal(device.to_host(c), device.to_host(grad_x))


def test_bench_ladder_reports_every_rung_and_fails_on_a_wrong_product(monkeypatch, capsys):
    import io

    from minicnn.apps import bench
    from minicnn.apps.cli import main

    out = io.StringIO()
    result = bench.run_ladder(size=9, repeats=1, out=out)
    table = out.getvalue()
    assert result["failed"] == [] and "all within 0.0001" in table
    assert all(f"| {rung} |" in table for rung in gemm_ladder.RUNGS)
    assert all(r["gflops"] > 0 and r["relative_error"] < 1e-5 for r in result["rungs"])

    def off_by_one(a, b, c):  # a rung that forgets the last column
        gemm_ladder.RUNGS["naive"][1]()(a, b, c)
        c[:, -1] = 0

    monkeypatch.setitem(gemm_ladder.RUNGS, "broken", ("a wrong product", lambda: off_by_one))
    with pytest.raises(SystemExit) as stop:
        main(["bench", "--ladder", "9", "--repeats", "1"])
    assert stop.value.code == 1
    assert "FAILED (error over 0.0001): broken" in capsys.readouterr().out


def test_kernel_launches_are_counted():
    """Every kernel goes through launch.jit, which counts its launches (minicnn bench reports a
    training step's): a step of a small network launches the same number each time, but for the
    first, which also fills the 4 momentum buffers with zeros."""
    import minicnn as mc
    from minicnn import nn
    from minicnn.kernels.cuda import launch

    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).to("cuda")
    opt = mc.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x = mc.tensor(normal(0, (2, 4), np.float32)).to("cuda")
    counts = []
    for _ in range(3):
        before = launch.launches
        opt.zero_grad()
        mc.functional.cross_entropy(net(x), np.array([0, 1])).backward()
        opt.step()
        counts.append(launch.launches - before)
    assert counts[1] == counts[2] == counts[0] - 4
    assert counts[1] >= 2 + 1 + 1 + 1  # at least: the forward products (the ReLU in the first), its mask, the loss, the update
    before = launch.launches
    opt.step()
    assert launch.launches - before == 1  # SGD: one launch for all 4 parameters of the group


def test_the_gpu_step_benchmark_times_counts_and_measures_a_step():
    """benchmarks/gpu_step.py's minicnn side on a network the simulator runs (the script itself asks
    for a real GPU and alexnet2012)."""
    from benchmarks.gpu_step import minicnn_step
    from minicnn import nn

    def net():
        return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))

    x, labels = normal(0, (2, 4), np.float32), np.array([0, 1])
    figures = minicnn_step(net(), x, labels, repeats=1)
    unpooled = minicnn_step(net(), x, labels, repeats=1, pooled=False)
    assert figures["seconds"] > 0 and figures["launches"] >= 2 + 1 + 1 + 1
    assert unpooled["seconds"] > 0 and unpooled["launches"] == figures["launches"]
    if SIMULATED:  # the simulator has no free-memory count (NaN), and no pool
        assert np.isnan(figures["peak_memory_bytes"]) and figures["pool_peak_bytes"] == 0
    else:
        # parameters, gradients, momentum, activations: all on the pool's blocks, and after the warm-up
        # step every block a step asks for is one an earlier array gave back
        assert figures["pool_peak_bytes"] > 4 * (4 * 3 + 3 + 3 * 2 + 2) and unpooled["peak_memory_bytes"] > 0
        assert figures["driver_allocations_per_step"] == 0
    assert figures["pooled"] and not unpooled["pooled"]
    from minicnn.kernels.cuda.memory import pool

    assert pool.enabled  # the comparison leaves the pool on


def test_the_tile_sweep_times_each_layer_at_each_candidate_and_catches_a_wrong_one(monkeypatch):
    """benchmarks/gpu_tiles.py on small layers: every product at every candidate tile shape, checked
    against the default tiles' results; the engine's own choice is back in place afterwards."""
    import io

    from benchmarks import gpu_tiles
    from minicnn.kernels.cuda import gemm

    chooser = gemm.choose_tiles
    rows, failed = gpu_tiles.sweep(batch=2, repeats=1, small=True, out=io.StringIO())
    assert failed == [] and gemm.choose_tiles is chooser
    assert [(row["layer"], row["op"]) for row in rows] == [
        (layer, op) for layer in ("conv_s4", "conv_g2", "fc_small") for op in ("forward", "backward")]
    assert all(row["faster"] in gpu_tiles.CANDIDATES and len(row["ms"]) == len(gpu_tiles.CANDIDATES) for row in rows)

    second = list(gpu_tiles.CANDIDATES.values())[1]
    real_host = gpu_tiles.host

    def wrong_at_the_second_candidate(results):  # as if those tiles dropped a product's last value
        arrays = real_host(results)
        if gemm.choose_tiles(1000, 1000, 1000) == second:
            arrays[0].reshape(-1)[-1] += 1.0
        return arrays

    monkeypatch.setattr(gpu_tiles, "host", wrong_at_the_second_candidate)
    out = io.StringIO()
    _, failed = gpu_tiles.sweep(batch=2, repeats=1, small=True, layers=["fc_small"], out=out)
    assert len(failed) == 2 and f"FAILED: fc_small forward at {gpu_tiles.tiles_name(second)}" in out.getvalue()
