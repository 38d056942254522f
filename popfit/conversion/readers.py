"""The registry of model readers: which function reads which kind of trained model.

A reader is a function ``read(model, task=None) -> ModelSpec``; ``task``
(``"classifier"``, ``"regressor"`` or None: decided from the model) is
`popfit.convert`'s argument of that name. It is registered for the
top-level packages its models come from, as NengoDL's ``Converter.register``
registers a converter per Keras layer type::

    @register_reader("sklearn")
    def from_sklearn(model, task=None): ...

`read_model` picks the reader from the modules of the model's classes (its
own and its bases), so a user subclass of a supported model is read too. The
readers in this package register themselves when `popfit.conversion` is
imported; neither scikit-learn nor Keras is imported until a model is read.
"""

from ..exceptions import PopfitTypeError, PopfitValueError

#: (top-level package names, reader), in registration order.
_READERS = []


def register_reader(*packages):
    """Register the decorated ``read(model, task=None) -> ModelSpec`` for models from ``packages``.

    Parameters
    ----------
    *packages : str
        Module prefixes (``"sklearn"``, ``"keras"``, ``"tensorflow.python.keras"``):
        a model is read by this reader when its class or one of its base
        classes is defined in one of them (or a submodule).
    """
    def decorate(read):
        _READERS.append((packages, read))
        return read
    return decorate


def _defined_in(model, packages):
    for cls in type(model).__mro__:
        module = getattr(cls, "__module__", "") or ""
        if any(module == p or module.startswith(p + ".") for p in packages):
            return True
    return False


def read_model(model, task=None):
    """Read a supported trained model into a `popfit.conversion.spec.ModelSpec`.

    ``task``: ``"classifier"`` or ``"regressor"`` to override what the model
    says (see `popfit.convert`), or None.
    """
    if task is not None and (not isinstance(task, str)
                             or task not in ("classifier", "regressor")):
        raise PopfitValueError(
            f"task must be 'classifier', 'regressor' or None (decided from the model) "
            f"(got {task!r})")
    for packages, read in _READERS:
        if _defined_in(model, packages):
            return read(model, task=task)
    raise PopfitTypeError(
        f"model must be a fitted scikit-learn MLPClassifier or MLPRegressor (alone or at "
        f"the end of a Pipeline of scalers and PCA), or a Keras 3 model (Sequential or "
        f"functional chain of Dense layers with BatchNormalization, Dropout and "
        f"activation layers) (got {type(model).__name__}: {model!r:.200})"
    )
