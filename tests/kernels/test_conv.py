"""conv2d: CPU kernel vs reference, gradcheck, PyTorch parity."""
import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minicnn as mc
from minicnn.functional import conv2d_padding
from minicnn.errors import ArgumentError
from minicnn.kernels.cpu import conv as cpu
from minicnn.kernels.cpu import workspace
from minicnn.kernels.cpu.conv import im2col, spectral, winograd
from minicnn.kernels.reference import conv as ref
from tests.helpers import conv_term_scales, rel_error, tolerance
from tests.strategies import FLOAT_DTYPES, conv_cases, normal, seeds

F = mc.functional


def _arrays(case, seed, dtype):
    x = normal(seed, case["x_shape"], dtype)
    w = normal(seed + 1, case["w_shape"], dtype)
    b = normal(seed + 2, case["w_shape"][:1], dtype) if case["bias"] else None
    return x, w, b


def _assert_matches(got, want, scale, dtype):
    assert got.dtype == dtype and got.shape == want.shape
    assert rel_error(got, want, scale=scale) < tolerance(dtype)


@given(case=conv_cases(), seed=seeds, dtype=FLOAT_DTYPES)
def test_cpu_matches_reference(case, seed, dtype):
    x, w, b = _arrays(case, seed, dtype)
    padding = conv2d_padding(case["padding"], x.shape[2:], w.shape[2:], case["stride"])
    args = (case["stride"], padding, case["groups"])
    y = cpu.conv2d_forward(x, w, b, *args)
    grad_y = normal(seed + 3, y.shape, dtype)
    results = [y, *cpu.conv2d_backward(x, w, grad_y, *args)]
    expected = [ref.conv2d_forward(x, w, b, *args), *ref.conv2d_backward(x, w, grad_y, *args)]
    for got, want, scale in zip(results, expected, conv_term_scales(x, w, b, grad_y, args)):
        _assert_matches(got, want, scale, dtype)


@given(case=conv_cases(max_size=7), seed=seeds)
def test_gradcheck(case, seed):
    x, w, b = (None if a is None else mc.tensor(a, requires_grad=True) for a in _arrays(case, seed, np.float64))
    kwargs = {k: case[k] for k in ("stride", "padding", "groups")}
    inputs = [x, w] + ([b] if b is not None else [])
    mc.gradcheck(lambda x, w, *b: F.conv2d(x, w, *b, **kwargs), inputs)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, groups", [
    ((1, 3, 23, 23), (2, 3, 11, 11), 4, 0, 1),  # conv1's 11x11 kernel at stride 4
    ((2, 4, 7, 7), (4, 2, 5, 5), 1, 2, 2),  # conv2's two groups, 5x5 pad 2
    ((1, 4, 5, 5), (6, 2, 3, 3), 1, 1, 2),  # conv4/conv5: 3x3 pad 1, groups 2
])
def test_gradcheck_alexnet_settings(x_shape, w_shape, stride, padding, groups):
    x = mc.tensor(normal(0, x_shape), requires_grad=True)
    w = mc.tensor(normal(1, w_shape), requires_grad=True)
    b = mc.tensor(normal(2, w_shape[:1]), requires_grad=True)
    result = mc.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding, groups), [x, w, b], max_coords=200)
    assert result.ok and result.checked > 200


@given(case=conv_cases(), seed=seeds)
def test_matches_torch(torch, case, seed):
    x, w, b = _arrays(case, seed, np.float32)
    kwargs = {k: case[k] for k in ("stride", "padding", "groups")}
    tx = torch.tensor(x, requires_grad=True)
    torch_in, torch_kwargs = tx, kwargs
    if kwargs["padding"] == "same" and kwargs["stride"] != (1, 1):
        # PyTorch refuses "same" with stride > 1; pad explicitly with the TensorFlow rule instead.
        (top, bottom), (left, right) = conv2d_padding("same", x.shape[2:], w.shape[2:], kwargs["stride"])
        torch_in = torch.nn.functional.pad(tx, (left, right, top, bottom))
        torch_kwargs = dict(kwargs, padding=0)
    tw = torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    ty = torch.nn.functional.conv2d(torch_in, tw, tb, **torch_kwargs)

    mx, mw = mc.tensor(x, requires_grad=True), mc.tensor(w, requires_grad=True)
    mb = None if b is None else mc.tensor(b, requires_grad=True)
    y = F.conv2d(mx, mw, mb, **kwargs)
    grad_y = normal(seed + 5, y.shape, np.float32)
    ty.backward(torch.tensor(grad_y))
    y.backward(grad_y)
    padding = conv2d_padding(case["padding"], x.shape[2:], w.shape[2:], case["stride"])
    scales = conv_term_scales(x, w, b, grad_y, (case["stride"], padding, case["groups"]))
    pairs = [(y.data, ty), (mx.grad, tx.grad), (mw.grad, tw.grad)] + ([(mb.grad, tb.grad)] if b is not None else [])
    for (ours, theirs), scale in zip(pairs, scales):
        assert rel_error(ours, theirs.detach().numpy(), scale=scale) < 1e-4


def test_same_padding_keeps_the_size_at_stride_1():
    x = mc.tensor(normal(0, (1, 2, 7, 6), np.float32))
    for k in (1, 2, 3, 4, 5):
        w = mc.tensor(normal(1, (3, 2, k, k), np.float32))
        assert F.conv2d(x, w, padding="same").shape == (1, 3, 7, 6)
    w = mc.tensor(normal(1, (3, 2, 11, 11), np.float32))
    assert F.conv2d(mc.tensor(normal(0, (1, 2, 227, 227), np.float32)), w, stride=4, padding="same").shape == (1, 3, 57, 57)


def test_input_gradient_is_skipped_when_not_needed():
    x = mc.tensor(normal(0, (1, 2, 5, 5), np.float32))
    w = mc.tensor(normal(1, (3, 2, 3, 3), np.float32), requires_grad=True)
    F.conv2d(x, w).sum().backward()
    assert x.grad is None and w.grad.shape == (3, 2, 3, 3)


def _matches_reference_with(module, setting, value, x, w, b, args, seed, algorithm="auto"):
    """Run the CPU kernel with ``module.setting = value`` (and ``algorithm``) and compare all its
    results with the reference."""
    saved = getattr(module, setting)
    setattr(module, setting, value)
    try:
        with cpu.use_algorithm(algorithm):
            y = cpu.conv2d_forward(x, w, b, *args)
            grad_y = normal(seed + 3, y.shape, x.dtype)
            grads = cpu.conv2d_backward(x, w, grad_y, *args)
    finally:
        setattr(module, setting, saved)
    expected = [ref.conv2d_forward(x, w, b, *args), *ref.conv2d_backward(x, w, grad_y, *args)]
    for got, want, scale in zip([y, *grads], expected, conv_term_scales(x, w, b, grad_y, args)):
        _assert_matches(got, want, scale, x.dtype)


@given(case=conv_cases(), seed=seeds, setting=st.sampled_from([("MAX_COLS_BYTES", 1), ("RUNS_PER_CORE", 1000),
                                                               ("RUNS_PER_CORE", 1)]))
def test_bands_and_runs_match_reference(case, seed, setting):
    """The kernel hands out images (and groups) to threads, cuts images into bands of output rows
    where its matrix would be large (``MAX_COLS_BYTES``: 1 byte makes every output row a band, in
    the forward and dL/dw), and sums dL/dw over runs of tasks (``RUNS_PER_CORE``: a run per task,
    so that most runs miss a group, or one run): each must give the reference's answer."""
    x, w, b = _arrays(case, seed, np.float64)
    x = np.concatenate([x, 0.5 * x[::-1], -x])  # 3 to 6 images
    padding = conv2d_padding(case["padding"], x.shape[2:], w.shape[2:], case["stride"])
    _matches_reference_with(im2col, *setting, x, w, b, (case["stride"], padding, case["groups"]), seed,
                            algorithm="im2col")


def test_im2col_gives_the_same_bits_on_any_number_of_threads(monkeypatch):
    """Which thread runs which image, and how many threads there are, changes no bit: forward,
    dL/dx, dL/dw and dL/db (sums over fixed runs of images), the strided and the wide forms."""
    for shape, w_shape, stride, padding, groups in [((9, 3, 31, 31), (8, 3, 11, 11), (4, 4), ((0, 0), (0, 0)), 1),
                                                   ((5, 4, 9, 9), (6, 2, 5, 5), (1, 1), ((2, 2), (2, 2)), 2),
                                                   ((1, 3, 15, 15), (4, 3, 3, 3), (2, 2), ((1, 1), (1, 1)), 1)]:
        x, w, b = normal(0, shape, np.float32), normal(1, w_shape, np.float32), normal(2, (w_shape[0],), np.float32)
        results = []
        for threads in (1, 2, 3):
            monkeypatch.setattr(numba, "get_num_threads", lambda threads=threads: threads)
            y = im2col.conv2d_forward(x, w, b, stride, padding, groups).copy()
            grads = im2col.conv2d_backward(x, w, normal(3, y.shape, np.float32), stride, padding, groups)
            results.append([y] + [g.copy() for g in grads])
        for other in results[1:]:
            for got, want in zip(other, results[0]):
                np.testing.assert_array_equal(got, want)


@given(case=conv_cases(kernel=(3, 3), stride=(1, 1)), seed=seeds, dtype=FLOAT_DTYPES)
def test_winograd_matches_reference(case, seed, dtype):
    """Stride-1 3x3 convolutions (AlexNet's conv3-5) take Winograd F(2x2, 3x3) for the output,
    dL/dx and dL/dw: odd and even sizes (tiles hanging over the edge), uneven padding, groups,
    blocks of one image and of the whole batch."""
    x, w, b = _arrays(case, seed, dtype)
    x = np.concatenate([x, -0.5 * x[::-1]])
    padding = conv2d_padding(case["padding"], x.shape[2:], w.shape[2:], case["stride"])
    assert winograd.applies(w.shape, case["stride"], padding)
    args = (case["stride"], padding, case["groups"])
    for block_bytes in (1, winograd.BLOCK_BYTES):
        _matches_reference_with(winograd, "BLOCK_BYTES", block_bytes, x, w, b, args, seed)


def test_winograd_entry_matrices_are_spaced_apart_and_change_nothing():
    """V, M, Z (and U, S) hold their 16 matrices ENTRY_PAD elements apart, in the scratch buffer
    itself (a view, not a copy), and the gap changes no result, bit for bit."""
    v = winograd._entries("test.entries", 6, 8, np.float32)
    assert v.strides == ((6 * 8 + winograd.ENTRY_PAD) * 4, 8 * 4, 4)
    v[:] = 7
    assert np.shares_memory(v, workspace.scratch("test.entries", (16, 6 * 8 + winograd.ENTRY_PAD), np.float32))
    x, w, b = normal(0, (3, 4, 7, 6), np.float32), normal(1, (6, 2, 3, 3), np.float32), normal(2, (6,), np.float32)
    grad_y = normal(3, (3, 6, 7, 6), np.float32)
    padding = ((1, 1), (1, 1))
    results = []
    for pad in (0, winograd.ENTRY_PAD):
        saved, winograd.ENTRY_PAD = winograd.ENTRY_PAD, pad
        try:
            results.append([winograd.conv2d_forward(x, w, b, (1, 1), padding, 2).copy(),
                            winograd.conv2d_input_grad(w, grad_y, padding, 2).copy(),
                            winograd.conv2d_weight_grad(x, grad_y, w.shape, padding, 2)[0].copy()])
        finally:
            winograd.ENTRY_PAD = saved
    for packed, spaced in zip(*results):
        np.testing.assert_array_equal(packed, spaced)


@given(case=conv_cases(kernel=(3, 3), stride=(1, 1)), seed=seeds)
def test_im2col_path_still_matches_for_3x3(case, seed):
    """With Winograd turned off, the same convolutions go through im2col and agree."""
    x, w, b = _arrays(case, seed, np.float64)
    padding = conv2d_padding(case["padding"], x.shape[2:], w.shape[2:], case["stride"])
    _matches_reference_with(im2col, "MAX_COLS_BYTES", im2col.MAX_COLS_BYTES, x, w, b,
                            (case["stride"], padding, case["groups"]), seed, algorithm="im2col")


@pytest.mark.parametrize("k, before, after", [(5, 2, 2), (5, 0, 4), (5, 4, 0), (3, 1, 2), (3, 0, 0), (2, 2, 2), (1, 2, 2)])
def test_stride_1_im2col_shares_the_padding_between_rows(k, before, after):
    """Stride 1's im2col lays the padded input out flat with rows W + max(left, right) apart
    (at least W_out, which padding wider than the kernel needs: k = 1 or 2 with pad 2)."""
    x = normal(0, (2, 3, 4, 6))
    w, b = normal(1, (4, 3, k, k)), normal(2, (4,))
    padding = ((before, after), (before, after))
    geo = im2col._Geometry(x, w.shape, (1, 1), padding, 1)
    assert geo.wide and geo.pitch == max(6 + max(before, after), geo.w_out)
    _matches_reference_with(im2col, "MAX_COLS_BYTES", im2col.MAX_COLS_BYTES, x, w, b, ((1, 1), padding, 1), seed=3,
                            algorithm="im2col")


@st.composite
def spectral_cases(draw):
    """Stride-1 convolutions that take the Fourier path: kernels of 5x5 to 6x7, at least 16
    input channels per group, any padding up to the kernel's reach, uneven too."""
    groups = draw(st.sampled_from([1, 2]))
    kh, kw = draw(st.integers(5, 6)), draw(st.integers(5, 7))
    padding = ((draw(st.integers(0, kh - 1)), draw(st.integers(0, kh - 1))),
               (draw(st.integers(0, kw - 1)), draw(st.integers(0, kw - 1))))
    h = draw(st.integers(max(1, kh - sum(padding[0])), 9))
    w = draw(st.integers(max(1, kw - sum(padding[1])), 9))
    c_g = draw(st.integers(spectral.MIN_CHANNELS, spectral.MIN_CHANNELS + 2))
    return {"x_shape": (draw(st.integers(1, 3)), c_g * groups, h, w),
            "w_shape": (draw(st.integers(1, 3)) * groups, c_g, kh, kw), "padding": padding, "groups": groups}


@pytest.fixture
def spectral_at_any_batch():
    """The Fourier path also for batches under MIN_BATCH (the tests' shapes)."""
    with cpu.use_algorithm("spectral"):
        yield


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])  # it sets the algorithm
@given(case=spectral_cases(), seed=seeds, dtype=FLOAT_DTYPES)
def test_spectral_matches_reference(spectral_at_any_batch, case, seed, dtype):
    """conv2's path (products of Fourier transforms) gives the reference's output, dL/dx, dL/dw
    and dL/db, at odd and even sizes, uneven padding and groups, and skips what is not needed."""
    x, w = normal(seed, case["x_shape"], dtype), normal(seed + 1, case["w_shape"], dtype)
    b = normal(seed + 2, case["w_shape"][:1], dtype)
    args = ((1, 1), case["padding"], case["groups"])
    assert cpu.algorithm(w.shape, *args[:2], x.shape[0]) == "spectral"
    y = cpu.conv2d_forward(x, w, b, *args)
    grad_y = normal(seed + 3, y.shape, dtype)
    y_scale, *scales = conv_term_scales(x, w, b, grad_y, args)
    _assert_matches(y, ref.conv2d_forward(x, w, b, *args), y_scale, dtype)
    wanted = ref.conv2d_backward(x, w, grad_y, *args)
    for needs in ((True, True, True), (True, False, False), (False, True, True)):
        got = cpu.conv2d_backward(x, w, grad_y, *args, needs_input_grad=needs)
        for g, want, needed, scale in zip(got, wanted, needs, scales):
            assert (g is None) == (not needed)
            if needed:
                _assert_matches(g, want, scale, dtype)


def test_spectral_gradcheck_and_conv2s_shape(spectral_at_any_batch):
    """Finite differences through the Fourier path (float64), and conv2's own shape, two groups
    of 48 channels at 27x27 with 5x5 kernels, against the im2col path in float32."""
    x = mc.tensor(normal(0, (2, 32, 6, 7)), requires_grad=True)
    w = mc.tensor(normal(1, (4, 16, 5, 5)), requires_grad=True)
    b = mc.tensor(normal(2, (4,)), requires_grad=True)
    assert cpu.algorithm(w.shape, (1, 1), ((2, 2), (2, 2)), 2) == "spectral"
    result = mc.gradcheck(lambda x, w, b: F.conv2d(x, w, b, 1, 2, 2), [x, w, b], max_coords=200)
    assert result.ok and result.checked > 200
    x, w, b = normal(3, (3, 96, 27, 27), np.float32), normal(4, (256, 48, 5, 5), np.float32, 0.05), normal(5, (256,), np.float32)
    args = ((1, 1), ((2, 2), (2, 2)), 2)
    y = cpu.conv2d_forward(x, w, b, *args).copy()
    grad_y = normal(6, y.shape, np.float32)
    grads = [g.copy() for g in cpu.conv2d_backward(x, w, grad_y, *args)]
    with cpu.use_algorithm("im2col"):
        assert cpu.algorithm(w.shape, *args[:2], 3) == "im2col"
        y_im2col = cpu.conv2d_forward(x, w, b, *args)
        grads_im2col = cpu.conv2d_backward(x, w, grad_y, *args)
    assert rel_error(y, y_im2col) < tolerance(np.float32)
    for g, want in zip(grads, grads_im2col):
        assert rel_error(g, want) < tolerance(np.float32)


@pytest.mark.parametrize("kept", ["weights", "input"])
def test_spectral_backward_reuses_the_forwards_spectra_only_while_they_are_its_arrays(kept, spectral_at_any_batch,
                                                                                       monkeypatch):
    """The backward takes the weights' and the input's spectra the forward left in scratch: the
    same bits as computing them again; and it computes one again where its array changed in
    place, another convolution's forward came between, or the scratch buffers were released."""
    arrays = {"input": normal(0, (2, 32, 7, 6), np.float32), "weights": normal(1, (4, 16, 5, 5), np.float32)}
    others = {"input": normal(3, (2, 32, 7, 6), np.float32), "weights": normal(5, (4, 16, 5, 5), np.float32)}
    b, grad_y = normal(2, (4,), np.float32), normal(4, (2, 4, 7, 6), np.float32)
    args = ((1, 1), ((2, 2), (2, 2)), 2)
    # the planes _transform is given: the weights' (k, c), the input's channel-major (c, n)
    planes = arrays["weights"].shape if kept == "weights" else (32, 2, 7, 6)
    transforms = []
    real_transform = spectral._transform
    monkeypatch.setattr(spectral, "_transform", lambda p, *a: transforms.append(p.shape) or real_transform(p, *a))

    def call(function, **changed):
        given = {**arrays, **changed}
        if function == "forward":
            return spectral.conv2d_forward(given["input"], given["weights"], b, *args)
        return [g.copy() for g in spectral.conv2d_backward(given["input"], given["weights"], grad_y, *args)]

    def transforms_in(action):
        transforms.clear()
        action()
        return transforms.count(planes)

    def same_as(fresh):
        return lambda: [np.testing.assert_array_equal(g, f) for g, f in zip(call("backward"), fresh)]

    spectral._kept_weights.forget()
    spectral._kept_input.forget()
    assert transforms_in(lambda: call("backward")) == 1  # nothing kept: computed
    fresh = call("backward")
    # the last backward's dL/dw took the weights' buffer; the input's spectrum stays where it was
    # (a forward of the same input takes it too)
    assert transforms_in(lambda: call("forward")) == (1 if kept == "weights" else 0)
    assert transforms_in(same_as(fresh)) == 0
    assert transforms_in(same_as(fresh)) == (1 if kept == "weights" else 0)

    for between in (lambda: call("forward", **{kept: others[kept]}), workspace.release):
        call("forward")
        between()
        assert transforms_in(same_as(fresh)) == 1
    call("forward")
    changed = arrays[kept].copy()
    changed.flat[0] += 1  # the same shape, other values: as if changed in place
    assert transforms_in(lambda: call("backward", **{kept: changed})) == 1


@pytest.mark.parametrize("w_shape, stride, batch, expected", [
    ((4, 16, 5, 5), (1, 1), 8, True),
    ((4, 48, 5, 5), (1, 1), 64, True),  # conv2
    ((4, 48, 5, 5), (1, 1), 16, True),
    ((4, 48, 5, 5), (1, 1), 7, False),  # under MIN_BATCH: im2col's large products win
    ((4, 15, 5, 5), (1, 1), 64, False),  # too few channels: the transforms would cost more than they save
    ((4, 16, 5, 5), (2, 2), 64, False),
    ((4, 16, 3, 3), (1, 1), 64, False),  # Winograd's
    ((4, 16, 5, 4), (1, 1), 64, False),
])
def test_spectral_applies_to_stride_1_kernels_of_5x5_and_more(w_shape, stride, batch, expected):
    assert spectral.applies(w_shape, stride, batch) is expected


# AlexNet's five convolutions (the 2012 paper's shapes, batch 2 and 8) and which algorithm the
# default choice gives each: the same on any machine and thread count.
ALEXNET_CONVS = {  # name: (x_shape without the batch, w_shape, stride, pad, groups)
    "conv1": ((3, 227, 227), (96, 3, 11, 11), 4, 0, 1),
    "conv2": ((96, 27, 27), (256, 48, 5, 5), 1, 2, 2),
    "conv3": ((256, 13, 13), (384, 256, 3, 3), 1, 1, 1),
    "conv4": ((384, 13, 13), (384, 192, 3, 3), 1, 1, 2),
    "conv5": ((384, 13, 13), (256, 192, 3, 3), 1, 1, 2),
}


@pytest.mark.parametrize("batch, expected", [
    (2, {"conv1": "im2col", "conv2": "im2col", "conv3": "winograd", "conv4": "winograd", "conv5": "winograd"}),
    (8, {"conv1": "im2col", "conv2": "spectral", "conv3": "winograd", "conv4": "winograd", "conv5": "winograd"}),
])
def test_the_choice_depends_on_the_shapes_only(batch, expected, monkeypatch):
    for threads in (1, 2, 16):
        monkeypatch.setattr("numba.get_num_threads", lambda: threads)
        chosen = {name: cpu.algorithm(w_shape, (s, s), ((p, p), (p, p)), batch)
                  for name, (_, w_shape, s, p, _) in ALEXNET_CONVS.items()}
        assert chosen == expected


def test_the_choice_can_be_overridden():
    conv2, conv3 = ((256, 48, 5, 5), (1, 1), ((2, 2), (2, 2))), ((384, 256, 3, 3), (1, 1), ((1, 1), (1, 1)))
    conv1 = ((96, 3, 11, 11), (4, 4), ((0, 0), (0, 0)))
    with cpu.use_algorithm("im2col"):
        assert {cpu.algorithm(*c, 64) for c in (conv1, conv2, conv3)} == {"im2col"}
    with cpu.use_algorithm("spectral"):  # where it can compute, whatever the batch; im2col elsewhere
        assert [cpu.algorithm(*c, 1) for c in (conv1, conv2, conv3)] == ["im2col", "spectral", "im2col"]
    with cpu.use_algorithm("winograd"):
        assert [cpu.algorithm(*c, 64) for c in (conv1, conv2, conv3)] == ["im2col", "im2col", "winograd"]
    assert [cpu.algorithm(*c, 64) for c in (conv1, conv2, conv3)] == ["im2col", "spectral", "winograd"]
    with pytest.raises(ArgumentError, match="use_algorithm must be one of auto, im2col, winograd, spectral, got 'fft'"):
        cpu.use_algorithm("fft")


def test_a_bad_algorithm_in_the_environment_is_a_clear_error():
    import subprocess
    import sys

    env = dict(__import__("os").environ, MINICNN_CONV_ALGORITHM="fft")
    out = subprocess.run([sys.executable, "-c", "import minicnn.kernels.cpu.conv"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode != 0 and "MINICNN_CONV_ALGORITHM must be one of auto, im2col, winograd, spectral, got 'fft'" \
        in out.stderr
    env["MINICNN_CONV_ALGORITHM"] = "im2col"
    code = "from minicnn.kernels.cpu import conv; print(conv.algorithm((384, 256, 3, 3), (1, 1), ((1, 1), (1, 1)), 64))"
    chosen = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert chosen.stdout.strip() == "im2col"


@pytest.mark.parametrize("name", list(ALEXNET_CONVS))
def test_every_algorithm_matches_the_reference_at_alexnets_shapes(name):
    """Each algorithm that can compute an AlexNet layer (im2col: all; Winograd: conv3-5; Fourier:
    conv2), forward and all three gradients, against the readable reference, in float32."""
    x_shape, w_shape, s, p, groups = ALEXNET_CONVS[name]
    x = normal(0, (2, *x_shape), np.float32)
    w, b = normal(1, w_shape, np.float32, 0.05), normal(2, w_shape[:1], np.float32)
    args = ((s, s), ((p, p), (p, p)), groups)
    y_ref = ref.conv2d_forward(x, w, b, *args)
    grad_y = normal(3, y_ref.shape, np.float32)
    grads_ref = ref.conv2d_backward(x, w, grad_y, *args)
    algorithms = {"conv1": ["im2col"], "conv2": ["im2col", "spectral"]}.get(name, ["im2col", "winograd"])
    for algorithm in algorithms:
        with cpu.use_algorithm(algorithm):
            assert cpu.algorithm(w_shape, *args[:2], 2) == algorithm
            y = cpu.conv2d_forward(x, w, b, *args)
            assert rel_error(y, y_ref) < tolerance(np.float32), algorithm
            for got, want in zip(cpu.conv2d_backward(x, w, grad_y, *args), grads_ref):
                assert rel_error(got, want) < tolerance(np.float32), algorithm


@pytest.mark.parametrize("w_shape, stride, padding, expected", [
    ((4, 2, 3, 3), (1, 1), ((1, 1), (1, 1)), True),
    ((4, 2, 3, 3), (1, 1), ((0, 2), (2, 0)), True),
    ((4, 2, 3, 3), (2, 2), ((1, 1), (1, 1)), False),  # stride 2
    ((4, 2, 3, 3), (1, 1), ((3, 3), (1, 1)), False),  # padding beyond the kernel's reach
    ((4, 2, 5, 5), (1, 1), ((2, 2), (2, 2)), False),  # conv2's 5x5
    ((4, 2, 3, 1), (1, 1), ((1, 1), (0, 0)), False),
])
def test_winograd_applies_only_to_stride_1_3x3(w_shape, stride, padding, expected):
    assert winograd.applies(w_shape, stride, padding) is expected
