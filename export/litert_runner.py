"""Runs a signature of an exported `.tflite` file with the input checks of `VAE.encode`.

The LiteRT interpreter checks little: a mobile runtime trusts its caller.
What the float32 MLP encoder written by `export.tflite` does with bad input,
for a model of width W (ai-edge-litert with TensorFlow 2.21; asserted by
tests/test_properties.py), and what this runner does instead:

    input x                              LiteRT interpreter                      LiteRTRunner
    float32 (n, W), finite               z_mean, z_log_sigma (n, latent_dim)     the same
    size not a multiple of W, a scalar   RuntimeError "... failed to prepare"    ValueError naming the shape
    any other shape whose size is a      read silently as rows of W: (3, 2W)     ValueError naming the shape
      multiple of W: (n, 2W), (W,),      gives 6 rows of output
      (n, W, 1)
    (0, W) and other empty arrays        empty outputs                           ValueError
    int, float64, float16, bool          ValueError "Cannot set tensor: Got      converted to float32
                                         value of type INT64 but expected type
                                         FLOAT32 ..."
    NaN in a row                         NaN in that row's outputs; the other    ValueError naming the row
                                         rows are unaffected
    finite values too large for float32  may give inf or NaN outputs             ValueError naming the row

So an app must feed float32 rows of exactly the model's width with finite
values (raw, as the run read them: the graph preprocesses them; the file's
metadata says how); this runner is the reference of those checks for Python
callers, servers and tests. It needs no TensorFlow.
"""

import numpy as np

from export import metadata
from tfvae import _checks


class LiteRTRunner:
    """One signature of a `.tflite` file, with checked inputs and outputs.

    Float inputs go through the checks of `VAE.encode` (shape
    `(n,) + shape`, n >= 1, numeric, finite; integers become float32), the
    `labels` of a conditional model must be n integer class ids (below
    `num_classes`, read from the file's metadata), and an
    output row that is not finite raises instead of being returned.

    Args:
        path: a `.tflite` file written by `export.tflite` (float32 inputs;
            an int8-input model is refused).
        signature: the signature to run (`"encode"`, `"score"`, ...); default:
            the file's only one.

    Raises:
        TypeError: if `path` is not a path.
        FileNotFoundError: if there is no file at `path`.
        ValueError: if the file is not a LiteRT model, has no such
            signature, or has quantized (int8) inputs.

    Example:

    >>> import export
    >>> import tfvae
    >>> (x_train, _), (x_test, _) = tfvae.datasets.load("digits", scale=False)   # raw pixels 0..16
    >>> binarize = tfvae.datasets.preprocessing_for("digits", binarize=True)
    >>> model = tfvae.mlp_vae(64, (16,), 2, likelihood="bernoulli", preprocessing=binarize)   # then model.fit
    >>> report = export.tflite(model, "encoder.tflite", part="encoder")
    >>> encoder = export.LiteRTRunner("encoder.tflite")
    >>> outputs = encoder(x=x_test)
    >>> sorted(outputs), outputs["z_mean"].shape
    (['z_log_sigma', 'z_mean'], (360, 2))
    >>> encoder(x=x_test[:, :8])
    Traceback (most recent call last):
    ValueError: Received an invalid value for `x`: expected ...
    """

    def __init__(self, path, signature=None):
        from ai_edge_litert.interpreter import Interpreter

        path = _checks.existing_file("path", path, ".tflite")
        with open(path, "rb") as handle:
            content = handle.read()
        try:
            interpreter = Interpreter(model_content=content)
        except (ValueError, RuntimeError) as error:
            raise ValueError(_checks.invalid("path", "a LiteRT (.tflite) model", path, f"LiteRT: {error}")) from None
        signatures = sorted(interpreter.get_signature_list())
        if signature is None and len(signatures) == 1:
            signature = signatures[0]
        _checks.one_of("signature", signature, set(signatures))
        self.path, self.signature = path, signature
        self.metadata = metadata.from_tflite(content) or {}
        self.num_classes = self.metadata.get("model", {}).get("num_classes")
        self._runner = interpreter.get_signature_runner(signature)
        self.inputs = self._runner.get_input_details()
        for name, detail in self.inputs.items():
            if detail["quantization"][0] and name != "labels":
                raise ValueError(
                    _checks.invalid(
                        "path", "a model with float32 inputs", path,
                        f"Its input {name!r} is {np.dtype(detail['dtype']).name}: quantize it as its metadata says",
                    )
                )

    def __call__(self, **inputs):
        """Runs the signature.

        Args:
            **inputs: one array per input of the signature, e.g. `x=...`
                (and `labels=...` for a conditional model).

        Returns:
            `{output name: float32 numpy array}`.

        Raises:
            TypeError: for a non-numeric input.
            ValueError: for a missing or unknown input, a wrong shape, an
                empty batch, NaN or infinity (naming the first bad row), or
                an output row that overflows.
        """
        if set(inputs) != set(self.inputs):
            raise ValueError(
                _checks.invalid("inputs", f"exactly {sorted(self.inputs)}", sorted(inputs))
            )
        feeds = {}
        for name, detail in self.inputs.items():
            if name == "labels":
                continue
            feeds[name] = _checks.float_array(name, inputs[name], tuple(int(s) for s in detail["shape_signature"][1:]))
            if np.dtype(detail["dtype"]) == np.uint8:  # an image model's raw pixels
                if np.any((feeds[name] < 0) | (feeds[name] > 255) | (feeds[name] != np.round(feeds[name]))):
                    raise ValueError(_checks.invalid(name, "pixel values, integers 0..255", "<values outside>"))
                feeds[name] = feeds[name].astype(np.uint8)
        rows = len(next(iter(feeds.values())))
        if "labels" in self.inputs:
            labels = _checks.class_ids("labels", inputs["labels"], self.num_classes, rows, one_hot=False)
            feeds["labels"] = labels.astype(np.dtype(self.inputs["labels"]["dtype"]))
        outputs = {name: np.asarray(value, np.float32) for name, value in self._runner(**feeds).items()}
        for output_name, value in sorted(outputs.items()):
            row = _checks.first_non_finite_row(value)
            if row is not None:
                raise ValueError(_checks.overflow(next(iter(feeds)), output_name, row))
        return outputs
