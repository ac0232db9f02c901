"""The variational autoencoder: encoder body, two heads, latent, decoder."""

import keras
import numpy as np
import tensorflow as tf

from tfvae import _checks, distribute, fit_checks, latent, likelihoods, losses
from tfvae import optimizers  # also registers tfvae>Adam, which a saved VAE's compile config may name
from tfvae.epoch_loop import EpochLoop, any_rows
from tfvae.latent import GaussianLatent, standard_normal_prior

#: Entry-point group of the formats `VAE.export` writes (declared by the `export` package in setup.py).
EXPORT_FORMATS_GROUP = "tfvae.export_formats"


@keras.saving.register_keras_serializable(package="tfvae")
class VAE(EpochLoop, keras.Model):
    """A variational autoencoder trained with `fit` on the negative ELBO.

    Structure, for an input x (for example the 6 features x1..x6 of the
    classic diagram):

        h           = encoder(x)                  # any Keras body, e.g. a1..a4
        z_mean      = Dense(latent_dim)(h)        # head "z_mean":      mu_1..mu_d
        z_log_sigma = Dense(latent_dim)(h)        # head "z_log_sigma": log sigma_1..d
        q(z|x)      = MultivariateNormalDiag(z_mean, exp(z_log_sigma))
        z           = z_mean + exp(z_log_sigma) * epsilon,  epsilon ~ N(0, I)
        p(x|z)      = likelihood(decoder(z))      # Bernoulli logits or Gaussian mean

    `z_mean` and `z_log_sigma` are outputs computed per input by two heads
    with their own weights, not trainable parameters; each input gets its
    own posterior. Training minimizes

        loss = -log p(x|z) + kl_weight * KL(q(z|x) || N(0, I))

    where `kl_weight` is `beta`, ramped linearly from 0 over the first
    `kl_warmup_steps` optimizer steps, and the KL optionally uses free bits.
    With `num_samples = k > 1` it instead maximizes the k-sample
    importance-weighted bound (IWAE). With the defaults, `loss` is exactly
    the negative ELBO. Metrics: `loss`, `reconstruction` (= -log p(x|z), in
    nats per example) and `kl` (the true KL, before beta and free bits).

    Args:
        encoder: a Keras model or layer mapping x of shape
            `(batch,) + event_shape` to features of shape `(batch, units)`.
        decoder: a Keras model or layer mapping `(batch, latent_dim)` (plus
            `num_classes` one-hot columns if conditional) to the likelihood's
            parameters, of the same shape as x.
        latent_dim: positive int, the size of z.
        likelihood: `"gaussian"` (real-valued x, decoder outputs the mean) or
            `"bernoulli"` (binary or [0, 1] x, decoder outputs logits). Stored
            as `likelihood_name` (`likelihood` is the method giving p(x|z)).
        likelihood_scale: for `"gaussian"`: None learns one scale per feature,
            a positive float fixes it.
        beta: float >= 0, the weight of the KL term (beta-VAE).
        free_bits: float >= 0, nats per latent dimension below which the KL
            is not penalized (0 disables).
        kl_warmup_steps: int >= 0, optimizer steps over which the KL weight
            rises linearly from 0 to `beta` (0 disables).
        num_samples: positive int k; k > 1 trains on the IWAE bound.
        num_classes: None, or the number of classes of a conditional VAE: the
            one-hot label is concatenated to the encoder's features and to z.
        log_sigma_bound: positive float, see `GaussianLatent`.
        event_shape: shape of one x; only needed when `encoder` has no
            defined input shape.
        preprocessing: None or a JSON-serializable dict saying how raw data
            became x (see `tfvae.datasets.apply_preprocessing`); it travels
            with the saved model and its exports.
        **kwargs: standard `keras.Model` arguments (`name`, ...).

    Raises:
        ValueError: for an invalid argument, or bodies whose shapes do not
            fit together.

    Example:

    >>> import keras, tfvae
    >>> encoder = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, "relu")])
    >>> decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(6)])
    >>> model = tfvae.VAE(encoder, decoder, latent_dim=2)
    >>> z_mean, z_log_sigma = model.encode(np.ones((3, 6), "float32"))
    >>> z_mean.shape
    TensorShape([3, 2])
    """

    def __init__(
        self,
        encoder,
        decoder,
        latent_dim,
        likelihood="gaussian",
        likelihood_scale=None,
        beta=1.0,
        free_bits=0.0,
        kl_warmup_steps=0,
        num_samples=1,
        num_classes=None,
        log_sigma_bound=10.0,
        event_shape=None,
        preprocessing=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.latent_dim = _checks.positive_int("latent_dim", latent_dim)
        self.likelihood_name = _checks.one_of("likelihood", likelihood, likelihoods.LIKELIHOODS)
        self.likelihood_scale = likelihood_scale
        self.beta = _checks.non_negative_float("beta", beta)
        self.free_bits = _checks.non_negative_float("free_bits", free_bits)
        self.kl_warmup_steps = _checks.non_negative_int("kl_warmup_steps", kl_warmup_steps)
        self.num_samples = _checks.positive_int("num_samples", num_samples)
        self.num_classes = None if num_classes is None else _checks.positive_int("num_classes", num_classes)
        self.log_sigma_bound = _checks.positive_float("log_sigma_bound", log_sigma_bound)
        self.preprocessing = _checks.optional_dict("preprocessing", preprocessing)
        if self.free_bits and self.num_samples > 1:
            raise ValueError(
                _checks.invalid(
                    "free_bits", "0 when num_samples > 1 (free bits apply to the one-sample ELBO)", free_bits
                )
            )
        for name, body in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(body, keras.layers.Layer):
                raise TypeError(_checks.invalid(name, "a Keras model or layer", body))
        self.encoder = encoder
        self.decoder = decoder
        self.event_shape = _resolve_event_shape(encoder, event_shape)
        self.z_mean_head = keras.layers.Dense(self.latent_dim, name="z_mean")
        # Zero weights: every posterior starts at sigma = 1, the prior's
        # scale, instead of at a random per-input sigma (measured: it
        # learns faster early on, see bench/run.py's quality table).
        self.z_log_sigma_head = keras.layers.Dense(self.latent_dim, kernel_initializer="zeros", name="z_log_sigma")
        self.latent = GaussianLatent(self.log_sigma_bound, name="latent")
        options = {} if self.likelihood_name == "bernoulli" else {"scale": likelihood_scale}
        if self.likelihood_name == "bernoulli" and likelihood_scale is not None:
            raise ValueError(_checks.invalid("likelihood_scale", 'None for likelihood="bernoulli"', likelihood_scale))
        self.likelihood_layer = likelihoods.get(self.likelihood_name, self.event_shape, name="likelihood", **options)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        # Training draws its noise (posterior samples, the epoch's shuffle)
        # with stateless ops seeded from here: reproducible after
        # keras.utils.set_random_seed, also under XLA.
        self.seed_generator = keras.random.SeedGenerator(name="sampling_seed")
        self._build_with_dummy_batch()

    # ------------------------------------------------------------------ build

    def _build_with_dummy_batch(self):
        """Runs one zero batch through every part: builds all weights now.

        `train_step` never calls `self(...)`, so without this a model fitted
        and saved would be unbuilt for exporters.
        """
        x = tf.zeros((1,) + self.event_shape)
        labels = tf.zeros([1], tf.int32) if self.num_classes else None
        features = self.encoder(x)
        if len(features.shape) != 2:
            raise ValueError(
                _checks.invalid(
                    "encoder",
                    "a body whose output has shape (batch, units); end a convolutional body with Flatten",
                    f"<output of shape {tuple(features.shape)}>",
                )
            )
        z_mean, _ = self._encode(x, labels)
        self.latent([z_mean, z_mean])  # marks the weightless layers built
        params = self._decoder_params(z_mean, labels)
        self.likelihood_layer(params)
        if tuple(params.shape[1:]) != self.event_shape:
            raise ValueError(
                _checks.invalid(
                    "decoder",
                    f"a body mapping z to parameters of shape (batch, {', '.join(map(str, self.event_shape))})",
                    f"<output of shape {tuple(params.shape)}>",
                )
            )
        self.built = True

    # ----------------------------------------------------------- the network

    def _one_hot(self, labels):
        """Labels (class ids or one-hot rows) as float32 one-hot, or None."""
        if not self.num_classes:
            if labels is not None:
                raise ValueError(
                    _checks.invalid("labels", "None for an unconditional VAE (num_classes=None)", "<labels>")
                )
            return None
        if labels is None or not tf.is_tensor(labels) or tf.executing_eagerly():
            labels = _checks.class_labels(
                "labels", labels, self.num_classes,
                hint=f"This VAE is conditional (num_classes={self.num_classes}): pass class ids or one-hot rows, "
                "e.g. model.fit(x, y) or model.encode(x, labels=y)",
            )
        labels = tf.convert_to_tensor(labels)
        if labels.shape.rank == 2 and labels.shape[-1] == self.num_classes and labels.dtype.is_floating:
            return tf.cast(labels, "float32")
        if labels.shape.rank == 2 and labels.shape[-1] == 1:
            labels = labels[:, 0]
        # A row lookup in an identity matrix rather than tf.one_hot: under full
        # int8 quantization the TFLite converter (TF 2.21) gives ONE_HOT an
        # output scale without rescaling its on/off values, so an int8
        # conditional model would see its label as ~2 instead of 1. GATHER
        # quantizes correctly, and the values are the same 0.0 and 1.0.
        return tf.gather(tf.eye(self.num_classes, dtype=tf.float32), tf.cast(labels, tf.int32))

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

    def _prior(self):
        return standard_normal_prior(self.latent_dim)

    # ----------------------------------------------------------- objective

    def kl_weight(self, step=None):
        """The KL weight at optimizer step `step` (default: the current one)."""
        if not self.kl_warmup_steps:
            return tf.constant(self.beta, tf.float32)
        if step is None:
            step = self.optimizer.iterations if self.optimizer is not None else 0
        ramp = tf.cast(step + 1, tf.float32) / float(self.kl_warmup_steps)
        return self.beta * tf.minimum(ramp, 1.0)

    def log_importance_weights(self, x, num_samples, labels=None, kl_weight=1.0, training=False, seed=None):
        """log w_i = log p(x|z_i) + kl_weight * (log p(z_i) - log q(z_i|x)).

        Args:
            x: float tensor `(batch,) + event_shape`.
            num_samples: k, the number of z_i ~ q(z|x) per example.
            labels: class labels of a conditional VAE.
            kl_weight: weight of the prior/posterior ratio (1 for the bound).
            training: passed to the bodies.
            seed: optional seed for the samples.

        Returns:
            `(log_weights, log_px_given_z)`, both float tensors `(k, batch)`.
        """
        z_mean, z_log_sigma = self._encode(x, labels, training)
        return self._log_weights(x, labels, self.latent.distribution(z_mean, z_log_sigma),
                                 num_samples, kl_weight, training, seed)

    def _log_weights(self, x, labels, posterior, num_samples, kl_weight, training, seed=None):
        z = latent.reparameterized_sample(posterior, seed, [num_samples])  # (k, batch, latent_dim)
        batch = tf.shape(z)[1]
        flat_z = tf.reshape(z, [-1, self.latent_dim])
        flat_labels = None
        if labels is not None and self.num_classes:
            one_hot = self._one_hot(labels)
            flat_labels = tf.reshape(tf.tile(one_hot[None], [num_samples, 1, 1]), [-1, self.num_classes])
        flat_x = tf.reshape(
            tf.broadcast_to(x[None], tf.concat([[num_samples], tf.shape(x)], 0)),
            tf.concat([[-1], tf.shape(x)[1:]], 0),
        )
        params = self._decoder_params(flat_z, flat_labels, training)
        log_px = tf.reshape(self.likelihood_layer.distribution(params).log_prob(flat_x), [num_samples, batch])
        log_ratio = self._prior().log_prob(z) - posterior.log_prob(z)
        return log_px + kl_weight * log_ratio, log_px

    def _sampling_seed(self):
        """A fresh stateless seed pair `int32 (2,)` from the model's seed generator."""
        seed = tf.cast(self.seed_generator.next(), tf.int64)
        return tf.cast(tf.math.floormod(seed, 2**31 - 1), tf.int32)

    def _loss_terms(self, x, labels, kl_weight, training, seed=None):
        """Per-example objective, reconstruction loss and KL of a batch."""
        x = tf.cast(x, "float32")
        z_mean, z_log_sigma = self._encode(x, labels, training)
        posterior = self.latent.distribution(z_mean, z_log_sigma)
        kl = losses.kl_divergence(posterior, self._prior())
        if self.num_samples == 1:
            z = latent.reparameterized_sample(posterior, seed)
            log_px = self.likelihood_layer.distribution(self._decoder_params(z, labels, training)).log_prob(x)
            kl_term = losses.free_bits_kl(posterior, self.free_bits) if self.free_bits else kl
            objective = -log_px + kl_weight * kl_term
        else:
            log_weights, log_px = self._log_weights(x, labels, posterior, self.num_samples, kl_weight, training, seed)
            objective = -losses.iwae_bound(log_weights)
            log_px = tf.reduce_mean(log_px, axis=0)
        return objective, -log_px, kl

    # ------------------------------------------------------------- training

    def _unpack(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, (tuple, list)) and len(x) == 2 and self.num_classes:
            x, y = x
        labels = y if self.num_classes else None
        if self.num_classes and labels is None:
            self._one_hot(None)  # raises the explanation
        return x, labels, sample_weight

    def train_step(self, data):
        x, labels, sample_weight = self._unpack(data)
        kl_weight = self.kl_weight()
        with tf.GradientTape() as tape:
            objective, reconstruction, kl = self._loss_terms(x, labels, kl_weight, True, self._sampling_seed())
            loss = losses.weighted_mean(objective, sample_weight)
            if self.losses:  # add_loss and weight regularizers of the bodies
                loss += tf.add_n([tf.cast(extra, loss.dtype) for extra in self.losses])
            # Gradients are summed over replicas: each contributes its share.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled_loss = self.optimizer.scale_loss(loss / replicas)
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        self._update_metrics(loss, reconstruction, kl, sample_weight)
        return self._step_logs()

    def test_step(self, data):
        x, labels, sample_weight = self._unpack(data)
        objective, reconstruction, kl = self._loss_terms(x, labels, self.beta, False, self._sampling_seed())
        self._update_metrics(losses.weighted_mean(objective, sample_weight), reconstruction, kl, sample_weight)
        return distribute.step_logs({metric.name: metric.result() for metric in self.metrics})

    def compile(self, optimizer=None, *args, **kwargs):
        """`keras.Model.compile`, with Adam at 1e-3 unless told otherwise.

        Args:
            optimizer: a Keras optimizer, or its name. None (the default)
                gives `tfvae.optimizers.Adam(1e-3)`: the optimizer and rate of
                the Keras VAE example, with Keras' Adam updates (bit for
                bit below `tfvae.optimizers.FUSED_MIN_SIZE` elements a
                variable, to about 1e-6 above, in one fused op) and a
                smaller step graph (faster on CPUs, see `tfvae.optimizers`).
                Keras' own default is `"rmsprop"`.
            *args, **kwargs: the other arguments of `keras.Model.compile`. The loss
                is the VAE's own; `jit_compile` defaults to `"auto"` (see
                `fit`).

        Example:

        >>> model = tfvae.mlp_vae(6, (4,), 2)
        >>> model.compile()
        >>> type(model.optimizer).__name__, float(model.optimizer.learning_rate)
        ('Adam', 0.001)
        """
        if optimizer is None:
            optimizer = optimizers.Adam(1e-3)
        return super().compile(optimizer, *args, **kwargs)

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`, after checking array data before the first step.

        Arrays (`x`, labels, `sample_weight`, `validation_data`) are checked
        by `tfvae.fit_checks.check_fit_arguments`: wrong shapes, empty data,
        non-numeric values and NaN or infinity (with the first bad row) are
        refused before training starts; integers become float32.
        `tf.data` datasets and generators are passed on unchecked.

        In-memory arrays then train one epoch per compiled function, and
        array `validation_data` is evaluated in one compiled call per epoch.
        Whether its full batches run under XLA follows the rule stated in
        `tfvae.epoch_loop` (`compile(jit_compile=True/False)` decides
        instead); `model.fit_path` then says which loop ran.

        Raises:
            TypeError: for non-numeric array data.
            ValueError: for array data of the wrong shape, empty, or not finite.
        """
        args, kwargs = fit_checks.check_fit_arguments(self, *args, **kwargs)
        return super().fit(*args, **kwargs)

    def predict_step(self, data):
        x, labels, _ = self._unpack(data)
        return self._reconstruct(x, labels)

    def _update_metrics(self, loss, reconstruction, kl, sample_weight):
        self.loss_tracker.update_state(loss)
        self.reconstruction_tracker.update_state(reconstruction, sample_weight=sample_weight)
        self.kl_tracker.update_state(kl, sample_weight=sample_weight)

    def _step_logs(self):
        """The logs of a training step: the metrics, and the KL weight while it ramps."""
        logs = {metric.name: metric.result() for metric in self.metrics}
        if self.kl_warmup_steps:
            # The weight of the step just taken (the optimizer has counted it).
            logs["kl_weight"] = self.kl_weight(self.optimizer.iterations - 1)
        return distribute.step_logs(logs)

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def call(self, inputs, training=None):
        """Reconstructs x: decodes a sample of q(z|x) in training, z_mean otherwise.

        Args:
            inputs: x, or `(x, labels)` for a conditional VAE.
        """
        if isinstance(inputs, (tuple, list)):
            x, labels = inputs
        else:
            x, labels = inputs, None
        z_mean, z_log_sigma = self._encode(x, labels, training)
        z = self.latent.distribution(z_mean, z_log_sigma).sample() if training else z_mean
        return self.likelihood_layer.mean(self._decoder_params(z, labels, training))

    def _reconstruct(self, x, labels):
        z_mean, _ = self._encode(tf.cast(x, "float32"), labels)
        return self.likelihood_layer.mean(self._decoder_params(z_mean, labels))

    # -------------------------------------------------------- public methods

    def _as_x(self, x, name="x"):
        return _as_float_tensor(name, x, self.event_shape)

    def _as_z(self, z):
        return _as_float_tensor("z", z, (self.latent_dim,))

    def encode(self, x, labels=None):
        """The posterior's parameters for each input.

        Args:
            x: array or tensor of shape `(batch,) + event_shape`.
            labels: class ids or one-hot rows, for a conditional VAE.

        Returns:
            `(z_mean, z_log_sigma)`: float32 tensors `(batch, latent_dim)`;
            `z_log_sigma` is bounded, and sigma = exp(z_log_sigma).

        Raises:
            ValueError: if x has the wrong shape or non-finite values, or
                values so large that the encoder's output overflows.
            RuntimeError: if the model's weights are not finite.
        """
        z_mean, z_log_sigma = self._encode(self._as_x(x), labels)
        self._check_finite_output("x", "z_mean", z_mean)
        return z_mean, z_log_sigma

    def posterior(self, x, labels=None):
        """q(z|x) as a `tfd.MultivariateNormalDiag` with batch shape `(batch,)`."""
        return self.latent.distribution(*self.encode(x, labels))

    def likelihood(self, z, labels=None):
        """p(x|z), a tfd distribution over x with batch shape `(batch,)`."""
        return self.likelihood_layer.distribution(self._decoder_params(self._as_z(z), labels))

    def decode(self, z, labels=None):
        """E[x|z]: probabilities for Bernoulli, means for Gaussian.

        Args:
            z: array or tensor `(batch, latent_dim)`.

        Returns:
            A float32 tensor `(batch,) + event_shape`.

        Raises:
            ValueError: if z is not `(batch, latent_dim)` or not finite, or
                so large that the decoder's output overflows.
            RuntimeError: if the model's weights are not finite.
        """
        x_mean = self.likelihood_layer.mean(self._decoder_params(self._as_z(z), labels))
        self._check_finite_output("z", "x_mean", x_mean)
        return x_mean

    def _check_finite_output(self, name, output_name, output):
        """Raises if an eager output of finite input `name` has a non-finite row."""
        if not tf.executing_eagerly() or not hasattr(output, "numpy"):
            return  # traced by an exporter: nothing to check
        row = _checks.first_non_finite_row(output.numpy())
        if row is None:
            return
        broken = [weight.path for weight in self.trainable_weights if not np.all(np.isfinite(weight.numpy()))]
        if broken:
            raise RuntimeError(
                f"The model's weights hold NaN or infinity ({', '.join(broken[:3])}...): training diverged, and "
                f"no `{output_name}` it computes is meaningful. Train again with a lower learning rate or "
                "scaled data (tfvae.callbacks.TerminateOnNonFinite keeps the last good weights)."
            )
        raise ValueError(_checks.overflow(name, output_name, row))

    def reconstruct(self, x, labels=None):
        """Deterministic reconstruction: `decode(z_mean(x))`."""
        return self._reconstruct(self._as_x(x), labels)

    def sample(self, n, seed=None, labels=None):
        """Draws z ~ N(0, I) and returns E[x|z] for `n` new examples.

        Args:
            n: positive int.
            seed: optional int for a reproducible draw.
            labels: for a conditional VAE, one class id for all or `n` of them.

        Returns:
            A float32 tensor `(n,) + event_shape`.
        """
        n = _checks.positive_int("n", n)
        if seed is not None:
            seed = _seed_tensor(seed)
        z = self._prior().sample(n, seed=seed)
        if labels is not None and np.ndim(labels) == 0:
            labels = np.full([n], labels)
        return self.likelihood_layer.mean(self._decoder_params(z, labels))

    def elbo(self, x, labels=None, sample=True, seed=None):
        """Per-example ELBO = log p(x|z) - KL(q(z|x) || p(z)), in nats.

        Args:
            x: array or tensor `(batch,) + event_shape`.
            labels: for a conditional VAE.
            sample: True draws one z ~ q(z|x) (an unbiased estimate); False
                uses z = z_mean, a deterministic value, as exporters do.
            seed: optional int for the draw.

        Returns:
            A float32 tensor `(batch,)`.
        """
        x = self._as_x(x)
        posterior = self.latent.distribution(*self._encode(x, labels))
        if sample:
            z = latent.reparameterized_sample(posterior, None if seed is None else _seed_tensor(seed))
        else:
            z = posterior.mean()
        log_px = self.likelihood_layer.distribution(self._decoder_params(z, labels)).log_prob(x)
        return log_px - losses.kl_divergence(posterior, self._prior())

    def log_likelihood(self, x, num_samples=1000, labels=None, batch_size=128, samples_per_chunk=128, seed=None):
        """Importance-weighted estimate of log p(x) per example (IWAE, k samples).

        log p(x) ~= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),  z_i ~ q(z|x).
        Work is done in chunks of `batch_size` examples times
        `samples_per_chunk` samples, so memory stays bounded for large k.

        Returns:
            A float32 numpy array `(batch,)`, in nats.
        """
        x = self._as_x(x)
        num_samples = _checks.positive_int("num_samples", num_samples)
        batch_size = _checks.positive_int("batch_size", batch_size)
        samples_per_chunk = _checks.positive_int("samples_per_chunk", samples_per_chunk)
        seed = _checks.seed("seed", seed)
        one_hot = self._one_hot(labels)
        # Traced once for every batch size (the last batch is smaller) and chunk of samples.
        self._log_weights_chunk.get_concrete_function(
            any_rows(x), any_rows(one_hot), tf.TensorSpec([], tf.int32),
            None if seed is None else tf.TensorSpec([2], tf.int32))
        results = []
        chunk = 0
        for start in range(0, x.shape[0], batch_size):
            x_batch = x[start:start + batch_size]
            labels_batch = None if one_hot is None else one_hot[start:start + batch_size]
            total = tf.fill([x_batch.shape[0]], -np.inf)
            for done in range(0, num_samples, samples_per_chunk):
                k = min(samples_per_chunk, num_samples - done)
                # A stateless seed per chunk. (tf.random.set_seed only reached the
                # first trace of _log_weights_chunk: later calls repeated the first
                # call's samples whatever their seed.)
                chunk_seed = None if seed is None else tf.constant([int(seed), chunk], tf.int32)
                chunk += 1
                log_weights, _ = self._log_weights_chunk(x_batch, labels_batch, tf.constant(k), chunk_seed)
                total = tf.reduce_logsumexp(tf.stack([total, tf.reduce_logsumexp(log_weights, 0)]), 0)
            results.append(total - np.log(num_samples))
        return tf.concat(results, 0).numpy()

    @tf.function(reduce_retracing=True)
    def _log_weights_chunk(self, x, one_hot, k, seed=None):
        return self.log_importance_weights(x, k, labels=one_hot, seed=seed)

    # ------------------------------------------------------------- export

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """Keras' `Model.export`, writing tfvae's serving artifacts.

        `format="tf_saved_model"` writes the SavedModel of
        `export.saved_model` (signatures encode, decode, reconstruct, score,
        sample and serving_default); `format="litert"` writes the
        five-signature LiteRT model of `export.tflite(..., part="vae")`. Both
        take raw x (the graph applies `preprocessing`), carry their metadata
        and are checked against this model before they are written. The
        formats are plugins found under the entry-point group
        `tfvae.export_formats` (the `export` package of this project
        registers both), so `tfvae` does not depend on `export`.

        Args:
            filepath: the SavedModel directory or the `.tflite` file.
            format: `"tf_saved_model"` or `"litert"`.
            verbose: print the export report (size, signatures, parity
                with Keras); None means True.
            input_signature: must be None (the signatures are tfvae's own).
            **kwargs: options of the format: `overwrite` (default True, as
                Keras), `parity_data` (raw data training did not use: parity
                and score thresholds); for `"litert"` also `quantize` (None,
                `"float16"`, `"dynamic"`, `"int8"`), `representative_data`
                (raw training data, required for int8) and `per_channel`.

        Returns:
            The `export.ExportReport` of the artifact.

        Raises:
            ValueError: for another format (Keras' `"onnx"`, `"openvino"`,
                `"torch"` are not supported: the message says what to use),
                or no installed exporter.

        Example:

        >>> model.export("out/saved_model")
        >>> model.export("out/vae_int8.tflite", format="litert", quantize="int8",
        ...              representative_data=x_train_raw, parity_data=x_test_raw)
        """
        from importlib import metadata as importlib_metadata

        formats = {entry.name: entry for entry in importlib_metadata.entry_points(group=EXPORT_FORMATS_GROUP)}
        if format not in formats:
            known = sorted(formats) or ["tf_saved_model", "litert"]
            hint = (
                "For ONNX or OpenVINO, export format='tf_saved_model' and convert the SavedModel with that "
                "tool's TensorFlow importer (for example tf2onnx); its signatures take raw x"
                if format in ("onnx", "openvino", "torch") else ""
            )
            if not formats:
                hint = ("No exporter is installed: install tfvae with its `export` package "
                        "(pip install -e . from the project)")
            raise ValueError(_checks.invalid("format", f"one of {known}", format, hint))
        return formats[format].load()(self, filepath, verbose=verbose, input_signature=input_signature, **kwargs)

    # ------------------------------------------------------ serialization

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "latent_dim": self.latent_dim,
            "likelihood": self.likelihood_name,
            "likelihood_scale": self.likelihood_scale,
            "beta": self.beta,
            "free_bits": self.free_bits,
            "kl_warmup_steps": self.kl_warmup_steps,
            "num_samples": self.num_samples,
            "num_classes": self.num_classes,
            "log_sigma_bound": self.log_sigma_bound,
            "event_shape": list(self.event_shape),
            "preprocessing": self.preprocessing,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("encoder", "decoder"):
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)


# ------------------------------------------------------------------ helpers


def _resolve_event_shape(encoder, event_shape):
    if event_shape is not None:
        return _checks.int_tuple("event_shape", event_shape, allow_empty=False)
    try:
        shape = tuple(encoder.inputs[0].shape[1:])
    except (AttributeError, IndexError, TypeError, ValueError):
        raise ValueError(
            "Cannot tell the shape of x: `encoder` has no defined input. Start "
            "it with keras.Input(shape) or pass event_shape=..."
        ) from None
    return _checks.int_tuple("event_shape", shape, allow_empty=False)


def _as_float_tensor(name, value, event_shape):
    """Checks a user's array or eager tensor; passes symbolic tensors through."""
    if tf.is_tensor(value) and not tf.executing_eagerly():
        expected = [None, *event_shape]
        if value.shape.rank is not None and not tf.TensorShape(expected).is_compatible_with(value.shape):
            raise ValueError(
                _checks.invalid(name, f"a tensor of shape {tuple(expected)}", f"<tensor of shape {value.shape}>")
            )
        return tf.cast(value, "float32")
    if tf.is_tensor(value):
        value = value.numpy()
    return tf.convert_to_tensor(_checks.float_array(name, value, event_shape))


def _seed_tensor(seed):
    """An int seed as the stateless seed pair that TFP samplers accept."""
    return tf.constant([_checks.seed("seed", seed), 0], tf.int32)
