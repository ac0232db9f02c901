"""The variational autoencoder: encoder body, two heads, posterior, prior, decoder, likelihood."""

import keras
import numpy as np
import tensorflow as tf

from tfvae import _checks, _renamed, anomaly, conditioning, export_formats, fit_checks, importance, latent
from tfvae import likelihoods, misuse, model_checks, objectives, priors, steps, vae_config
from tfvae import optimizers  # also registers tfvae>Adam, which a saved VAE's compile config may name
from tfvae.epoch_loop import EpochLoop


@keras.saving.register_keras_serializable(package="tfvae")
class VAE(EpochLoop, keras.Model):
    """A variational autoencoder built from registered parts, trained with `fit`.

        h = encoder(x);  z_mean = Dense(h);  z_log_sigma = soft_bound(Dense(h))   # two heads
        q(z|x) = N(z_mean, diag(exp(z_log_sigma))^2)    # posterior: tfvae.latent
        p(z)   = prior                                  # tfvae.priors: N(0, I), mixture, VampPrior
        p(x|z) = likelihood(decoder(z))                 # tfvae.likelihoods

    `fit` minimizes the batch mean of the objective (`tfvae.objectives`), by
    default the negative ELBO -log p(x|z) + KL(q(z|x) || p(z)); metrics are
    `loss` and the objective's own (`reconstruction`, `kl`). Every method
    asks these parts: `sample` draws from the prior, `elbo` and
    `log_likelihood` use its density, the exporters' `score` is
    `tfvae.scores.anomaly_score`.

    Args:
        encoder: a Keras model or layer, x `(batch,) + event_shape` -> `(batch, units)`.
        decoder: a Keras model or layer, z `(batch, latent_dim)` (plus
            `num_classes` one-hot columns) -> `(batch,) + likelihood.params_shape()`.
        latent_dim: positive int, the size of z.
        likelihood: a name of `tfvae.likelihoods.LIKELIHOODS` (`"gaussian"`,
            `"bernoulli"`, `"gaussian_per_pixel"`, `"poisson"`), a config dict
            or a `Likelihood`; its name is `likelihood_name`.
        likelihood_scale: for `"gaussian"`: None learns one scale per feature,
            a positive float fixes it.
        beta, free_bits, kl_warmup_steps, iwae_samples: shortcuts for the
            default objective `ELBO(beta, free_bits, kl_warmup_steps)`, or
            `IWAE(iwae_samples, beta, kl_warmup_steps)` for iwae_samples > 1
            (`num_samples` is its deprecated old name).
        num_classes: None, or the number of classes of a conditional VAE (the
            one-hot label is concatenated to the encoder's features and to z).
        log_sigma_bound: positive float, see `tfvae.GaussianLatent`.
        event_shape: shape of one x, if `encoder` has no defined input shape.
        preprocessing: None or a JSON-serializable dict saying how raw data
            became x (see `tfvae.datasets.apply_preprocessing`).
        prior: None (N(0, I)), a name of `tfvae.priors.PRIORS`, a config dict or a `Prior`.
        objective: None (from the shortcuts, left at their defaults), a name
            of `tfvae.objectives.OBJECTIVES`, a config dict or an `Objective`.
        **kwargs: standard `keras.Model` arguments (`name`, ...).

    Raises:
        ValueError: for an invalid argument, or bodies whose shapes do not
            fit together or the likelihood.

    Example:

    >>> import keras, tfvae
    >>> encoder = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, "relu")])
    >>> decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(6)])
    >>> tfvae.VAE(encoder, decoder, latent_dim=2, prior="mixture").sample(3).shape
    TensorShape([3, 6])
    """

    @_renamed.keywords(num_samples="iwae_samples")
    def __init__(self, encoder, decoder, latent_dim, likelihood="gaussian", likelihood_scale=None, beta=1.0,
                 free_bits=0.0, kl_warmup_steps=0, iwae_samples=1, num_classes=None, log_sigma_bound=10.0,
                 event_shape=None, preprocessing=None, prior=None, objective=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = _checks.positive_int("latent_dim", latent_dim)
        self.likelihood_scale = likelihood_scale
        self.num_classes = None if num_classes is None else _checks.positive_int("num_classes", num_classes)
        self.log_sigma_bound = _checks.positive_float("log_sigma_bound", log_sigma_bound)
        self.preprocessing = _checks.optional_dict("preprocessing", preprocessing)
        self.objective = objectives.resolve(objective, beta, free_bits, kl_warmup_steps, iwae_samples)
        self.beta, self.free_bits, self.kl_warmup_steps, self.iwae_samples = (
            float(beta), float(free_bits), int(kl_warmup_steps), int(iwae_samples))
        self._objective_from_shortcuts = objective is None
        for name, body in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(body, keras.layers.Layer):
                raise TypeError(_checks.invalid(name, "a Keras model or layer", body))
        self.encoder = encoder
        self.decoder = decoder
        self.event_shape = model_checks.resolve_event_shape(encoder, event_shape)
        self.z_mean_head = keras.layers.Dense(self.latent_dim, name="z_mean")
        # Zero weights: every posterior starts at sigma = 1, the prior's scale, instead of at a random
        # per-input sigma that the KL term first has to pull back.
        self.z_log_sigma_head = keras.layers.Dense(self.latent_dim, kernel_initializer="zeros", name="z_log_sigma")
        self.latent = latent.get("gaussian", log_sigma_bound=self.log_sigma_bound, name="latent")
        self._likelihood_is_name = isinstance(likelihood, str)
        self.likelihood_layer = likelihoods.from_arguments(likelihood, likelihood_scale, self.event_shape)
        self.likelihood_name = likelihoods.LIKELIHOODS.name_of(self.likelihood_layer)
        self.prior = priors.get(prior, name="prior")
        self.prior.bind(self)
        self.loss_tracker, self.objective_trackers = steps.trackers(self.objective)
        # Training's noise (posterior samples, the epoch's shuffle): stateless ops seeded from here (tfvae.steps).
        self.seed_generator = keras.random.SeedGenerator(name="sampling_seed")
        model_checks.build_with_dummy_batch(self)

    # ----------------------------------------------------------- the network

    def _one_hot(self, labels):
        return conditioning.one_hot(labels, self.num_classes)

    def _encode(self, x, labels, training=False):
        features = self.encoder(x, training=training)
        one_hot = self._one_hot(labels)
        if one_hot is not None:
            features = tf.concat([features, tf.cast(one_hot, features.dtype)], axis=-1)
        z_mean = tf.cast(self.z_mean_head(features), "float32")
        z_log_sigma = self.latent.bound_log_sigma(self.z_log_sigma_head(features))
        return z_mean, z_log_sigma

    def _decoder_params(self, z, labels, training=False):
        one_hot = self._one_hot(labels)
        if one_hot is not None:
            z = tf.concat([z, one_hot], axis=-1)
        return tf.cast(self.decoder(z, training=training), "float32")

    # ------------------------------------------------------------- training

    def kl_weight(self, step=None):
        """The objective's KL weight at optimizer step `step` (default: the current one); 1 if it has none."""
        has_weight = hasattr(self.objective, "kl_weight")
        return self.objective.kl_weight(self, step) if has_weight else tf.constant(1.0, tf.float32)

    @_renamed.keywords(num_samples="importance_samples")
    def log_importance_weights(self, x, importance_samples, labels=None, kl_weight=1.0, training=False, seed=None):
        """`(log_weights, log_px_given_z)` `(k, batch)`: see `tfvae.objectives.log_importance_weights`."""
        posterior = objectives.posterior(self, x, labels, training)
        return objectives.log_importance_weights(
            self, x, labels, posterior, importance_samples, kl_weight, training, seed)[:2]

    def _sampling_seed(self):
        return steps.sampling_seed(self)

    def train_step(self, data):
        return steps.train_step(self, data)

    def test_step(self, data):
        return steps.test_step(self, data)

    def compile(self, optimizer=None, *args, **kwargs):
        """`keras.Model.compile`; `optimizer=None` gives `tfvae.optimizers.Adam(1e-3)` (Keras': rmsprop).

        The loss is the VAE's objective; `jit_compile` defaults to `"auto"` (see `tfvae.epoch_loop`).

        >>> import tfvae
        >>> model = tfvae.mlp_vae(6, (4,), 2)
        >>> model.compile(); round(float(model.optimizer.learning_rate), 6)
        0.001
        """
        if optimizer is None:
            optimizer = optimizers.Adam(1e-3)
        return super().compile(optimizer, *args, **kwargs)

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`, after `tfvae.fit_checks.check_fit_arguments` checked array data.

        A `tf.data` dataset gets these checks on its first batch, and what would
        train silently wrong gets a warning (`tfvae.misuse`). In-memory arrays
        train one epoch per compiled function; whether under XLA follows the
        rule stated in `tfvae.epoch_loop` (`compile(jit_compile=True/False)`
        decides instead); `model.fit_path` says which loop ran.

        Raises:
            TypeError: for non-numeric array data.
            ValueError: for array data of the wrong shape, empty, or not finite.
        """
        args, kwargs = fit_checks.check_fit_arguments(self, *args, **kwargs)
        misuse.check_fit(self, *args, **kwargs)  # warnings, and a tf.data input's first batch
        return super().fit(*args, **kwargs)

    def predict_step(self, data):
        x, labels, _ = conditioning.unpack(data, self.num_classes)
        misuse.check_x_shape(self, x)
        return self._reconstruct(x, labels)

    def _step_logs(self):
        return steps.step_logs(self)

    @property
    def metrics(self):
        return [self.loss_tracker, *self.objective_trackers]

    def call(self, inputs, training=None):
        """Reconstructs x (`inputs`: x or `(x, labels)`): decodes a sample of q(z|x) in training, z_mean otherwise."""
        x, labels = inputs if isinstance(inputs, (tuple, list)) else (inputs, None)
        misuse.check_x_shape(self, x)
        z_mean, z_log_sigma = self._encode(x, labels, training)
        z = self.latent.sample(self.latent.distribution(z_mean, z_log_sigma)) if training else z_mean
        return self.likelihood_layer.mean(self._decoder_params(z, labels, training))

    def _reconstruct(self, x, labels):
        z_mean, _ = self._encode(tf.cast(x, "float32"), labels)
        return self.likelihood_layer.mean(self._decoder_params(z_mean, labels))

    # -------------------------------------------------------- public methods

    def _as_x(self, x, name="x"):
        return model_checks.as_float_tensor(name, x, self.event_shape)

    def _as_z(self, z):
        return model_checks.as_float_tensor("z", z, (self.latent_dim,))

    def encode(self, x, labels=None):
        """The posterior's parameters `(z_mean, z_log_sigma)`, float32 `(batch, latent_dim)` each.

        Args:
            x: array or tensor of shape `(batch,) + event_shape`.
            labels: class ids or one-hot rows, for a conditional VAE.

        Raises:
            ValueError: if x has the wrong shape or non-finite values, or
                values so large that the encoder's output overflows.
            RuntimeError: if the model's weights are not finite.
        """
        z_mean, z_log_sigma = self._encode(self._as_x(x), labels)
        model_checks.check_finite_output(self, "x", "z_mean", z_mean)
        return z_mean, z_log_sigma

    def posterior(self, x, labels=None):
        """q(z|x) as a `tfd.MultivariateNormalDiag` with batch shape `(batch,)`."""
        return self.latent.distribution(*self.encode(x, labels))

    def likelihood(self, z, labels=None):
        """p(x|z), a tfd distribution over x with batch shape `(batch,)`."""
        return self.likelihood_layer.distribution(self._decoder_params(self._as_z(z), labels))

    def decode(self, z, labels=None):
        """E[x|z] (probabilities for Bernoulli, means for Gaussian), float32 `(batch,) + event_shape`.

        Raises:
            ValueError: if z is not `(batch, latent_dim)` or not finite, or
                so large that the decoder's output overflows.
            RuntimeError: if the model's weights are not finite.
        """
        x_mean = self.likelihood_layer.mean(self._decoder_params(self._as_z(z), labels))
        model_checks.check_finite_output(self, "z", "x_mean", x_mean)
        return x_mean

    def reconstruct(self, x, labels=None):
        """Deterministic reconstruction: `decode(z_mean(x))`."""
        return self._reconstruct(self._as_x(x), labels)

    def sample(self, n, seed=None, labels=None):
        """Draws z ~ p(z) from the model's prior and returns E[x|z], float32 `(n,) + event_shape`.

        Args:
            n: positive int.
            seed: optional int for a reproducible draw.
            labels: for a conditional VAE, one class id for all or `n` of them.
        """
        n = _checks.positive_int("n", n)
        seed = None if seed is None else model_checks.seed_tensor(seed)
        z = self.prior.distribution(self).sample(n, seed=seed)
        labels = np.full([n], labels) if labels is not None and np.ndim(labels) == 0 else labels
        return self.likelihood_layer.mean(self._decoder_params(z, labels))

    def elbo(self, x, labels=None, sample=True, seed=None):
        """Per-example ELBO = log p(x|z) - KL(q(z|x) || p(z)), in nats, float32 `(batch,)`.

        `sample=True` draws one z ~ q(z|x) (with `seed`, an unbiased estimate),
        False uses z = z_mean. The KL is analytic where the prior has one,
        else log q(z|x) - log p(z) at the same z.
        """
        x = self._as_x(x)
        posterior = objectives.posterior(self, x, labels, False)
        seed = None if seed is None else model_checks.seed_tensor(seed)
        z = self.latent.sample(posterior, seed) if sample else posterior.mean()
        return objectives.log_px(self, x, z, labels, False) - objectives.kl(self, posterior, z)

    @_renamed.keywords(num_samples="importance_samples")
    def log_likelihood(self, x, importance_samples=1000, labels=None, batch_size=128, samples_per_chunk=128, seed=None):
        """log p(x) per example (nats, numpy `(batch,)`), importance-weighted with the prior: `tfvae.importance`."""
        return importance.log_likelihood(self, self._as_x(x), importance_samples, labels, batch_size,
                                         samples_per_chunk, seed)

    @tf.function(reduce_retracing=True)
    def _log_weights_chunk(self, x, one_hot, k, seed=None):
        return self.log_importance_weights(x, k, labels=one_hot, seed=seed)

    # ------------------------------------------------------------ anomalies

    #: `{false-positive rate: score threshold}` set by `fit_thresholds`, saved in `.keras`; None until then.
    thresholds = None

    def anomaly_score(self, x, labels=None, importance_samples=None):
        """How unusual each row of x (as `fit` takes it) is: a float32 numpy array `(n,)`, higher = more unusual.

        By default `tfvae.scores.anomaly_score`, deterministic, exactly what the
        exported `score` signature computes (which takes raw rows and applies
        `preprocessing` itself). `importance_samples=k` gives instead the
        importance-sampled -log p(x) of `log_likelihood` (k samples, fixed seed).

        >>> import numpy as np, tfvae
        >>> model = tfvae.mlp_vae(6, (4,), 2)
        >>> model.anomaly_score(np.zeros((3, 6), "float32")).shape
        (3,)
        """
        return anomaly.anomaly_score(self, x, labels, importance_samples)

    def fit_thresholds(self, x_normal, false_positive_rates=(0.01, 0.05), labels=None, x_train=None):
        """Sets and returns `self.thresholds`, `{rate: threshold}`, from rows known to be normal.

        The threshold at rate r is the (1 - r) quantile of `anomaly_score` on
        `x_normal` (rows training did not use); saved in `.keras` (JSON keys
        are strings, `{"0.01": ...}`). With `x_train` (x, or `(x, labels)`),
        warns when `x_normal` looks contaminated (the rule: `tfvae.anomaly`).

        >>> import numpy as np, tfvae
        >>> x = np.random.default_rng(0).random((200, 6)).astype("float32")
        >>> model = tfvae.mlp_vae(6, (4,), 2)
        >>> model.compile(); _ = model.fit(x[:150], epochs=2, verbose=0)
        >>> thresholds = model.fit_thresholds(x[150:], x_train=x[:150])  # rows training did not use
        >>> flagged = model.anomaly_score(x[150:]) > thresholds[0.01]  # about 1% of normal rows
        >>> sorted(thresholds), int(flagged.sum()) <= 1
        ([0.01, 0.05], True)
        """
        self.thresholds = anomaly.fit_thresholds(self, x_normal, labels, false_positive_rates, x_train)
        return dict(self.thresholds)

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """Keras' `Model.export`: `"tf_saved_model"` (`export.saved_model`) or `"litert"` (`export.tflite`).

        Both take raw x and are checked against this model; `**kwargs` are the
        format's options (`overwrite`, `parity_data`, `quantize`, ...). Returns the
        `export.ExportReport`; see `tfvae.export_formats`.

        >>> import numpy as np, tfvae
        >>> x = np.random.default_rng(0).random((32, 6)).astype("float32")
        >>> model = tfvae.mlp_vae(6, (4,), 2)
        >>> report = model.export("vae.tflite", format="litert", parity_data=x, verbose=False)
        >>> sorted({row.signature for row in report.parity})
        ['decode', 'encode', 'reconstruct', 'sample', 'score']
        """
        return export_formats.export(self, filepath, format, verbose, input_signature, **kwargs)

    # ------------------------------------------------------ serialization

    def get_config(self):
        return vae_config.get_config(self, super().get_config())

    @classmethod
    def from_config(cls, config):
        return vae_config.from_config(cls, config)
