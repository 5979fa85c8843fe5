"""Safe evaluation of the Python-like strings found in zoo-format configs.

rl-baselines3-zoo calls ``eval`` on strings such as ``"dict(net_arch=[64, 64], activation_fn=nn.ReLU)"``.
Here the string is parsed with :mod:`ast` and only an allow-list of constructs is evaluated:

- literals (numbers, strings, booleans, ``None``), lists, tuples, sets and dicts of them,
  with unary ``+``/``-`` and ``+ - * /`` between numbers;
- calls of ``dict``, ``list``, ``tuple`` and ``float`` whose arguments are themselves allowed;
- ``nn.X``, ``th.nn.X`` and ``torch.nn.X`` (and ``th.optim.X``) classes;
- the bare names in :data:`SAFE_NAMES` (``HerReplayBuffer``, ``RMSpropTFLike``, ...);
- dotted paths to classes inside the trusted packages of :data:`TRUSTED_MODULES`.

Anything else (a call to ``__import__``, a lambda, attribute access on another module, a function that is not a class,
private attributes) raises :class:`~sb3_ext.errors.UnsafeExpressionError` quoting the offending text and the key.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from typing import Any

from sb3_ext.errors import UnsafeExpressionError

__all__ = ["SAFE_NAMES", "TRUSTED_MODULES", "add_trusted_module", "resolve_class", "safe_eval"]

#: Top-level packages whose classes a config may name by dotted path.
TRUSTED_MODULES: set[str] = {"stable_baselines3", "sb3_contrib", "sb3_ext", "gymnasium", "torch", "rl_zoo3"}

#: Bare names a config may use, as rl-baselines3-zoo has them in scope when it evaluates strings.
SAFE_NAMES: dict[str, str] = {
    "nn": "torch.nn",
    "th": "torch",
    "torch": "torch",
    "HerReplayBuffer": "stable_baselines3.HerReplayBuffer",
    "ReplayBuffer": "stable_baselines3.common.buffers.ReplayBuffer",
    "DictReplayBuffer": "stable_baselines3.common.buffers.DictReplayBuffer",
    "NStepReplayBuffer": "stable_baselines3.common.buffers.NStepReplayBuffer",
    "RMSpropTFLike": "stable_baselines3.common.sb2_compat.rmsprop_tf_like.RMSpropTFLike",
    "PrioritizedReplayBuffer": "sb3_ext.common.buffers.PrioritizedReplayBuffer",
}

_CALLABLES: dict[str, Any] = {"dict": dict, "list": list, "tuple": tuple, "float": float}
_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}
_MAX_LENGTH = 10_000
_MAX_DEPTH = 32
_ALLOWED = "literals, dict()/list()/tuple() calls, nn.*/th.nn.* classes and classes from " + ", ".join(sorted(TRUSTED_MODULES))


def add_trusted_module(name: str) -> None:
    """
    Allow configs to name classes from another top-level package (for example your own wrappers).

    :param name: top-level package name, e.g. ``"my_project"``
    """
    if not name.isidentifier():
        raise ValueError(f"'{name}' is not a valid top-level package name")
    TRUSTED_MODULES.add(name)


class _Evaluator:
    def __init__(self, text: str, key: str) -> None:
        self.text = text
        self.key = key

    def refuse(self, node: ast.AST | None, why: str) -> UnsafeExpressionError:
        segment = ast.get_source_segment(self.text, node) if node is not None else None
        where = f" ('{segment}')" if segment and segment != self.text else ""
        return UnsafeExpressionError(f'{self.key}: refused "{self.text}": {why}{where}; allowed are {_ALLOWED}')

    def eval(self, node: ast.AST, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise self.refuse(None, "nesting too deep")
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bytes):
                raise self.refuse(node, "bytes literals are not allowed")
            return node.value
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = [self.eval(elt, depth + 1) for elt in node.elts]
            return {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)](items)
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise self.refuse(node, "'**' unpacking is not allowed")
            return {self.eval(k, depth + 1): self.eval(v, depth + 1) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.eval(node.operand, depth + 1)
            if not _is_number(operand):
                raise self.refuse(node, "unary minus/plus applies to numbers only")
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left, right = self.eval(node.left, depth + 1), self.eval(node.right, depth + 1)
            if not (_is_number(left) and _is_number(right)):
                raise self.refuse(node, "arithmetic applies to numbers only")
            return _BINOPS[type(node.op)](left, right)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        if isinstance(node, (ast.Name, ast.Attribute)):
            return self.path(node)
        raise self.refuse(node, f"{type(node).__name__} expressions are not allowed")

    def call(self, node: ast.Call, depth: int) -> Any:
        if not (isinstance(node.func, ast.Name) and node.func.id in _CALLABLES):
            raise self.refuse(node, "only dict(), list(), tuple() and float() may be called")
        if any(kw.arg is None for kw in node.keywords) or any(isinstance(a, ast.Starred) for a in node.args):
            raise self.refuse(node, "'*'/'**' unpacking is not allowed")
        args = [self.eval(a, depth + 1) for a in node.args]
        kwargs = {str(kw.arg): self.eval(kw.value, depth + 1) for kw in node.keywords}
        if node.func.id == "float" and (kwargs or len(args) != 1 or not isinstance(args[0], (str, int, float))):
            raise self.refuse(node, "float() takes one number or string")
        try:
            return _CALLABLES[node.func.id](*args, **kwargs)
        except (TypeError, ValueError) as exc:
            raise self.refuse(node, f"invalid call: {exc}") from None

    def path(self, node: ast.AST) -> Any:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            raise self.refuse(node, "attribute access is only allowed on dotted names")
        parts.append(node.id)
        dotted = ".".join(reversed(parts))
        obj = _resolve(dotted, self.refuse_path)
        if inspect.ismodule(obj):
            raise self.refuse_path(dotted, "is a module, not a class")
        return obj

    def refuse_path(self, dotted: str, why: str) -> UnsafeExpressionError:
        return UnsafeExpressionError(f"{self.key}: refused \"{self.text}\": '{dotted}' {why}; allowed are {_ALLOWED}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _resolve(dotted: str, refuse: Any) -> Any:
    """Resolve a dotted name to a class inside the trusted packages (or a module on the way to one)."""
    parts = dotted.split(".")
    if any(p.startswith("_") for p in parts):
        raise refuse(dotted, "uses a private name")
    head, rest = parts[0], parts[1:]
    if head in SAFE_NAMES:
        parts = SAFE_NAMES[head].split(".") + rest
    elif head not in TRUSTED_MODULES:
        raise refuse(dotted, "is not an allowed name")
    if parts[0] not in TRUSTED_MODULES:
        raise refuse(dotted, "is not inside an allowed package")
    # Import the longest importable module prefix, then walk attributes.
    obj: Any = None
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                raise refuse(dotted, f"does not exist ('{'.'.join(parts[:i])}' has no attribute '{attr}')")
            obj = getattr(obj, attr)
            if not (inspect.ismodule(obj) or inspect.isclass(obj)):
                raise refuse(dotted, "is not a class")
        return obj
    raise refuse(dotted, f"cannot be imported (is '{parts[0]}' installed?)")


def safe_eval(text: str, key: str = "value") -> Any:
    """
    Evaluate a config string with only the allowed constructs (see the module docstring).

    :param text: the string, e.g. ``"dict(net_arch=[64, 64], activation_fn=nn.ReLU)"``
    :param key: where the string comes from, quoted in error messages (e.g. ``"ppo.yml [CartPole-v1] policy_kwargs"``)
    :return: the value
    :raises UnsafeExpressionError: when the string is not valid Python or uses anything not allowed
    """
    if len(text) > _MAX_LENGTH:
        raise UnsafeExpressionError(f"{key}: refused a string of {len(text)} characters (at most {_MAX_LENGTH})")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise UnsafeExpressionError(f'{key}: "{text}" is not a valid expression ({exc.msg})') from None
    evaluator = _Evaluator(text.strip(), key)
    return evaluator.eval(tree.body)


def resolve_class(path: str | type, key: str = "value") -> type:
    """
    Turn a dotted path such as ``"sb3_contrib.common.wrappers.TimeFeatureWrapper"`` into the class it names.

    :param path: the dotted path, or a class (returned as is)
    :param key: where the path comes from, quoted in error messages
    :return: the class
    :raises UnsafeExpressionError: when the path is outside the trusted packages or does not name a class
    """
    if isinstance(path, type):
        return path
    if not isinstance(path, str):
        raise UnsafeExpressionError(f"{key}: expected a dotted path to a class, got {type(path).__name__} {path!r}")
    obj = safe_eval(path, key)
    if not isinstance(obj, type):
        raise UnsafeExpressionError(f"{key}: '{path}' does not name a class")
    return obj
