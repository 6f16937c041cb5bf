"""Split nested state (optimizer state dicts, RNG states) into tensors and a JSON skeleton.

safetensors holds flat ``name -> tensor`` maps only. :func:`split` turns a nested structure of
dicts, lists, tensors and plain values into such a map plus a JSON-able skeleton in which each
tensor is replaced by its name; :func:`join` rebuilds the structure. Dict keys keep their type
(optimizer state is keyed by integers), so dicts are stored as lists of ``[key, value]`` pairs.
"""

from __future__ import annotations

from typing import Any

import torch

_TENSOR = "__tensor__"
_DICT = "__dict__"
_TUPLE = "__tuple__"


def split(tree: Any, prefix: str) -> tuple[dict[str, torch.Tensor], Any]:
    """``(tensors, skeleton)`` for ``tree``; tensor names start with ``prefix``."""
    tensors: dict[str, torch.Tensor] = {}

    def visit(node: Any, path: str) -> Any:
        if isinstance(node, torch.Tensor):
            tensors[path] = node
            return {_TENSOR: path}
        if isinstance(node, dict):
            return {_DICT: [[key, visit(value, f"{path}/{key}")] for key, value in node.items()]}
        if isinstance(node, tuple):
            return {_TUPLE: [visit(value, f"{path}/{i}") for i, value in enumerate(node)]}
        if isinstance(node, list):
            return [visit(value, f"{path}/{i}") for i, value in enumerate(node)]
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise TypeError(f"cannot store a {type(node).__name__} at '{path}' in a checkpoint")

    return tensors, visit(tree, prefix)


def join(tensors: dict[str, torch.Tensor], skeleton: Any) -> Any:
    """The inverse of :func:`split`."""
    if isinstance(skeleton, dict):
        if _TENSOR in skeleton:
            return tensors[skeleton[_TENSOR]]
        if _DICT in skeleton:
            return {key: join(tensors, value) for key, value in skeleton[_DICT]}
        if _TUPLE in skeleton:
            return tuple(join(tensors, value) for value in skeleton[_TUPLE])
    if isinstance(skeleton, list):
        return [join(tensors, value) for value in skeleton]
    return skeleton
