"""The paper's augmentations: crops are the right slices, flips mirror, PCA shifts have the asked
statistics, ten crops are the corners, the centre and their mirrors."""
import numpy as np
import pytest

import minicnn as mc
from minicnn.data import transforms as T


def images(n=6, c=3, h=9, w=11, seed=0):
    return np.random.default_rng(seed).random((n, c, h, w)).astype(np.float32)


def test_crop_takes_the_right_slices():
    x = images()
    tops, lefts = np.array([0, 1, 2, 3, 4, 0]), np.array([5, 4, 3, 2, 1, 0])
    patches = T.crop(x, tops, lefts, 5)
    for n in range(len(x)):
        np.testing.assert_array_equal(patches[n], x[n, :, tops[n]:tops[n] + 5, lefts[n]:lefts[n] + 5])


def test_random_crop_flip_is_seeded_and_flips_about_half():
    x = images(n=400)
    a = T.random_crop_flip(x, 7, np.random.default_rng(1))
    b = T.random_crop_flip(x, 7, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (400, 3, 7, 7) and a.dtype == np.float32
    rng = np.random.default_rng(1)
    tops, lefts = rng.integers(0, 3, 400), rng.integers(0, 5, 400)
    flipped = rng.random(400) < 0.5
    plain = T.crop(x, tops, lefts, 7)
    np.testing.assert_array_equal(a[~flipped], plain[~flipped])
    np.testing.assert_array_equal(a[flipped], plain[flipped][:, :, :, ::-1])
    assert 0.4 < flipped.mean() < 0.6


def test_pca_colour_shift_statistics():
    x = images(n=2000, h=4, w=4)
    x[:, 0] *= 3  # red varies most
    values, vectors = T.pca_colour(x)
    cov = np.cov(x.transpose(1, 0, 2, 3).reshape(3, -1))
    np.testing.assert_allclose(cov @ vectors, vectors * values, atol=1e-6)
    shifted = T.pca_colour_shift(x, values, vectors, np.random.default_rng(0), std=0.1)
    offsets = (shifted - x)[:, :, 0, 0].astype(np.float64)  # the same offset at every pixel of an image
    np.testing.assert_allclose((shifted - x)[:, :, 3, 2], offsets, atol=1e-6)
    alphas = (offsets @ vectors) / values  # back in the eigenbasis: the a_i ~ N(0, 0.1) drawn per image
    assert np.all(np.abs(alphas.mean(axis=0)) < 3 * 0.1 / np.sqrt(len(x)))
    np.testing.assert_allclose(alphas.std(axis=0), 0.1, rtol=0.1)
    correlations = np.corrcoef(alphas.T)[np.triu_indices(3, 1)]
    assert np.all(np.abs(correlations) < 0.1)


def test_ten_crop_corners_centre_and_mirrors():
    x = images(n=2, h=8, w=8)
    crops = T.ten_crop(x, 5)
    assert crops.shape == (10, 2, 3, 5, 5)
    np.testing.assert_array_equal(crops[0], x[:, :, :5, :5])
    np.testing.assert_array_equal(crops[3], x[:, :, 3:, 3:])
    np.testing.assert_array_equal(crops[4], x[:, :, 1:6, 1:6])
    np.testing.assert_array_equal(crops[9], crops[4][:, :, :, ::-1])


def test_mean_subtraction():
    x = images()
    centred = T.subtract_mean(x, T.channel_mean(x))
    np.testing.assert_allclose(centred.mean(axis=(0, 2, 3)), 0, atol=1e-6)


def test_bad_input():
    with pytest.raises(mc.ShapeError, match="random_crop_flip: crop size 12 is larger than the images, 9x11"):
        T.random_crop_flip(images(), 12, np.random.default_rng(0))
    with pytest.raises(mc.ShapeError, match="ten_crop: images must be a 4-d array"):
        T.ten_crop(np.zeros((3, 8, 8)), 4)
    with pytest.raises(mc.ShapeError, match="pca_colour: images must have 3 .RGB. channels, got 1"):
        T.pca_colour(images(c=1))


def test_centre_crop_is_ten_crops_fifth_view():
    x = images(h=12, w=10)
    np.testing.assert_array_equal(T.centre_crop(x, 7), T.ten_crop(x, 7)[4])
    np.testing.assert_array_equal(T.centre_crop(x, 7), x[:, :, 2:9, 1:8])


def test_resize_centre_crop_scales_the_shorter_side_and_keeps_the_middle():
    pytest.importorskip("PIL")
    wide = np.zeros((100, 300, 3), np.uint8)  # three vertical bands: red | green | blue
    wide[:, :100, 0] = wide[:, 100:200, 1] = wide[:, 200:, 2] = 255
    out = T.resize_centre_crop(wide, 50)  # 100x300 -> 50x150 -> the middle 50 columns: all green
    assert out.shape == (3, 50, 50) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, :, 2:-2].mean(axis=(1, 2)), [0, 1, 0], atol=1e-6)
    tall = wide.transpose(1, 0, 2).copy()  # 300x100: bands become rows; the middle is green again
    np.testing.assert_allclose(T.resize_centre_crop(tall, 20)[:, 2:-2].mean(axis=(1, 2)), [0, 1, 0], atol=1e-6)
    small = np.full((10, 16, 3), 128, np.uint8)  # smaller images are scaled up
    assert T.resize_centre_crop(small, 32).shape == (3, 32, 32)
    with pytest.raises(mc.ShapeError, match=r"resize_centre_crop: an array image must be \(H, W, 3\) uint8"):
        T.resize_centre_crop(np.zeros((4, 4)), 8)


def test_pca_colour_is_the_covariance_of_all_pixels_without_a_float64_copy():
    x = np.random.default_rng(3).random((150, 3, 9, 7), dtype=np.float32)  # three blocks of 64 images
    values, vectors = T.pca_colour(x)
    expected_values, expected_vectors = np.linalg.eigh(np.cov(x.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)))
    np.testing.assert_allclose(values, expected_values, rtol=1e-9)
    np.testing.assert_allclose(np.abs(vectors), np.abs(expected_vectors), atol=1e-9)  # eigenvectors up to sign
    x[70, 1, 2, 3] = np.nan
    with pytest.raises(mc.ArgumentError, match=r"pca_colour: images 64..127 hold NaN or infinite pixel values"):
        T.pca_colour(x)


def test_a_16_bit_grey_png_keeps_its_greys(tmp_path):
    image = pytest.importorskip("PIL.Image")
    ramp = np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (32, 1))
    image.fromarray(ramp).save(tmp_path / "ramp.png")  # mode I;16
    with image.open(tmp_path / "ramp.png") as img:
        assert img.mode.startswith("I")
        square = T.resize_centre_crop(img, 16)
    assert abs(square.mean() - 0.5) < 0.02 and (square >= 0.999).mean() < 0.1  # was 98.5% clipped to white


def _steps_one_at_a_time(x, size, rng, mean, eigen, random_crop, flip):
    """The reference: the paper's steps as separate NumPy transforms (the pipeline before issue 19)."""
    if eigen is not None:
        x = T.pca_colour_shift(x, *eigen, rng)
    x = T.subtract_mean(x, mean)
    if random_crop:
        return T.random_crop_flip(x, size, rng, flip)
    patches = T.centre_crop(x, size)
    return T.random_flip(patches, rng) if flip else patches


@pytest.mark.parametrize("random_crop", [True, False])
@pytest.mark.parametrize("pca", [True, False])
@pytest.mark.parametrize("flip", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_augment_in_one_pass_equals_the_steps_bit_for_bit(random_crop, pca, flip, dtype):
    x = images(n=40, h=13, w=15).astype(dtype)
    mean = T.channel_mean(x)
    eigen = T.pca_colour(x) if pca else None
    index = np.random.default_rng(3).permutation(40)[:16]
    want = _steps_one_at_a_time(x[index], 9, np.random.default_rng(7), mean, eigen, random_crop, flip)
    got = T.augment(x, 9, np.random.default_rng(7), mean, eigen, random_crop, flip, index)
    assert got.dtype == dtype and got.shape == (16, 3, 9, 9)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(T.augment(x[index], 9, np.random.default_rng(7), mean, eigen, random_crop, flip),
                                  want)  # index=None: the whole array is the batch
    part = T.augment(x, 9, np.random.default_rng(7), mean, eigen, random_crop, flip, index, part=slice(8, 12))
    np.testing.assert_array_equal(part, want[8:12])  # a rank's share: its images' draws in the whole batch


def test_augment_refuses_bad_input():
    x = images()
    with pytest.raises(mc.ShapeError, match="augment: crop size 10 is larger than the images, 9x11"):
        T.augment(x, 10, np.random.default_rng(0), np.zeros(3))
    with pytest.raises(mc.ArgumentError, match="augment: index must be a 1-d array of image numbers below 6"):
        T.augment(x, 5, np.random.default_rng(0), np.zeros(3), index=np.array([0, 6]))
    with pytest.raises(mc.ShapeError, match="augment: the colour shift needs 3"):
        T.augment(images(c=2), 5, np.random.default_rng(0), np.zeros(2), eigen=(np.ones(3), np.eye(3)))


def test_prefetched_yields_in_order_one_ahead_and_raises_errors():
    import threading

    from minicnn.apps.train import prefetched
    threads = []

    def prepare(k):
        threads.append(threading.current_thread().name)
        if k == 3:
            raise ValueError("bad batch 3")
        return k * k

    got = []
    with pytest.raises(ValueError, match="bad batch 3"):
        for value in prefetched(prepare, range(1, 6)):
            got.append(value)
    assert got == [1, 4] and all(name.startswith("minicnn-prefetch") for name in threads)
    assert list(prefetched(lambda k: -k, [])) == []
