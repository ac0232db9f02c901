"""The Keras and TensorFlow versions tfvae's few guarded private uses were tested with.

tfvae uses a private name of Keras or TensorFlow only where no public API
does the job, and only on a version listed here (docs/design.md, "Private
names", lists each use, its reason and its test). On another version each
use falls back to a public path or a clear error: nothing is written into
an object whose layout tfvae has not seen. Only the versions below were
tested (setup.py allows no others).
"""

import keras
import tensorflow as tf

#: Keras major.minor versions whose privates and `fit` loop tfvae was tested with.
TESTED_KERAS = ("3.15",)
#: TensorFlow major.minor versions whose privates tfvae was tested with.
TESTED_TENSORFLOW = ("2.21",)


def _minor(version):
    return ".".join(version.split(".")[:2])


def keras_is_tested():
    """Whether this Keras is one of `TESTED_KERAS` on the TensorFlow backend.

    Example:

    >>> from tfvae._tested_versions import keras_is_tested
    >>> keras_is_tested()   # Keras 3.15 with TensorFlow
    True
    """
    return keras.backend.backend() == "tensorflow" and _minor(keras.version()) in TESTED_KERAS


def tensorflow_is_tested():
    """Whether this TensorFlow is one of `TESTED_TENSORFLOW`.

    Example:

    >>> from tfvae._tested_versions import tensorflow_is_tested
    >>> tensorflow_is_tested()   # TensorFlow 2.21
    True
    """
    return _minor(tf.__version__) in TESTED_TENSORFLOW
