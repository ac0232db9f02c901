"""The metadata specification (issue 42, item 3): every exported file's metadata against the shipped schema."""

import copy

import jsonschema
import pytest

from export import metadata


def _every_metadata(folder):
    paths = sorted(folder.glob("*.tflite")) + [folder / "saved_model"]
    return {path.name: metadata.read(path) for path in paths}


def _declared(schema_node, value, where):
    """Keys of `value` that the schema node does not declare (recursing into declared objects)."""
    undeclared = []
    properties = schema_node.get("properties", {})
    for key, item in value.items():
        if key not in properties:
            undeclared.append(f"{where}.{key}")
        elif isinstance(item, dict) and properties[key].get("properties") and key != "preprocessing":
            undeclared += _declared(properties[key], item, f"{where}.{key}")
    return undeclared


def test_every_exported_files_metadata_validates_against_the_schema(tiny_export):
    _, _, folder = tiny_export
    found = _every_metadata(folder)
    assert len(found) == 8  # seven .tflite files and the SavedModel
    validator = jsonschema.Draft202012Validator(metadata.schema())
    for name, info in found.items():
        errors = [f"{list(error.path)}: {error.message}" for error in validator.iter_errors(info)]
        assert not errors, (name, errors)


def test_the_schema_declares_every_key_the_exporters_write(tiny_export):
    _, _, folder = tiny_export
    schema = metadata.schema()
    for name, info in _every_metadata(folder).items():
        assert not _declared(schema, info, name)


def test_the_schema_refuses_what_a_reader_would_misread(tiny_export):
    _, _, folder = tiny_export
    info = metadata.read(folder / "vae_int8.tflite")
    schema = metadata.schema()
    jsonschema.validate(info, schema)
    wrong = copy.deepcopy(info)
    wrong["score_thresholds"]["by_false_positive_rate"] = {"1%": 30.0, "5%": 25.0}  # rate keys are "0.01", "0.05"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, schema)
    wrong = copy.deepcopy(info)
    wrong["model"]["preprocessing"]["binarize_threshold"] = "8"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, schema)
    wrong = copy.deepcopy(info)
    wrong["format_version"] = metadata.FORMAT_VERSION + 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, schema)


def test_the_schema_is_this_format_version_and_states_its_promise():
    schema = metadata.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["format_version"]["const"] == metadata.FORMAT_VERSION
    assert "Stability promise" in schema["description"]
    binarize = schema["properties"]["model"]["properties"]["preprocessing"]["properties"]["binarize_threshold"]
    assert binarize["unit"] == "scaled"
