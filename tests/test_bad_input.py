"""Every invalid call raises minicnn's error, naming the op, what it expected and what it got."""
import numpy as np
import pytest

import minicnn as mc

F = mc.functional


def t(*shape, dtype=np.float32):
    return mc.tensor(np.ones(shape, dtype=dtype))


x4 = t(2, 4, 8, 8)
w4 = t(6, 2, 3, 3)
logits = t(3, 5)

CASES = [
    # wrong rank
    ("conv2d rank", lambda: F.conv2d(t(4, 8, 8), w4), mc.ShapeError, r"conv2d: input must be 4-d, got 3-d"),
    ("conv2d weight rank", lambda: F.conv2d(x4, t(6, 2, 3)), mc.ShapeError, r"conv2d: weight must be 4-d"),
    ("pool rank", lambda: F.max_pool2d(t(8, 8), 2), mc.ShapeError, r"max_pool2d: input must be 4-d, got 2-d"),
    ("lrn rank", lambda: F.local_response_norm(t(2, 8)), mc.ShapeError, r"local_response_norm: input must be 4-d"),
    ("linear rank", lambda: F.linear(t(2, 3, 4), t(5, 4)), mc.ShapeError, r"linear: input must be 2-d"),
    ("softmax rank", lambda: F.softmax(t(2, 3, 4)), mc.ShapeError, r"softmax: input must be 2-d"),
    ("batch_norm rank", lambda: F.batch_norm(t(2, 3, 4), None, None, training=True), mc.ShapeError,
     r"batch_norm: input must be 2-d or 4-d, got 3-d"),
    # channels that do not match the weight
    ("conv2d channels", lambda: F.conv2d(t(16, 3, 227, 227), t(256, 48, 5, 5), groups=2), mc.ShapeError,
     r"conv2d: input has 3 channels, weight expects 96 \(48 per group x 2 groups\); "
     r"input \(16, 3, 227, 227\), weight \(256, 48, 5, 5\)"),
    ("linear features", lambda: F.linear(t(2, 3), t(5, 4)), mc.ShapeError, r"linear: input has 3 features, weight expects 4"),
    # the fused ops (what a Sequential runs for a Conv2d or Linear and its ReLU) check as the layers do
    ("conv2d_relu channels", lambda: F.conv2d_relu(t(16, 3, 227, 227), t(256, 48, 5, 5), groups=2), mc.ShapeError,
     r"conv2d: input has 3 channels, weight expects 96"),
    ("linear_relu features", lambda: F.linear_relu(t(2, 3), t(5, 4)), mc.ShapeError,
     r"linear: input has 3 features, weight expects 4"),
    ("Sequential conv and relu", lambda: mc.nn.Sequential(mc.nn.Conv2d(4, 6, 3), mc.nn.ReLU())(t(2, 3, 8, 8)),
     mc.ShapeError, r"conv2d: input has 3 channels, weight expects 4"),
    ("conv2d bias", lambda: F.conv2d(x4, w4, t(5), groups=2), mc.ShapeError, r"conv2d: bias must have shape \(6,\)"),
    ("batch_norm weight", lambda: F.batch_norm(x4, None, None, t(3), training=True), mc.ShapeError,
     r"batch_norm: weight must have shape \(4,\)"),
    # groups that do not divide the channels
    ("groups vs input", lambda: F.conv2d(t(1, 3, 8, 8), t(6, 1, 3, 3), groups=2), mc.ShapeError,
     r"conv2d: input has 3 channels, .*groups=2 does not divide the 3 input channels"),
    ("groups vs output", lambda: F.conv2d(x4, t(5, 2, 3, 3), groups=2), mc.ShapeError,
     r"conv2d: groups=2 does not divide the 5 output channels"),
    ("groups zero", lambda: F.conv2d(x4, w4, groups=0), mc.ArgumentError, r"conv2d: groups must be >= 1, got 0"),
    # kernel larger than the padded input
    ("conv2d kernel too large", lambda: F.conv2d(t(1, 1, 4, 4), t(1, 1, 11, 11), padding=2), mc.ShapeError,
     r"conv2d: kernel 11x11 is larger than the padded input 8x8"),
    ("pool kernel too large", lambda: F.max_pool2d(t(1, 1, 2, 2), 3), mc.ShapeError,
     r"max_pool2d: kernel 3x3 is larger than the padded input 2x2"),
    # stride < 1
    ("conv2d stride", lambda: F.conv2d(x4, w4, stride=0, groups=2), mc.ArgumentError, r"conv2d: stride must be >= 1, got 0"),
    ("pool stride", lambda: F.max_pool2d(x4, 3, stride=(2, -1)), mc.ArgumentError, r"max_pool2d: stride must be >= 1, got -1"),
    ("conv2d stride type", lambda: F.conv2d(x4, w4, stride=1.5, groups=2), mc.ArgumentError,
     r"conv2d: stride must be an integer, got 1.5"),
    # negative padding
    ("conv2d padding", lambda: F.conv2d(x4, w4, padding=-1, groups=2), mc.ArgumentError, r"conv2d: padding must be >= 0, got -1"),
    ("conv2d padding word", lambda: F.conv2d(x4, w4, padding="full", groups=2), mc.ArgumentError,
     r"conv2d: padding must be an int, a pair, 'same' or 'valid', got 'full'"),
    ("pool padding", lambda: F.max_pool2d(x4, 3, padding=-1), mc.ArgumentError, r"max_pool2d: padding must be >= 0"),
    ("pool padding too large", lambda: F.max_pool2d(x4, 3, padding=2), mc.ArgumentError,
     r"max_pool2d: padding must be at most half the kernel size"),
    # LRN size even or not positive
    ("lrn even size", lambda: F.local_response_norm(x4, size=4), mc.ArgumentError,
     r"local_response_norm: size must be a positive odd integer .*, got 4"),
    ("lrn zero size", lambda: F.local_response_norm(x4, size=0), mc.ArgumentError, r"local_response_norm: size must be >= 1, got 0"),
    ("lrn negative size", lambda: F.local_response_norm(x4, size=-3), mc.ArgumentError, r"local_response_norm: size must be >= 1"),
    ("lrn k", lambda: F.local_response_norm(x4, k=0.0), mc.ArgumentError, r"local_response_norm: k must be in \(0.0, inf\]"),
    # dropout p outside [0, 1)
    ("dropout p = 1", lambda: F.dropout(x4, p=1.0, seed=0), mc.ArgumentError, r"dropout: p must be in \[0.0, 1.0\), got 1.0"),
    ("dropout p < 0", lambda: F.dropout(x4, p=-0.1, seed=0), mc.ArgumentError, r"dropout: p must be in \[0.0, 1.0\), got -0.1"),
    ("dropout seed", lambda: F.dropout(x4, p=0.5, seed=-1), mc.ArgumentError, r"dropout: seed must be an integer in \[0, 2\*\*64\)"),
    ("dropout training", lambda: F.dropout(x4, 0.5, training="yes"), mc.ArgumentError, r"dropout: training must be True or False"),
    # labels out of range, of the wrong shape, not integers
    ("labels too large", lambda: F.cross_entropy(logits, np.array([0, 5, 1])), mc.ArgumentError,
     r"cross_entropy: labels must be in \[0, 5\) for 5 classes, got 5"),
    ("labels negative", lambda: F.cross_entropy(logits, np.array([0, -1, 1])), mc.ArgumentError,
     r"cross_entropy: labels must be in \[0, 5\) for 5 classes, got -1"),
    ("labels shape", lambda: F.cross_entropy(logits, np.array([[0, 1, 2]])), mc.ShapeError,
     r"cross_entropy: labels must have shape \(3,\) to match logits \(3, 5\), got \(1, 3\)"),
    ("labels length", lambda: F.cross_entropy(logits, np.array([0, 1])), mc.ShapeError, r"cross_entropy: labels must have shape \(3,\)"),
    ("labels float", lambda: F.cross_entropy(logits, np.array([0.0, 1.0, 2.0])), mc.DTypeError,
     r"cross_entropy: labels must be integers, got dtype float64"),
    # integer or mismatched dtypes
    ("integer input", lambda: F.relu(t(2, 2, dtype=np.int32)), mc.DTypeError, r"relu: input must be float32 or float64, got int32"),
    ("integer conv", lambda: F.conv2d(t(1, 1, 3, 3, dtype=np.int64), t(1, 1, 1, 1)), mc.DTypeError,
     r"conv2d: input must be float32 or float64, got int64"),
    ("mixed conv dtypes", lambda: F.conv2d(x4, t(6, 2, 3, 3, dtype=np.float64), groups=2), mc.DTypeError,
     r"conv2d: weight is float64 but input is float32"),
    ("mixed linear dtypes", lambda: F.linear(t(2, 3), t(4, 3), t(4, dtype=np.float64)), mc.DTypeError,
     r"linear: bias is float64 but input is float32"),
    ("mixed arithmetic", lambda: t(2) + t(2, dtype=np.float64), mc.DTypeError, r"add: dtypes differ, float32 and float64"),
    ("not a tensor", lambda: F.relu(np.ones(3)), mc.DTypeError, r"relu: input must be a minicnn Tensor, got ndarray"),
    ("int requires grad", lambda: mc.tensor([1, 2], requires_grad=True), mc.DTypeError,
     r"tensor: only float32/float64 tensors can require grad, got dtype int64"),
    # shapes that do not broadcast
    ("add shapes", lambda: t(2, 3) + t(4), mc.ShapeError, r"add: shapes \(2, 3\) and \(4,\) do not broadcast"),
    ("mul shapes", lambda: t(2, 3) * t(3, 2), mc.ShapeError, r"mul: shapes \(2, 3\) and \(3, 2\) do not broadcast"),
    ("matmul shapes", lambda: t(2, 3) @ t(2, 3), mc.ShapeError, r"matmul: inner sizes differ"),
    ("reshape", lambda: t(2, 3).reshape(4, 2), mc.ShapeError, r"reshape: cannot reshape \(2, 3\) \(6 elements\) into \(4, 2\)"),
    ("sum axis", lambda: t(2, 3).sum(axis=2), mc.ShapeError, r"sum: axis 2 is out of range for a 2-d tensor"),
    # other arguments
    ("softmax dim", lambda: F.softmax(logits, dim=0), mc.ArgumentError, r"softmax: dim must be 1"),
    ("batch_norm eval stats", lambda: F.batch_norm(x4, None, None), mc.ArgumentError,
     r"batch_norm: eval mode \(training=False\) needs running_mean and running_var"),
    ("batch_norm one value", lambda: F.batch_norm(t(1, 3), None, None, training=True), mc.ShapeError,
     r"batch_norm: training needs more than one value per channel"),
    ("batch_norm momentum", lambda: F.batch_norm(x4, None, None, training=True, momentum=2), mc.ArgumentError,
     r"batch_norm: momentum must be in \[0.0, 1.0\], got 2"),
    ("pow exponent", lambda: t(2) ** t(2), mc.DTypeError, r"pow: exponent must be a constant number"),
]


@pytest.mark.parametrize("call, error, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert isinstance(info.value, mc.MiniCNNError)
    assert isinstance(info.value, (ValueError, TypeError))


@pytest.mark.parametrize("make, error, message", [
    (lambda: F.conv2d(mc.tensor(np.ones((1, 1, 4, 4), np.float32)), mc.tensor(np.ones((1, 1, 3, 3), np.float32)),
                      stride=2**63), mc.ArgumentError, r"conv2d: stride must be <= 2147483647, got 9223372036854775808"),
    (lambda: F.conv2d(mc.tensor(np.ones((1, 1, 4, 4), np.float32)), mc.tensor(np.ones((1, 1, 3, 3), np.float32)),
                      padding=2**40), mc.ArgumentError, r"conv2d: padding must be <= 2147483647"),
    (lambda: F.conv2d(mc.tensor(np.ones((1, 1, 4, 4), np.float32)), mc.tensor(np.ones((1, 1, 3, 3), np.float32)),
                      padding=2**30), mc.ArgumentError, r"conv2d: the output would have shape \(1, 1, 2147483650, "
                                                         r"2147483650\), .* GiB, more than this machine's"),
    (lambda: mc.tensor([[1.0, 2.0], [3.0]]), mc.ShapeError, "tensor: nested lists must be rectangular"),
    (lambda: mc.tensor("abc"), mc.DTypeError, r"tensor: data must be numbers \(bool, integer or float\), got str"),
    (lambda: mc.tensor(None), mc.DTypeError, "got NoneType"),
    (lambda: mc.tensor({"a": 1}), mc.DTypeError, "got dict"),
    (lambda: mc.Tensor(np.array(["x"])), mc.DTypeError, "tensor: data must be numbers"),
])
def test_inputs_that_used_to_crash_or_make_object_arrays(make, error, message):
    with pytest.raises(error, match=message):
        make()
