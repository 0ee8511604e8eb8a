"""NNI's ``nni.utils.merge_parameter``, which NNI's example trials call on their arguments."""

from typing import Any


def merge_parameter(base_params: Any, override_params: dict[str, Any]) -> Any:
    """``base_params`` (an ``argparse.Namespace`` or a dict) with the tuner's values set on it,
    each cast to the type of the value it replaces; a name it does not have is an error, as NNI's."""
    is_dict = isinstance(base_params, dict)
    for name, value in (override_params or {}).items():
        if not (name in base_params if is_dict else hasattr(base_params, name)):
            raise ValueError(f"merge_parameter: {name!r} is not a parameter of {type(base_params).__name__}")
        old = base_params[name] if is_dict else getattr(base_params, name)
        if old is not None and value is not None and type(old) is not type(value):
            value = type(old)(value)
        if is_dict:
            base_params[name] = value
        else:
            setattr(base_params, name, value)
    return base_params
