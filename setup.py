"""tfvae: variational autoencoders for Keras 3 / TensorFlow, from fit to LiteRT."""

import re
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "tfvae" / "__init__.py").read_text()).group(1)

setup(
    name="tfvae",
    version=VERSION,
    description="Variational autoencoders for Keras 3 with TensorFlow Probability, exportable to SavedModel and LiteRT",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=["tfvae", "export"],
    package_data={"export": ["metadata_schema.json", "reader/*"]},
    install_requires=[
        # The only versions the suite has run on. tfvae's few private uses of
        # Keras/TensorFlow are guarded by tfvae/_tested_versions.py and fall
        # back safely elsewhere (docs/design.md, "Private names"), and the
        # epoch loop falls back to Keras' own loop with a warning; widen these
        # pins once the suite has passed on the wider range.
        "tensorflow>=2.21,<2.22",
        # TFP 0.25 imports only with tf-keras present, which the [tf] extra
        # brings; tfvae itself uses Keras 3.
        "tensorflow-probability[tf]>=0.25",
        "keras>=3.15,<3.16",
        "scikit-learn>=1.3",
        "matplotlib>=3.7",
        "numpy>=1.26",
        "ai-edge-litert>=1.2",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "hypothesis>=6.100",
            "nbclient>=0.10",
            "nbformat>=5.9",
            "ipykernel>=6.29",
            "tensorboard>=2.16",
            "jsonschema>=4.18",
        ],
        # bench/peers.py's JAX peers; PyTorch is left to the user (PyPI's default wheel is a CUDA build).
        "bench": ["jax>=0.4.30", "flax>=0.10", "optax>=0.2"],
    },
    entry_points={
        "console_scripts": [
            "tfvae=tfvae.cli:main",
            "tfvae-export=export.cli:main",
        ],
        # The formats of `tfvae.VAE.export(filepath, format=...)`: tfvae looks
        # them up here and never imports `export` itself.
        "tfvae.export_formats": [
            "tf_saved_model=export:tf_saved_model_format",
            "litert=export:litert_format",
        ],
    },
)
