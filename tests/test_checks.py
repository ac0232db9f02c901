"""tfvae._checks: the argument rules that tfvae and export share."""

import pathlib

import numpy as np
import pytest

from tfvae import _checks


def test_invalid_names_the_argument_the_expectation_and_the_value():
    assert _checks.invalid("latent_dim", "a positive integer", 0) == (
        "Received an invalid value for `latent_dim`: expected a positive integer. Received: latent_dim=0"
    )
    assert _checks.invalid("x", "finite values", np.zeros((2, 3)), "Impute them").endswith(
        "Received: x=<array of shape (2, 3) and dtype float64>. Impute them"
    )
    assert _checks.describe(np.float32(0.5)) == "0.5"
    assert _checks.describe("a" * 200).endswith("...") and len(_checks.describe("a" * 200)) == 120
    assert _checks.describe(object()) == "<builtins.object>"


def test_one_of_lists_strings_sorted_and_other_choices_in_order():
    assert _checks.one_of("part", "encoder", ("encoder", "decoder")) == "encoder"
    assert _checks.one_of("quantize", None, (None, "int8")) is None
    with pytest.raises(ValueError, match=r"`part`: expected one of \['decoder', 'encoder'\]. Received: part='both'"):
        _checks.one_of("part", "both", ("encoder", "decoder"))
    with pytest.raises(ValueError, match=r"one of \[None, 'int8'\]"):
        _checks.one_of("quantize", "None", (None, "int8"))  # the string is not None
    with pytest.raises(ValueError, match="`part`"):
        _checks.one_of("part", ["encoder"], ("encoder",))  # unhashable: an error, not a crash


@pytest.mark.parametrize(
    "value, allow_none, error, words",
    [
        (True, True, TypeError, ["None or an int", "seed=True"]),
        (1.0, True, TypeError, ["None or an int"]),
        (None, False, TypeError, ["expected an int.", "seed=None"]),
        (2**31, True, ValueError, ["[-2147483648, 2147483647]"]),
    ],
)
def test_seed_is_an_int32(value, allow_none, error, words):
    with pytest.raises(error) as raised:
        _checks.seed("seed", value, allow_none)
    for word in words:
        assert word in str(raised.value), str(raised.value)


def test_seed_accepts_ints_and_none():
    assert _checks.seed("seed", np.int64(7)) == 7 and type(_checks.seed("seed", np.int64(7))) is int
    assert _checks.seed("seed", None) is None
    assert _checks.seed("seed", -(2**31), allow_none=False) == -(2**31)


@pytest.mark.parametrize(
    "labels, expected",
    [
        ([0, 2, 1], np.array([0, 2, 1], np.int32)),
        (np.array([[0.0], [2.0], [1.0]]), np.array([0, 2, 1], np.int32)),
        (np.array([True, False, True]), np.array([1, 0, 1], np.int32)),
        (np.eye(3)[[0, 2, 1]], np.eye(3, dtype=np.float32)[[0, 2, 1]]),
        (np.array([[0.2, 0.3, 0.5]] * 3), np.array([[0.2, 0.3, 0.5]] * 3, np.float32)),  # soft rows are kept
    ],
)
def test_class_labels_accepts_ids_and_one_hot_rows(labels, expected):
    result = _checks.class_labels("labels", labels, 3, rows=3)
    assert result.dtype == expected.dtype
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize(
    "labels, num_classes, kwargs, error, words",
    [
        (None, 3, dict(hint="Pass y"), ValueError, ["`labels`", "class ids in [0, 3)", "labels=None. Pass y"]),
        ([0, 3], 3, {}, ValueError, ["row 1: 3"]),
        ([0, -1], 3, {}, ValueError, ["row 1: -1"]),
        ([0, 1.5], 3, {}, ValueError, ["row 1: 1.5"]),
        ([0, np.nan], 3, {}, ValueError, ["row 1: nan"]),
        ([0, 1], 3, dict(rows=3), ValueError, ["3 class ids", "(2,)"]),
        (np.zeros((2, 4)), 3, {}, ValueError, ["one-hot rows of width 3", "(2, 4)"]),
        (np.eye(3), 3, dict(one_hot=False), ValueError, ["integer class ids in [0, 3)", "(3, 3)"]),
        (np.array([[0.0, np.inf, 0.0]]), 3, {}, ValueError, ["row 0"]),
        (["a"], 3, {}, TypeError, ["`labels`", "<U1"]),
        ([5, 0.5], None, {}, ValueError, ["integer class ids >= 0", "row 1: 0.5"]),
    ],
)
def test_class_labels_refuses(labels, num_classes, kwargs, error, words):
    with pytest.raises(error) as raised:
        _checks.class_labels("labels", labels, num_classes, **kwargs)
    for word in words:
        assert word in str(raised.value), str(raised.value)


def test_class_ids_turns_one_hot_rows_into_ids():
    np.testing.assert_array_equal(_checks.class_ids("labels", np.eye(3)[[2, 0]], 3), [2, 0])
    assert _checks.class_ids("labels", [7], None).dtype == np.int32


def test_sample_weights():
    np.testing.assert_array_equal(_checks.sample_weights("w", [1, 0], 2), np.array([1, 0], np.float32))
    with pytest.raises(ValueError, match=r"`w`.*row 1: -1"):
        _checks.sample_weights("w", [1, -1], 2)
    with pytest.raises(ValueError, match=r"2 finite numbers >= 0.*\(3,\)"):
        _checks.sample_weights("w", [1, 1, 1], 2)


def test_float_array_names_the_first_bad_row():
    x = np.ones((4, 2))
    x[2, 1] = -np.inf
    with pytest.raises(ValueError, match=r"`x`: expected finite values.*row 2: -inf"):
        _checks.float_array("x", x, (2,))
    assert _checks.float_array("x", np.ones((3, 2), int), (2,)).dtype == np.float32
    assert _checks.first_non_finite_row(np.zeros((0, 2))) is None


def test_paths(tmp_path):
    (tmp_path / "model.keras").write_text("")
    assert _checks.existing_file("path", tmp_path / "model.keras", ".keras", require_suffix=True) == str(
        tmp_path / "model.keras"
    )
    with pytest.raises(FileNotFoundError, match=r"an existing \.keras file.*There is no such file"):
        _checks.existing_file("path", tmp_path / "other.keras", ".keras")
    with pytest.raises(ValueError, match=r"ending in \.keras"):
        _checks.existing_file("path", tmp_path / "model.h5", ".keras", require_suffix=True)
    with pytest.raises(TypeError, match="path=42"):
        _checks.existing_file("path", 42)
    assert _checks.path("path", "e.tflite", "file", ".tflite") == pathlib.Path("e.tflite")
    with pytest.raises(ValueError, match="not an existing directory"):
        _checks.path("path", tmp_path, "file")
    with pytest.raises(ValueError, match=r"ending in '\.tflite'"):
        _checks.path("path", "e.bin", "file", ".tflite")
