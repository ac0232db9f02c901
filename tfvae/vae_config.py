"""A `tfvae.VAE`'s Keras config: what `model.save` writes and `keras.saving.load_model` reads back.

The parts are written by registered class (`tfvae.registry.serialize`), the
bodies as Keras objects, the thresholds with string keys (JSON). A key is
written only when it differs from the default where an older release would
not know it (`prior`, `objective`, `iwae_samples`), so a default model's file
loads in the previous release too; and a file of an older release, which
calls the IWAE k `num_samples`, loads here.
"""

import keras

from tfvae import _renamed, anomaly, priors
from tfvae.registry import serialize

#: Config keys an older release wrote under another name: `{old: new}`.
RENAMED = {"num_samples": "iwae_samples"}
#: Options written as they are.
PLAIN = ("likelihood_scale", "beta", "free_bits", "kl_warmup_steps", "num_classes", "log_sigma_bound")


def get_config(model, base_config):
    """The config of `model`, on top of `keras.Model`'s `base_config`.

    >>> import tfvae
    >>> config = tfvae.mlp_vae(6, (4,), 2, iwae_samples=3).get_config()
    >>> config["iwae_samples"], config["likelihood"], "prior" in config
    (3, 'gaussian', False)
    """
    config = {
        **base_config,
        "encoder": keras.saving.serialize_keras_object(model.encoder),
        "decoder": keras.saving.serialize_keras_object(model.decoder),
        "latent_dim": model.latent_dim,
        "likelihood": model.likelihood_name if model._likelihood_is_name else serialize(model.likelihood_layer),
        **{name: getattr(model, name) for name in PLAIN},
        "event_shape": list(model.event_shape),
        "preprocessing": model.preprocessing,
        "thresholds": anomaly.to_config(model.thresholds),
    }
    if model.iwae_samples != 1:
        config["iwae_samples"] = model.iwae_samples
    if not isinstance(model.prior, priors.StandardNormal):
        config["prior"] = serialize(model.prior)
    if not model._objective_from_shortcuts:
        config["objective"] = serialize(model.objective)
    return config


def from_config(cls, config):
    """A model of class `cls` from `config` (this release's or an older one's), with its thresholds.

    >>> import tfvae
    >>> config = tfvae.mlp_vae(6, (4,), 2).get_config()
    >>> config["num_samples"] = 3  # as the previous release wrote it
    >>> tfvae.VAE.from_config(config).iwae_samples
    3
    """
    config = _renamed.new_keywords(config, RENAMED, warn=False)  # the file's age is not the caller's doing
    thresholds = anomaly.from_config(config.pop("thresholds", None))
    for name in ("encoder", "decoder"):
        config[name] = keras.saving.deserialize_keras_object(config[name])
    model = cls(**config)
    model.thresholds = thresholds
    return model
