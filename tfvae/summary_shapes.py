"""Builds a VAE's heads, latent and likelihood for any batch size, so that `model.summary()` shows `(None, d)`.

`VAE` builds its weights by running one example through every part; Keras
records the shapes a layer was first built with and `summary()` prints them,
so the heads showed `(1, 8)` and the likelihood `?`. Built here first from
shapes with a batch axis of None, they show what they compute on any batch:

    z_mean (Dense)            (None, 8)
    z_log_sigma (Dense)       (None, 8)
    latent (GaussianLatent)   (None, 8)
    likelihood (Bernoulli)    (None, 64)     the decoder's parameters it takes
"""


def build_unbatched(model, feature_units):
    """Builds `model`'s heads, latent and likelihood layers from shapes with batch axis None.

    Call it before the parts first run (later, a Dense layer would create
    its weights a second time).

    Args:
        model: a `tfvae.VAE` under construction.
        feature_units: the width of what the heads read (the encoder's
            features, plus the one-hot label columns of a conditional VAE).

    Example:

    >>> import tfvae
    >>> model = tfvae.mlp_vae(64, (128,), 8)   # VAE.__init__ calls build_unbatched(model, 128)
    >>> model.summary()
    Model: "vae..."
    ...
    │ z_mean (Dense)                  │ (None, 8)              │         1,032 │
    ...
    │ likelihood (Gaussian)           │ (None, 64)             │            64 │
    ...
    """
    for head in (model.z_mean_head, model.z_log_sigma_head):
        if not head.built:
            head.build((None, feature_units))
    if not model.latent.built:
        model.latent.build([(None, model.latent_dim), (None, model.latent_dim)])
    model.prior.build((None, model.latent_dim))  # bound already (no weights made here): records the shape shown
    if not model.likelihood_layer.built:
        model.likelihood_layer.build((None,) + tuple(model.likelihood_layer.params_shape()))
