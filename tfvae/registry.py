"""One registry per family of VAE parts, resolved like `keras.losses.get`.

A family (posteriors, priors, likelihoods, objectives) keeps its classes in
a `Registry` under short names (`"vamp"`, `"poisson"`, `"iwae"`). Every
registered class is also registered with Keras
(`keras.saving.register_keras_serializable(package="tfvae")`), so a saved
model names its parts by class and `keras.saving.load_model` rebuilds them in
safe mode. `Registry.get` accepts a short name, a config dict as written by
`keras.saving.serialize_keras_object`, or an instance; the CLI lists its
choices from `Registry.names()`.
"""

import inspect

import keras

from tfvae import _checks


class Registry:
    """The registered classes of one family of parts.

    Args:
        family: the argument name the family is passed as (`"prior"`), used
            in error messages.
        base: the base class every part of the family derives from.

    A family's module declares its registry and registers each class
    (`PRIORS = Registry("prior", Prior)`, then `@PRIORS.register("vamp")`
    on `class VampPrior(Prior)`).

    Example:

    >>> from tfvae.priors import PRIORS
    >>> PRIORS.names()
    ['mixture', 'standard_normal', 'vamp']
    >>> PRIORS.get({"class_name": "vamp", "config": {"num_components": 10}}).num_components
    10
    """

    def __init__(self, family, base):
        self.family = family
        self.base = base
        self.classes = {}

    def register(self, name):
        """A class decorator registering the class under `name` (and with Keras)."""
        def decorator(cls):
            cls = keras.saving.register_keras_serializable(package="tfvae")(cls)
            cls.registered_name = name
            self.classes[name] = cls
            return cls

        return decorator

    def names(self):
        """The registered short names, sorted."""
        return sorted(self.classes)

    def get(self, identifier, **context):
        """The part named by `identifier`.

        Args:
            identifier: a registered short name, a dict
                `{"class_name": ..., "config": ...}` (a serialized part, or a
                short name with its options), or an instance of the family.
            **context: arguments the model supplies (e.g. `event_shape`),
                passed to the constructor of a part built from a name or a
                dict when the constructor takes them and they are not given.

        Returns:
            An instance of the family's base class.

        Raises:
            ValueError: for an unknown name or a malformed dict.
            TypeError: for any other kind of identifier.
        """
        if isinstance(identifier, self.base):
            return identifier
        if isinstance(identifier, str):
            _checks.one_of(self.family, identifier, self.classes)
            cls = self.classes[identifier]
            return cls(**_accepted(cls, context))
        if isinstance(identifier, dict):
            if "class_name" not in identifier:
                raise ValueError(_checks.invalid(self.family, "a dict with 'class_name' and 'config'", identifier))
            cls = self.class_of(identifier["class_name"])
            config = dict(identifier.get("config") or {})
            config = {**_accepted(cls, context), **config}
            return cls.from_config(config)
        raise TypeError(_checks.invalid(
            self.family, f"one of {self.names()}, a config dict or a {self.base.__name__} instance", identifier))

    def class_of(self, name):
        """The class registered as `name`, or whose class name is `name` (as a serialized part names it).

        Raises:
            ValueError: for an unknown name.
        """
        cls = self.classes.get(name) or next(
            (candidate for candidate in self.classes.values() if candidate.__name__ == name), None)
        if cls is None:
            raise ValueError(_checks.invalid(self.family, f"one of {self.names()} or their class names", name))
        return cls

    def name_of(self, part):
        """The short name `part`'s class is registered under."""
        return type(part).registered_name


def _accepted(cls, context):
    """The items of `context` that `cls.__init__` takes (all of them if it takes `**kwargs`)."""
    parameters = inspect.signature(cls.__init__).parameters
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values()):
        return dict(context)
    return {key: value for key, value in context.items() if key in parameters}


def serialize(part):
    """`part` as a JSON-serializable dict that `Registry.get` reads back."""
    return keras.saving.serialize_keras_object(part)
