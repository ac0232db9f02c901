"""Property-based: random shapes, dtypes and values against encode, decode and the LiteRT encoder.

Each either returns finite numbers of the right shape or raises its documented
error; the raw LiteRT interpreter, which checks almost nothing, does exactly
what export/litert_runner.py documents, and `LiteRTRunner` holds it to the
contract of `VAE.encode`.
"""

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import export
import tfvae
from export.litert_runner import LiteRTRunner

WIDTH, LATENT = 6, 2
EXAMPLES = settings(max_examples=40, deadline=None, derandomize=True, database=None)
SPECIAL = [np.nan, np.inf, -np.inf, 1e30, -1e30, 3e38, -3e38, 1e-30, 0.0]


@st.composite
def inputs(draw, width, arrays_only=False):
    """Arrays of random dtype (floats, ints, bools, strings), rank 0-3 or (n, width), with NaN, inf, huge values."""
    if not arrays_only and draw(st.integers(0, 9)) == 0:  # nested lists, often ragged
        return draw(st.lists(st.lists(st.floats(-1, 1), max_size=width + 1), min_size=1, max_size=4))
    dtype = draw(st.sampled_from(["float32", "float32", "float32", "float64", "float16", "int32", "int64", "bool",
                                  "U3"]))
    if draw(st.booleans()):
        shape = (draw(st.integers(1, 5)), width)
    else:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=7))
    special = draw(st.booleans())  # half the arrays hold NaN, inf or huge values among ordinary ones
    elements = {
        "float32": st.one_of(st.floats(-100, 100, width=32), st.sampled_from(SPECIAL if special else [1.0])),
        "float64": st.one_of(st.floats(-100, 100), st.sampled_from(SPECIAL + [1e300] if special else [1.0])),
        "float16": st.floats(width=16, allow_nan=special, allow_infinity=special),
        "int32": st.integers(-(2**31), 2**31 - 1),
        "int64": st.integers(-(2**62), 2**62),
        "bool": st.booleans(),
        "U3": st.text("ab1", max_size=3),
    }[dtype]
    return draw(hnp.arrays(np.dtype(dtype), shape, elements=elements))


def _acceptable(x, width):
    """Whether `x` meets the documented contract: numeric, (n, width) with n >= 1, finite in float32."""
    try:
        array = np.asarray(x)
    except ValueError:  # ragged
        return False
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        return False
    if array.shape[1:] != (width,) or array.ndim != 2 or len(array) == 0:
        return False
    with np.errstate(over="ignore"):
        return bool(np.isfinite(array.astype(np.float32)).all())


def _check_contract(call, x, width, name, output_shape):
    """Runs `call(x)`; asserts finite outputs of `output_shape(n)` or the documented error."""
    try:
        outputs = call(x)
    except TypeError as error:
        event("TypeError")
        assert f"`{name}`" in str(error) and not _acceptable(x, width), str(error)
        return None
    except ValueError as error:
        message = str(error)
        assert f"`{name}`" in message, message
        overflow = "overflows float32" in message and np.abs(np.asarray(x, np.float64)).max() > 1e15
        assert overflow or not _acceptable(x, width), message
        event("ValueError (overflow)" if overflow else "ValueError")
        return None
    event("finite outputs")
    assert _acceptable(x, width), x
    for output in outputs:
        assert tuple(output.shape) == output_shape(len(x)) and np.isfinite(np.asarray(output)).all()
    return outputs


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(1)  # module-scoped: created before the per-test seeding of conftest
    return tfvae.mlp_vae(WIDTH, (4,), LATENT)


@pytest.fixture(scope="module")
def encoder_tflite(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("litert") / "encoder.tflite"
    export.tflite(model, path, part="encoder")
    return path


@EXAMPLES
@given(x=inputs(WIDTH))
def test_encode_returns_finite_posteriors_or_the_documented_error(model, x):
    _check_contract(model.encode, x, WIDTH, "x", lambda n: (n, LATENT))


@EXAMPLES
@given(z=inputs(LATENT))
def test_decode_returns_finite_means_or_the_documented_error(model, z):
    _check_contract(lambda value: [model.decode(value)], z, LATENT, "z", lambda n: (n, WIDTH))


@EXAMPLES
@given(x=inputs(WIDTH))
def test_litert_runner_keeps_the_contract_of_encode(model, encoder_tflite, x):
    runner = LiteRTRunner(encoder_tflite)
    outputs = _check_contract(lambda value: list(runner(x=value).values()), x, WIDTH, "x", lambda n: (n, LATENT))
    if outputs is not None:
        try:
            expected = model.encode(x)
        except ValueError as error:  # near float32's limit, Keras' and LiteRT's sums may overflow differently
            assert "overflows float32" in str(error) and np.abs(np.asarray(x, np.float64)).max() > 1e15
            return
        result = runner(x=x)
        np.testing.assert_allclose(result["z_mean"], expected[0], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(result["z_log_sigma"], expected[1], rtol=1e-4, atol=1e-4)


@EXAMPLES
@given(x=inputs(WIDTH, arrays_only=True))
def test_raw_litert_encoder_does_what_is_documented(model, encoder_tflite, x):
    runner = Interpreter(model_path=str(encoder_tflite)).get_signature_runner("encode")
    # The interpreter resizes its input to x's shape first (refused unless its size is a multiple of
    # the width), then copies x in (refused unless float32).
    if x.size % WIDTH or x.ndim == 0:
        event("RuntimeError")
        with pytest.raises(RuntimeError, match="failed to prepare"):
            runner(x=x)
        return
    if x.dtype != np.float32:
        event("ValueError")
        with pytest.raises(ValueError, match="Cannot set tensor: Got value of type"):
            runner(x=x)
        return
    # Any float32 array whose size is a multiple of the width is read as rows of that width.
    event("read as rows" if x.shape[1:] != (WIDTH,) else "outputs")
    outputs = runner(x=x)
    rows = x.reshape(-1, WIDTH)
    assert outputs["z_mean"].shape == outputs["z_log_sigma"].shape == (len(rows), LATENT)
    finite = np.isfinite(rows).all(axis=1) & (np.abs(rows) < 1e4).all(axis=1)
    if finite.any():  # ordinary rows agree with Keras whatever their neighbours hold
        z_mean, z_log_sigma = model.encode(rows[finite])
        np.testing.assert_allclose(outputs["z_mean"][finite], z_mean, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(outputs["z_log_sigma"][finite], z_log_sigma, rtol=1e-4, atol=1e-4)
    nan_rows = np.isnan(rows).any(axis=1)
    assert np.isnan(outputs["z_mean"][nan_rows]).all()  # NaN in gives NaN out


def test_raw_litert_encoder_reads_a_wider_array_as_more_rows(model, encoder_tflite):
    # The hazard the runner guards against: (3, 12) passes silently as 6 rows of 6.
    x = np.random.default_rng(0).random((3, 2 * WIDTH)).astype("float32")
    outputs = Interpreter(model_path=str(encoder_tflite)).get_signature_runner("encode")(x=x)
    assert outputs["z_mean"].shape == (6, LATENT)
    with pytest.raises(ValueError, match=r"`x`.*\(batch, 6\).*\(3, 12\)"):
        LiteRTRunner(encoder_tflite)(x=x)


def test_litert_runner_bad_files_and_arguments(encoder_tflite, tmp_path):
    with pytest.raises(FileNotFoundError, match="`path`"):
        LiteRTRunner(tmp_path / "missing.tflite")
    (tmp_path / "bad.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(ValueError, match=r"`path`.*LiteRT"):
        LiteRTRunner(tmp_path / "bad.tflite")
    with pytest.raises(ValueError, match=r"`signature`.*'encode'.*signature='decode'"):
        LiteRTRunner(encoder_tflite, signature="decode")
    with pytest.raises(ValueError, match=r"`inputs`.*\['x'\].*\['z'\]"):
        LiteRTRunner(encoder_tflite)(z=np.zeros((1, LATENT), "float32"))


def test_litert_runner_checks_the_labels_of_a_conditional_model(tmp_path):
    keras.utils.set_random_seed(0)
    model = tfvae.mlp_vae(WIDTH, (4,), LATENT, num_classes=3)
    x, labels = np.random.default_rng(0).random((4, WIDTH)).astype("float32"), np.array([0, 1, 2, 0])
    export.tflite(model, tmp_path / "encoder.tflite", part="encoder", parity_data=(x, labels))
    runner = LiteRTRunner(tmp_path / "encoder.tflite")
    assert runner.num_classes == 3  # from the metadata inside the file
    np.testing.assert_allclose(runner(x=x, labels=labels)["z_mean"], model.encode(x, labels)[0], atol=1e-5)
    for bad in ([0, 1, 3, 0], [0, 1, 2], [0, 1, 0.5, 0], [0, -1, 0, 0]):
        with pytest.raises(ValueError, match=r"`labels`.*4 integer class ids in \[0, 3\)"):
            runner(x=x, labels=np.array(bad))
    with pytest.raises(ValueError, match=r"`inputs`.*\['labels', 'x'\]"):
        runner(x=x)
