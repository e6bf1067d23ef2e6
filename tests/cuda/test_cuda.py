"""CUDA kernels against the CPU kernels, gradcheck through the CUDA path, and AlexNet on "cuda".

Runs under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``; tests/test_cuda_simulator.py
starts it in its own process) and unchanged on a real GPU (``pytest tests/cuda``), where
copies of host arrays into kernels are turned into errors.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
from minicnn import device, models, nn
from minicnn.kernels import backends
from minicnn.kernels.cuda.launch import SIMULATED
from minicnn.kernels.cpu import activation, batchnorm, conv, dropout, linear, lrn, pool, softmax
from minicnn.kernels.reference import lrn as ref_lrn
from tests.helpers import conv_term_scales, pool_windows, rel_error
from tests.strategies import distinct, normal, seeds

F = mc.functional
GPU = backends.get("cuda")
few = settings(max_examples=4 if SIMULATED else 30, deadline=None)


# On a real GPU, a host array passed to a kernel would be copied silently, with only this warning:
# make it an error.
pytestmark = pytest.mark.filterwarnings("error:Host array used in CUDA kernel")


def up(a):
    return device.to_device(a)


def down(a):
    return device.to_host(a)


def close(gpu_array, cpu_array, tol=1e-5, scale=0.0):
    assert rel_error(down(gpu_array), cpu_array, scale) < tol


@st.composite
def tiny_conv(draw):
    groups = draw(st.sampled_from([1, 2]))
    k = draw(st.integers(1, 3))
    padding = draw(st.integers(0, 1))
    stride = draw(st.integers(1, 2))
    h = draw(st.integers(max(1, k - 2 * padding), 6))
    return {"x": (draw(st.integers(1, 2)), groups * draw(st.integers(1, 2)), h, draw(st.integers(max(1, k - 2 * padding), 6))),
            "k": (groups * draw(st.integers(1, 2)), k), "stride": (stride, stride),
            "padding": ((padding, padding), (padding, padding)), "groups": groups}


@few
@given(case=tiny_conv(), seed=seeds)
def test_conv_matches_cpu(case, seed):
    x = normal(seed, case["x"], np.float32)
    w = normal(seed + 1, (case["k"][0], case["x"][1] // case["groups"], case["k"][1], case["k"][1]), np.float32)
    b = normal(seed + 2, (case["k"][0],), np.float32)
    args = (case["stride"], case["padding"], case["groups"])
    y = conv.conv2d_forward(x, w, b, *args)
    grad_y = normal(seed + 3, y.shape, np.float32)
    y_scale, *scales = conv_term_scales(x, w, b, grad_y, args)  # sums that cancel round on their terms' scale
    close(GPU.conv.conv2d_forward(up(x), up(w), up(b), *args), y, scale=y_scale)
    for got, want, scale in zip(GPU.conv.conv2d_backward(up(x), up(w), up(grad_y), *args),
                                conv.conv2d_backward(x, w, grad_y, *args), scales):
        close(got, want, scale=scale)


@pytest.mark.parametrize("x_shape, k, stride, padding, groups", [
    ((1, 2, 9, 10), 3, (3, 2), ((1, 0), (0, 2)), 2),  # conv1's kind: stride > 1, padding only on some sides
    ((2, 3, 5, 4), 2, (1, 1), ((1, 1), (1, 0)), 1),
    ((1, 1, 2, 4), 1, (3, 2), ((0, 0), (0, 0)), 1),  # phases with no window entry (their dx is 0) and no input
])
def test_conv_with_uneven_strides_and_padding_matches_cpu(x_shape, k, stride, padding, groups):
    """The index tables of the implicit GEMM's loaders (one per shape, kept) and the input gradient's
    stride phases against the CPU, on the cases a square symmetric draw misses; run twice, the
    second from the kept tables."""
    x = normal(0, x_shape, np.float32)
    w = normal(1, (2 * groups, x_shape[1] // groups, k, k), np.float32)
    b = normal(2, (2 * groups,), np.float32)
    y = conv.conv2d_forward(x, w, b, stride, padding, groups)
    grad_y = normal(3, y.shape, np.float32)
    want = conv.conv2d_backward(x, w, grad_y, stride, padding, groups)
    for _ in range(2):
        close(GPU.conv.conv2d_forward(up(x), up(w), up(b), stride, padding, groups), y)
        for got, expected in zip(GPU.conv.conv2d_backward(up(x), up(w), up(grad_y), stride, padding, groups), want):
            close(got, expected)


@few
@given(seed=seeds, shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(3, 7), st.integers(3, 7)),
       kernel=st.sampled_from([((3, 3), (2, 2), (0, 0)), ((2, 2), (2, 2), (0, 0)), ((3, 3), (1, 1), (1, 1))]))
def test_max_pool_matches_cpu_with_ties(seed, shape, kernel):
    x = np.round(normal(seed, shape, np.float32) * 2)  # many ties
    x[np.random.default_rng(seed).random(shape) < 0.1] = np.nan  # the first NaN wins its window
    y, argmax = pool.max_pool2d_forward(x, *kernel)
    gy, garg = GPU.pool.max_pool2d_forward(up(x), *kernel)
    np.testing.assert_array_equal(down(gy), y)
    np.testing.assert_array_equal(down(garg), argmax)
    grad_y = normal(seed + 1, y.shape, np.float32)
    np.testing.assert_array_equal(down(GPU.pool.max_pool2d_backward(up(grad_y), garg, x.shape, *kernel)),
                                  pool.max_pool2d_backward(grad_y, argmax, x.shape, *kernel))


@few
@given(seed=seeds, shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(3, 7), st.integers(3, 7)),
       pooling=st.sampled_from([("avg", ((3, 3), (2, 2), (1, 1))), ("avg", ((2, 3), (1, 2), (0, 1))),
                                ("adaptive", (3, 2)), ("adaptive", (5, 8))]))
def test_avg_pool_matches_cpu(seed, shape, pooling):
    """Average pooling's windows overlap here (stride < kernel, adaptive sizes that do not divide),
    so the GPU's gather backward meets several windows per input."""
    kind, args = pooling
    x = normal(seed, shape, np.float32)
    if kind == "avg":
        rows, cols = pool_windows(F.avg_pool2d, x, *args)
    else:
        rows, cols = pool_windows(F.adaptive_avg_pool2d, x, args)
    y = pool.avg_pool2d_forward(x, rows, cols)
    close(GPU.pool.avg_pool2d_forward(up(x), rows, cols), y)
    grad_y = normal(seed + 1, y.shape, np.float32)
    close(GPU.pool.avg_pool2d_backward(up(grad_y), x.shape, rows, cols), pool.avg_pool2d_backward(grad_y, x.shape, rows, cols))


@few
@given(seed=seeds, size=st.sampled_from([3, 5]), beta=st.sampled_from([0.75, 0.5]))
def test_lrn_matches_cpu(seed, size, beta):
    x = normal(seed, (2, 7, 3, 2), np.float32, scale=3)
    y, saved = lrn.lrn_forward(x, size, 0.01, beta, 2.0)  # the CPU saves nothing
    gy_, gsaved = GPU.lrn.lrn_forward(up(x), size, 0.01, beta, 2.0)  # the GPU saves (y, scale)
    close(gy_, y)
    close(gsaved[1], ref_lrn.lrn_forward(x, size, 0.01, beta, 2.0)[1][1])
    grad_y = normal(seed + 1, x.shape, np.float32)
    close(GPU.lrn.lrn_backward(up(x), gsaved, up(grad_y), size, 0.01, beta, 2.0),
          lrn.lrn_backward(x, saved, grad_y, size, 0.01, beta, 2.0),
          scale=float(np.abs(grad_y).max()) * 2.0 ** -beta)  # its two terms' scale (tests/kernels/test_lrn.py)


def test_window_kernels_cut_an_array_past_their_32_bit_indices_into_launches(monkeypatch):
    """Pooling, LRN and batch norm's element-wise passes index in 32-bit unsigned integers, so an array of more than
    launch.MAX_INDEXED elements goes in several launches along the batch: made here to cut after
    every image, each op launches once per image, and gives the CPU's results (max pooling's
    winners bit for bit)."""
    from minicnn.kernels.cuda import launch

    x = normal(0, (3, 4, 7, 6), np.float32, scale=3)
    monkeypatch.setattr(launch, "MAX_INDEXED", 4 * 7 * 6)
    window = ((3, 3), (2, 2), (1, 1))
    rows, cols = pool_windows(F.avg_pool2d, x, *window)
    y, argmax = pool.max_pool2d_forward(x, *window)
    grad_y = normal(1, y.shape, np.float32)
    grad_x = normal(2, x.shape, np.float32)
    before = launch.launches
    gy, garg = GPU.pool.max_pool2d_forward(up(x), *window)
    assert launch.launches - before == 3
    np.testing.assert_array_equal(down(gy), y)
    np.testing.assert_array_equal(down(garg), argmax)
    np.testing.assert_array_equal(down(GPU.pool.max_pool2d_backward(up(grad_y), garg, x.shape, *window)),
                                  pool.max_pool2d_backward(grad_y, argmax, x.shape, *window))
    close(GPU.pool.avg_pool2d_forward(up(x), rows, cols), pool.avg_pool2d_forward(x, rows, cols))
    close(GPU.pool.avg_pool2d_backward(up(grad_y), x.shape, rows, cols), pool.avg_pool2d_backward(grad_y, x.shape, rows, cols))
    y_lrn, saved = lrn.lrn_forward(x, 3, 0.01, 0.75, 2.0)
    before = launch.launches
    g_lrn, g_saved = GPU.lrn.lrn_forward(up(x), 3, 0.01, 0.75, 2.0)
    assert launch.launches - before == 3
    close(g_lrn, y_lrn)
    close(GPU.lrn.lrn_backward(up(x), g_saved, up(grad_x), 3, 0.01, 0.75, 2.0),
          lrn.lrn_backward(x, saved, grad_x, 3, 0.01, 0.75, 2.0))
    w, b = normal(3, (4,), np.float32) + 1, normal(4, (4,), np.float32)
    y_bn, mean, var = batchnorm.batch_norm_train_forward(x, w, b, 1e-5)
    before = launch.launches
    g_bn, g_mean, g_var = GPU.batchnorm.batch_norm_train_forward(up(x), up(w), up(b), 1e-5)
    assert launch.launches - before == 1 + 1 + 3  # the statistics, 1/sqrt(var + eps), then an image a launch
    close(g_bn, y_bn, 1e-4)
    for got, want in zip(GPU.batchnorm.batch_norm_backward(up(x), g_mean, g_var, up(w), up(grad_x), 1e-5, True),
                         batchnorm.batch_norm_backward(x, mean, var, w, grad_x, 1e-5, True)):
        close(got, want, 1e-4)
    monkeypatch.setattr(launch, "MAX_INDEXED", 4 * 7 * 6 - 1)  # not even one image fits a launch
    with pytest.raises(ValueError, match="max_pool2d: one item of 168 elements is more than the 167"):
        GPU.pool.max_pool2d_forward(up(x), *window)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activations_match_cpu(name):
    x = normal(0, (3, 50), np.float32, scale=4)
    y = getattr(activation, f"{name}_forward")(x)
    gy_ = getattr(GPU.activation, f"{name}_forward")(up(x))
    close(gy_, y)
    grad_y = normal(1, x.shape, np.float32)
    saved_cpu, saved_gpu = (x, up(x)) if name == "relu" else (y, gy_)
    close(getattr(GPU.activation, f"{name}_backward")(saved_gpu, up(grad_y)),
          getattr(activation, f"{name}_backward")(saved_cpu, grad_y))


@few
@given(seed=st.integers(0, 2**64 - 1), p=st.sampled_from([0.1, 0.5, 0.9]))
def test_dropout_masks_are_identical_bit_for_bit(seed, p):
    x = normal(seed % 2**32, (4, 33), np.float32)
    np.testing.assert_array_equal(down(GPU.dropout.dropout_forward(up(x), p, seed)), dropout.dropout_forward(x, p, seed))


@pytest.mark.parametrize("n, i, o", [(3, 37, 11), (2, 300, 5)])  # the second splits its long reduction (split-K)
def test_linear_matches_cpu(n, i, o):
    x, w, b = normal(0, (n, i), np.float32), normal(1, (o, i), np.float32), normal(2, (o,), np.float32)
    close(GPU.linear.linear_forward(up(x), up(w), up(b)), linear.linear_forward(x, w, b))
    grad_y = normal(3, (n, o), np.float32)
    for got, want in zip(GPU.linear.linear_backward(up(x), up(w), up(grad_y)), linear.linear_backward(x, w, grad_y)):
        close(got, want)


@pytest.mark.parametrize("x_shape, w_shape, groups, refused", [
    ((1, 4, 30000, 20000), (2, 2, 3, 3), 2, None),  # 2 * 30000 * 20000 < 2**31: accepted
    ((1, 4, 40000, 40000), (2, 2, 3, 3), 2, r"C/G\*H\*W \(the input's channels of one group, one image\) is 3200000000; "
                                           r"the GPU kernels' index tables hold at most 2147483647"),
    ((1, 1, 1000, 1000), (3000, 1, 1, 1), 1, r"K/G\*H_out\*W_out .* is 3000000000;"),
    ((1, 1, 40000, 5), (1, 1, 32768, 1), 1, r"the kernel's height is 32768; .* at most 32767"),
])
def test_a_convolution_too_large_for_the_packed_index_tables_is_refused_by_name(x_shape, w_shape, groups, refused):
    """The window tables pack an offset into 31 bits and kernel positions into 15 (kernels/cuda/conv.py):
    a shape past that is refused before anything is computed, naming the number (checked on the
    shapes alone: such tensors would not fit this machine)."""
    from minicnn.kernels.cuda import conv as gpu_conv

    shape, _, _ = gpu_conv._geometry(x_shape, w_shape, (1, 1), ((0, 0), (0, 0)), groups)
    if refused is None:
        gpu_conv._check_packable(shape)
    else:
        with pytest.raises(ValueError, match=refused):
            gpu_conv._check_packable(shape)


@pytest.mark.parametrize("x_shape, w_shape, padding, groups", [
    ((2, 2, 5, 6), (4, 1, 3, 3), ((1, 1), (1, 1)), 2),
    ((1, 8, 5, 5), (3, 8, 3, 3), ((0, 0), (0, 0)), 1),  # few tiles, a long reduction: split-K, the ReLU after the sum
])
def test_the_relu_in_the_epilogue_gives_the_separate_ops_bits(x_shape, w_shape, padding, groups):
    """conv2d_relu_forward and linear_relu_forward (one launch each: the ReLU in the product's store)
    against the product then the ReLU kernel, bit for bit, a NaN included; and against the CPU."""
    x, w, b = normal(0, x_shape, np.float32), normal(1, w_shape, np.float32), normal(2, (w_shape[0],), np.float32)
    x[0, 0, 1, 1] = np.nan
    args = ((1, 1), padding, groups)
    fused = down(GPU.conv.conv2d_relu_forward(up(x), up(w), up(b), *args))
    np.testing.assert_array_equal(fused, down(GPU.activation.relu_forward(GPU.conv.conv2d_forward(up(x), up(w), up(b), *args))))
    assert np.isnan(fused).any() and (fused == 0).any() and not np.signbit(fused).any()
    want = conv.conv2d_relu_forward(x, w, b, *args)
    np.testing.assert_array_equal(np.isnan(fused), np.isnan(want))
    assert rel_error(np.nan_to_num(fused), np.nan_to_num(want)) < 1e-5
    fc_x, fc_w, fc_b = normal(3, (3, 300), np.float32), normal(4, (5, 300), np.float32), normal(5, (5,), np.float32)
    fused = down(GPU.linear.linear_relu_forward(up(fc_x), up(fc_w), up(fc_b)))
    np.testing.assert_array_equal(fused, down(GPU.activation.relu_forward(GPU.linear.linear_forward(up(fc_x), up(fc_w), up(fc_b)))))
    assert (fused == 0).any()
    assert rel_error(fused, linear.linear_relu_forward(fc_x, fc_w, fc_b)) < 1e-5


def test_a_sequential_on_the_gpu_launches_one_kernel_for_a_layer_and_its_relu():
    """Conv2d + ReLU and Linear + ReLU in a Sequential: one launch fewer each than run layer by
    layer, and the same output and gradients bit for bit."""
    from minicnn.kernels.cuda import launch

    mc.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 5), nn.ReLU(),
                        nn.Linear(5, 3)).to("cuda")
    x = mc.tensor(normal(1, (2, 2, 4, 4), np.float32)).to("cuda")
    net(x)  # the convolution's index tables are built by kernels at a shape's first use, then kept
    results, launches = [], []
    for run in (net, lambda h: [h := layer(h) for layer in net.children()][-1]):
        for p in net.parameters():
            p.grad = None
        before = launch.launches
        y = run(x)
        launches.append(launch.launches - before)
        F.cross_entropy(y, np.array([0, 2])).backward()
        results.append([down(y.data)] + [down(p.grad) for p in net.parameters()])
    assert launches[0] == launches[1] - 2
    for fused, separate in zip(*results):
        np.testing.assert_array_equal(fused, separate)


def test_softmax_and_cross_entropy_match_cpu():
    x = normal(0, (4, 13), np.float32, scale=5)
    labels = np.array([0, 12, 5, 5])
    close(GPU.softmax.log_softmax_forward(up(x)), softmax.log_softmax_forward(x))
    close(GPU.softmax.softmax_forward(up(x)), softmax.softmax_forward(x))
    loss, log_y = GPU.softmax.cross_entropy_forward(up(x), up(labels))
    cpu_loss, cpu_log_y = softmax.cross_entropy_forward(x, labels)
    assert rel_error(down(loss), cpu_loss) < 1e-6
    grad = GPU.softmax.cross_entropy_backward(log_y, up(labels), up(np.array(0.5, np.float32)))
    close(grad, softmax.cross_entropy_backward(cpu_log_y, labels, np.float32(0.5)))
    grad_y = normal(1, x.shape, np.float32)
    close(GPU.softmax.softmax_backward(up(softmax.softmax_forward(x)), up(grad_y)),
          softmax.softmax_backward(softmax.softmax_forward(x), grad_y), 1e-4)
    # A confident row (the label's probability 1 - 3.7e-4): the loss and the label's gradient keep
    # their digits (log1p, expm1), as the CPU's do.
    sure, label = np.array([[-8.850088, 5.0593896, -2.8463411]], np.float32), np.array([1])
    loss, log_y = GPU.softmax.cross_entropy_forward(up(sure), up(label))
    assert rel_error(down(loss), softmax.cross_entropy_forward(sure, label)[0]) < 1e-6
    close(GPU.softmax.cross_entropy_backward(log_y, up(label), up(np.array(1.0, np.float32))),
          softmax.cross_entropy_backward(softmax.log_softmax_forward(sure), label, np.float32(1.0)))


# Each thread of a channel's sums walks (image, position) pairs (reduce.channel_walk), moving on by
# (T // L, T % L) with a carry, T the block's threads (16 under the simulator): planes of 1 value
# (L < T, several images a step), of T values (one image a step, no carry), and of more than T.
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 2, 3), (3, 3, 4, 4), (3, 3, 5, 7)])
def test_batch_norm_matches_cpu(shape):
    x = normal(0, shape, np.float32, scale=2) + 1
    w, b = normal(1, (3,), np.float32) + 1, normal(2, (3,), np.float32)
    y, mean, var = batchnorm.batch_norm_train_forward(x, w, b, 1e-5)
    g_y, g_mean, g_var = GPU.batchnorm.batch_norm_train_forward(up(x), up(w), up(b), 1e-5)
    close(g_y, y, 1e-4)
    close(g_mean, mean)
    close(g_var, var)
    grad_y = normal(3, shape, np.float32)
    for training in (True, False):
        for got, want in zip(GPU.batchnorm.batch_norm_backward(up(x), g_mean, g_var, up(w), up(grad_y), 1e-5, training),
                             batchnorm.batch_norm_backward(x, mean, var, w, grad_y, 1e-5, training)):
            close(got, want, 1e-4)


def gpu_tensor(array, requires_grad=True):
    return mc.tensor(array, requires_grad=requires_grad).to("cuda")


@pytest.mark.parametrize("op", ["conv", "pool", "avg_pool", "lrn", "linear_ce", "batch_norm", "dropout_relu"])
def test_gradcheck_through_the_cuda_path(op):
    if op == "conv":
        x, w = gpu_tensor(normal(0, (1, 2, 5, 5))), gpu_tensor(normal(1, (2, 1, 3, 3)))  # stride 2: 4 phases
        result = mc.gradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1, groups=2), [x, w], max_coords=8)
    elif op == "pool":
        x = gpu_tensor(distinct(0, (1, 2, 5, 5)))
        result = mc.gradcheck(lambda x: F.max_pool2d(x, 3, 2), [x], max_coords=10)
    elif op == "avg_pool":
        x = gpu_tensor(normal(0, (1, 2, 5, 5)))
        result = mc.gradcheck(lambda x: F.adaptive_avg_pool2d(F.avg_pool2d(x, 3, 1, 1), 3), [x], max_coords=10)
    elif op == "lrn":
        x = gpu_tensor(normal(0, (1, 4, 2, 2)))
        result = mc.gradcheck(lambda x: F.local_response_norm(x, 3, 0.1, 0.75, 1.0), [x], max_coords=8)
    elif op == "linear_ce":
        x, w = gpu_tensor(normal(0, (3, 4))), gpu_tensor(normal(1, (5, 4)))
        result = mc.gradcheck(lambda x, w: F.cross_entropy(F.linear(x, w), np.array([0, 4, 2])), [x, w], max_coords=8)
    elif op == "batch_norm":
        x = gpu_tensor(normal(0, (4, 3)))
        result = mc.gradcheck(lambda x: F.batch_norm(x, None, None, training=True), [x], max_coords=12)
    else:
        x = gpu_tensor(normal(0, (3, 7)) + 0.05)
        result = mc.gradcheck(lambda x: F.dropout(F.relu(x), 0.4, True, 11), [x], max_coords=10)
    assert result.ok, result.report()


def small_net(seed=0):
    """alexnet_small, narrowed under the simulator (whose threads are Python threads)."""
    width = 0.125 if SIMULATED else 1.0
    return models.alexnet_small(num_classes=3, input_size=15, width=width, seed=seed).train()


def test_alexnet_small_step_gives_the_same_loss_and_gradients_on_both_devices():
    x = normal(0, (1, 3, 15, 15), np.float32)
    labels = np.array([2])
    cpu_net, gpu_net = small_net(), small_net().to("cuda")
    cpu_loss = F.cross_entropy(cpu_net(mc.tensor(x)), labels)
    cpu_loss.backward()

    gpu_x = mc.tensor(x).to("cuda")
    before = dict(device.transfers)
    gpu_loss = F.cross_entropy(gpu_net(gpu_x), labels)
    gpu_loss.backward()
    moved = {k: device.transfers[k] - before[k] for k in before}
    assert moved == {"to_device": 1, "to_host": 0}  # the labels go up; nothing else crosses

    assert abs(gpu_loss.item() - cpu_loss.item()) < 1e-5 * abs(cpu_loss.item())
    for (name, p_cpu), (_, p_gpu) in zip(cpu_net.named_parameters(), gpu_net.named_parameters()):
        assert p_gpu.grad is not None and device.is_device_array(p_gpu.grad), name
        assert rel_error(down(p_gpu.grad), p_cpu.grad) < 1e-4, name


def test_device_moves_and_errors():
    assert mc.cuda.is_available()
    t = mc.tensor(np.ones((2, 3), np.float32))
    g = t.to("cuda")
    assert g.device == "cuda" and "cuda array" in repr(g)
    np.testing.assert_array_equal(g.cpu().numpy(), t.numpy())
    with pytest.raises(mc.ArgumentError, match="different devices"):
        F.linear(g, mc.tensor(np.ones((4, 3), np.float32)))
    with pytest.raises(mc.ArgumentError, match="runs on the CPU only"):
        g @ g.T
    with pytest.raises(mc.ArgumentError, match="different devices"):
        g + mc.tensor(np.ones((2, 3), np.float32))
    with pytest.raises(mc.ArgumentError, match="a host array of shape"):
        g * np.ones(3, np.float32)
    one = mc.tensor(np.float32(2.0))  # a one-element CPU tensor goes with either side, as in PyTorch
    np.testing.assert_array_equal((one * g).numpy(), (g * one).numpy())
    assert (one * g).device == "cuda"
    with pytest.raises(mc.ArgumentError, match="device must be 'cpu' or 'cuda'"):
        t.to("tpu")
    net = nn.Linear(3, 2).to("cuda")
    assert all(p.device == "cuda" for p in net.parameters())
    state = net.state_dict()
    assert isinstance(state["weight"], np.ndarray)
    net.load_state_dict(state)
    assert net.weight.device == "cuda"


ARITHMETIC = {
    "add, broadcast": (lambda a, b: a + b, [(2, 3), (3,)]),
    "sub, both broadcast": (lambda a, b: a - b, [(2, 1, 3), (4, 1)]),
    "mul": (lambda a, b: a * b, [(2, 3), (2, 3)]),
    "div": (lambda a, b: a / b, [(3, 2), (1, 2)]),
    "neg and host numbers": (lambda a: 1 - (-a * 2 + 1) / 4, [(2, 3)]),
    "a one-element host array adds axes": (lambda a: a * np.ones((1, 1, 1), np.float32), [(3,)]),
    "square": (lambda a: a ** 2, [(5,)]),
    "cube": (lambda a: a ** 3, [(2, 2)]),
    "sum of squares": (lambda a: (a * a).sum(), [(3, 4)]),
    "sum over dim": (lambda a: a.sum(dim=1), [(2, 3, 2)]),
    "mean, keepdim": (lambda a: a.mean(dim=(0, 2), keepdim=True), [(2, 3, 2)]),
}


@pytest.mark.parametrize("name", ARITHMETIC)
def test_tensor_arithmetic_on_the_gpu_matches_the_cpu(name):
    """+ - * / ** sum mean of tensors on "cuda" (kernels/cuda/elementwise.py): values and gradients
    as on the CPU, and a Python number in the expression is never copied to the device."""
    f, shapes = ARITHMETIC[name]
    values = [normal(i, s, np.float32) + 2 * i for i, s in enumerate(shapes)]  # divisors away from 0
    on_cpu = [mc.tensor(v, requires_grad=True) for v in values]
    on_gpu = [mc.tensor(v, requires_grad=True).to("cuda") for v in values]
    before = dict(device.transfers)
    out_gpu = f(*on_gpu)
    out_gpu.sum().backward()
    assert device.transfers == before and out_gpu.device == "cuda"
    out_cpu = f(*on_cpu)
    out_cpu.sum().backward()
    assert out_gpu.shape == out_cpu.shape
    np.testing.assert_allclose(out_gpu.numpy(), out_cpu.numpy(), rtol=1e-5, atol=1e-6)
    for t_cpu, t_gpu in zip(on_cpu, on_gpu):
        np.testing.assert_allclose(down(t_gpu.grad), t_cpu.grad, rtol=1e-5, atol=1e-6)


def test_the_square_is_exact_and_sums_are_the_same_every_run():
    x = normal(0, (3, 50), np.float32)
    gx = up(x)
    np.testing.assert_array_equal(down(GPU.arrays.power(gx, 2)), x * x)
    sums = [down(GPU.arrays.sum(gx, (1,), False)) for _ in range(2)]
    np.testing.assert_array_equal(sums[0], sums[1])
    assert rel_error(sums[0], x.astype(np.float64).sum(axis=1)) < 1e-6


@pytest.mark.parametrize("shape, axes, keepdims, simulated_pieces", [
    ((3, 1000), (0, 1), False, 8),  # 3000 elements: 47 pieces of 64, at most 8 blocks
    ((3, 1000), (1,), True, 2),  # 3 outputs of 1000: 8 // 3 blocks each
    ((4, 2, 300), (0, 2), False, 4),
    ((5, 7), (0, 1), False, 1),  # 35 elements: one piece, one kernel
])
def test_long_sums_are_cut_into_pieces_over_blocks_and_stay_exact_and_repeatable(shape, axes, keepdims,
                                                                                  simulated_pieces):
    """A long sum with few outputs (a weight penalty's full sum) runs as pieces over many blocks, their
    float64 sums added in order by a second kernel (kernels/cuda/elementwise.py): close to the float64
    sum, the same on every run. (Pieces of 64 elements under the simulator, of 65,536 on a GPU, where
    these sums are one piece.)"""
    from minicnn.kernels.cuda import elementwise, launch

    x = normal(7, shape, np.float32) + 0.25
    outputs = int(np.prod([n for d, n in enumerate(shape) if d not in axes]))
    pieces = elementwise.sum_pieces(outputs, x.size // outputs)
    assert pieces == (simulated_pieces if SIMULATED else 1)
    before = launch.launches
    sums = [down(GPU.arrays.sum(up(x), axes, keepdims)) for _ in range(2)]
    assert launch.launches - before == 2 * (2 if pieces > 1 else 1)  # the pieces' kernel, then their sum
    np.testing.assert_array_equal(sums[0], sums[1])
    want = x.astype(np.float64).sum(axis=axes, keepdims=keepdims)
    assert sums[0].shape == want.shape and rel_error(sums[0], want) < 1e-6


def test_a_model_with_its_own_weight_penalty_trains_on_the_gpu(tmp_path, monkeypatch):
    """alexnet_bn's training path on "cuda": batch norm, and the L2 term (its ``regularization_loss``,
    ``(p * p).sum()`` per weight) added to the loss, give the CPU's losses. The network is alexnet_bn's
    kind of layers at a size the simulator runs (a ``Network`` with weight_decay, as alexnet_bn is; the
    optimiser's own weight decay off, as alexnet_bn has it)."""
    import io

    from minicnn.apps import train
    from minicnn.data import ShapesDataset
    from minicnn.models.alexnet import Network

    def tiny_bn(config, num_classes):
        mc.manual_seed(config.seed)
        layers = [("conv1", nn.Conv2d(3, 2, 3, stride=2)), ("relu1", nn.ReLU()), ("bn1", nn.BatchNorm2d(2)),
                  ("pool1", nn.MaxPool2d(3, 2)), ("flatten", nn.Flatten()), ("fc", nn.Linear(2 * 3 * 3, num_classes))]
        return Network("alexnet_bn", layers, (3, 15, 15), weight_decay=0.01)

    monkeypatch.setattr(train, "build_model", tiny_bn)
    data = (ShapesDataset(2, 17, seed=0, num_classes=2), ShapesDataset(2, 17, seed=1, num_classes=2))
    losses = {}
    for dev in ("cpu", "cuda"):
        config = train.TrainConfig(train_size=2, val_size=2, image_size=17, batch_size=2, epochs=2, weight_decay=0.0,
                                   device=dev)
        trainer = train.Trainer(config, tmp_path / dev, io.StringIO(), data)
        assert trainer.run() == "done"
        losses[dev] = [h["train_loss"] for h in trainer.history]
    assert losses["cpu"][1] != losses["cpu"][0]  # it learned something: the second epoch is another loss
    np.testing.assert_allclose(losses["cuda"], losses["cpu"], rtol=1e-4)


def test_sgd_kernel_matches_cpu():
    from minicnn.kernels.cpu import sgd

    p, g, v = (normal(i, (5, 9), np.float32) for i in range(3))
    gp, gv = up(p), up(v)
    GPU.sgd.sgd_step(gp, up(g), gv, 0.01, 0.9, 5e-4)
    sgd.sgd_step(p, g, v, 0.01, 0.9, 5e-4)
    close(gp, p, 1e-6)
    close(gv, v, 1e-6)


def test_sgd_group_step_is_each_parameters_step_bit_for_bit():
    """The one-launch update of a group (kernels/cuda/sgd.py: tensors of several sizes and two dtypes,
    more than one launch's worth) gives what one launch per parameter gives."""
    shapes = [(3,), (2, 5), (7,), (6, 9)] * 5  # 20 tensors: two launches of float32; 54 elements: blocks stride
    one_by_one, grouped = [], []
    for i, shape in enumerate(shapes + [(4, 3)]):
        dtype = np.float64 if i == len(shapes) else np.float32
        p, g, v = (normal(10 * i + j, shape, dtype) for j in range(3))
        one_by_one.append([up(p), up(g), up(v)])
        grouped.append([up(p), up(g), up(v)])
    for p, g, v in one_by_one:
        GPU.sgd.sgd_step(p, g, v, 0.01, 0.9, 5e-4)
    GPU.sgd.sgd_group_step(*[[t[k] for t in grouped] for k in range(3)], 0.01, 0.9, 5e-4)
    for (p1, _, v1), (p2, _, v2) in zip(one_by_one, grouped):
        np.testing.assert_array_equal(down(p1), down(p2))
        np.testing.assert_array_equal(down(v1), down(v2))


def test_a_group_launch_has_no_more_blocks_a_row_than_the_gpu_holds():
    """AlexNet's 16 parameters on an H100 (132 SMs, 8 blocks of 256 threads each): 1,056 blocks a row,
    where a row had up to 65,535 (a million blocks for the 16 rows, 85% of them idle)."""
    # (under the simulator a grid has at most 4 blocks of 8 threads: launch.MAX_BLOCKS)
    assert GPU.sgd.group_blocks(9216 * 4096, 132 * 8) == (4 if SIMULATED else 1056)  # fc6's weight: its blocks stride
    assert GPU.sgd.group_blocks(4096, 132 * 8) == (4 if SIMULATED else 16)  # a bias: the blocks it needs
    assert GPU.sgd.group_blocks(10**9, 10**6) == (4 if SIMULATED else 65535)  # the grid's limit
    assert GPU.sgd.group_blocks(9216 * 4096, 2) == 2


def test_optimiser_updates_parameters_on_the_device():
    x, labels = normal(0, (4, 20), np.float32), np.array([1, 0, 2, 1])
    results = []
    for dev in ("cpu", "cuda"):
        mc.manual_seed(5)
        net = nn.Sequential(("fc1", nn.Linear(20, 8)), ("relu", nn.ReLU()), ("fc2", nn.Linear(8, 3))).to(dev)
        opt = mc.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        inputs = mc.tensor(x).to(dev)
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(net(inputs), labels).backward()
            before = dict(device.transfers)
            opt.step()
            assert device.transfers == before  # the update itself moves nothing
        results.append([p.numpy() for p in net.parameters()])
    for cpu_param, gpu_param in zip(*results):
        assert rel_error(gpu_param, cpu_param) < 1e-5


def test_adam_kernel_matches_cpu():
    from minicnn.kernels.cpu import adam

    p, g, m = (normal(i, (4, 7), np.float32) for i in range(3))
    v = np.abs(normal(3, (4, 7), np.float32))
    gp, gm, gv = up(p), up(m), up(v)
    args = (1e-3, 0.9, 0.999, 1e-8, 1e-4, 1 - 0.9 ** 2, 1 - 0.999 ** 2)
    GPU.adam.adam_step(gp, up(g), gm, gv, *args)
    adam.adam_step(p, g, m, v, *args)
    for got, want in ((gp, p), (gm, m), (gv, v)):
        close(got, want, 1e-6)


def test_training_on_the_gpu_follows_the_cpu(tmp_path):
    """``minicnn train --device cuda``: one step and a validation pass give the CPU's losses, and
    the GPU run's checkpoint resumes on the CPU. (One image per batch: the simulator is slow.)"""
    import dataclasses
    import io

    from minicnn.data import ShapesDataset
    from minicnn.apps.train import TrainConfig, Trainer, open_checkpoint

    data = (ShapesDataset(1, 17, seed=0, num_classes=3), ShapesDataset(1, 17, seed=1, num_classes=3))
    histories = {}
    for dev in ("cpu", "cuda"):
        config = TrainConfig(train_size=1, val_size=1, image_size=17, width=0.125 if SIMULATED else 1.0,
                             batch_size=1, epochs=1, device=dev)
        trainer = Trainer(config, tmp_path / dev, io.StringIO(), data)
        assert trainer.run() == "done"
        histories[dev] = trainer.history[0]
    for key in ("train_loss", "val_loss"):
        assert abs(histories["cpu"][key] - histories["cuda"][key]) < 1e-4 * abs(histories["cpu"][key]), key
    arrays, meta, config = open_checkpoint(tmp_path / "cuda" / "last.ckpt")
    on_cpu = Trainer(dataclasses.replace(config, device="cpu", epochs=2), tmp_path / "resumed", io.StringIO(), data)
    on_cpu.restore(arrays, meta)
    assert on_cpu.run() == "done" and len(on_cpu.history) == 2


def test_bench_times_a_gpu_op_here_too():
    """minicnn bench's timer on "cuda": CUDA events on a GPU, the wall clock under the simulator
    (which has no event times)."""
    from minicnn.apps.bench import _Timer

    x = up(normal(0, (2, 3, 4, 4), np.float32))
    seconds, first = _Timer("cuda", 2)(lambda: GPU.activation.relu_forward(x))
    assert seconds > 0 and first > 0
