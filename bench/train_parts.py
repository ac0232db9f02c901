"""Times one `tfvae train` end to end and its parts; prints them as JSON.

    PYTHONPATH=<a tfvae source tree> python bench/train_parts.py OUT_DIR [train options...]

Run by bench/run.py in a child process, once with this tree and once with
the previous release's checked out elsewhere (PYTHONPATH picks which tfvae is
imported). The command is `tfvae.cli.main()` with `sys.argv` set to
`tfvae train --out OUT_DIR ...`, as the `tfvae train` command runs it (with
no argument list, `main` treats the process as the command's own); its
output goes to a file, not a terminal, so Keras' progress bar prints once per
epoch as in a log.

Parts, in seconds (wrappers around the calls both releases make):

* ``import``: `import tfvae` and its CLI and training modules (TensorFlow included), outside
  the garbage collector as today's command imports them;
* ``setup``: from the command's start to `fit` (data, model, compile, run folder);
* ``training``: `VAE.fit` (compiling, every epoch, validation, backups, history.csv);
* ``saving``: `keras.Model.save` (model.keras);
* ``plots``: the `tfvae.plot` functions (the four PNG files);
* ``evaluation``: the rest of the command (test metrics, metrics.json).

``wall`` is measured by the parent around the whole process.
"""

import contextlib
import functools
import gc
import json
import os
import sys
import time

START = time.perf_counter()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# As `tfvae train`'s own process imports: with the cyclic garbage collector off, freezing what the imports
# leave. Both trees are imported so here (the previous release's command did not do it), so that the
# parts compare the same imports; it favours the previous release, if anything.
gc.disable()
import tfvae  # noqa: E402
import tfvae.cli  # noqa: E402
import tfvae.plot  # noqa: E402
import tfvae.run  # noqa: E402,F401
import keras  # noqa: E402

gc.freeze()
gc.enable()

parts = {"import": time.perf_counter() - START, "training": 0.0, "saving": 0.0, "plots": 0.0}
marks = {}


def timed(part, function, mark=None):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        if mark and mark not in marks:
            marks[mark] = start
        try:
            return function(*args, **kwargs)
        finally:
            parts[part] += time.perf_counter() - start

    return wrapper


def main(out, options):
    tfvae.VAE.fit = timed("training", tfvae.VAE.fit, mark="fit")
    keras.Model.save = timed("saving", keras.Model.save)
    for name in ("loss_curves", "reconstructions", "prior_samples", "latent_map"):
        setattr(tfvae.plot, name, timed("plots", getattr(tfvae.plot, name)))
    start = time.perf_counter()
    with open(os.path.join(os.path.dirname(out), "train_output.txt"), "w") as log, contextlib.redirect_stdout(log):
        sys.argv = ["tfvae", "train", "--out", out, *options]
        status = tfvae.cli.main()
    total = time.perf_counter() - start
    parts["setup"] = marks.get("fit", start) - start
    parts["evaluation"] = total - parts["setup"] - parts["training"] - parts["saving"] - parts["plots"]
    history = os.path.join(out, "history.csv")
    with open(history) as handle:
        epochs = sum(1 for _ in handle) - 1
    print(json.dumps({"status": status, "command": total, "epochs": epochs, **parts}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
