"""The export folder of `tfvae-export all`: which model each artifact came from, kept or replaced on a rerun.

Every artifact records the model it was exported from as
`model.weights_sha256` in its metadata (`export.metadata.weights_sha256`:
SHA-256 of the weights and the preprocessing). `manifest.json` beside them
lists each artifact with that hash, a hash of the export's options (data,
normal rows, seed) and whether it was written or failed, with the error:

    {"format": "tfvae-export manifest", "weights_sha256": "3f1c...",
     "artifacts": {"vae.tflite": {"status": "written", "options_sha256": "9a0b..."},
                   "vae_int8.tflite": {"status": "failed", "error": "..."}}}

On a rerun an artifact is kept when the manifest and the file's own
metadata say it was written for the same model and options; anything else
is written again, and a file that fails for the new model is removed, so
the folder never holds files of two models side by side once the run ends.
"""

import hashlib
import json
import os
import pathlib
import shutil

from export import metadata
from tfvae import _atomic

MANIFEST = "manifest.json"
FORMAT = "tfvae-export manifest"


def ours(path):
    """Whether `path` is absent or an artifact tfvae-export wrote (it carries tfvae metadata)."""
    if not os.path.lexists(path):
        return True
    try:
        return metadata.read(path).get("format") == metadata.FORMAT
    except (OSError, ValueError):
        return False


class Folder:
    """The artifacts of one `tfvae-export all` in `out`, for `model` exported with `settings`.

    Args:
        out: the export folder.
        model: the `tfvae.VAE` being exported.
        settings: JSON-serializable options that change the artifacts' contents (data, normal rows, seed).
        overwrite: write every artifact again, whatever the manifest says.
    """

    def __init__(self, out, model, settings, overwrite=False):
        self.out = pathlib.Path(out)
        self.weights = metadata.weights_sha256(model)
        self.options = hashlib.sha256(json.dumps([self.weights, settings], default=str).encode()).hexdigest()
        self.overwrite = overwrite
        self.previous = self._read()
        self.entries = {}

    def keeps(self, path):
        """Whether the artifact at `path` was written for this model and these options (and is kept)."""
        name = pathlib.Path(path).name
        entry = self.previous.get("artifacts", {}).get(name, {})
        if self.overwrite or entry.get("status") != "written" or entry.get("options_sha256") != self.options:
            return False
        try:
            same = metadata.read(path)["model"].get("weights_sha256") == self.weights
        except (OSError, ValueError, KeyError):
            return False
        if same:
            self.entries[name] = entry
        return same

    def written(self, path):
        self.entries[pathlib.Path(path).name] = {"status": "written", "options_sha256": self.options}

    def failed(self, path, error):
        """Records a failure and removes what an older model left at `path`."""
        path = pathlib.Path(path)
        if os.path.lexists(path):  # renamed away first: the artifact is whole or absent, never half-deleted
            trash = path.with_name(f".{path.name}.removed")
            os.replace(path, trash)
            shutil.rmtree(trash) if trash.is_dir() and not trash.is_symlink() else trash.unlink()
        self.entries[path.name] = {"status": "failed", "error": f"{type(error).__name__}: {error}"}

    def save(self):
        """Writes the manifest (whole or not at all)."""
        self.out.mkdir(parents=True, exist_ok=True)
        manifest = {"format": FORMAT, "weights_sha256": self.weights, "artifacts": self.entries}
        _atomic.replace_text(self.out / MANIFEST, json.dumps(manifest, indent=2) + "\n")

    def _read(self):
        try:
            with open(self.out / MANIFEST) as handle:
                manifest = json.load(handle)
        except (OSError, ValueError):
            return {}
        return manifest if isinstance(manifest, dict) and manifest.get("format") == FORMAT else {}
