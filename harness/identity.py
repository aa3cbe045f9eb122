"""One identity for everything gansweep computes: what (the effective config), from what (the data's
content fingerprint) and by which code (a version of the source that computes it).

- A **trial's identity** is ``sha256(method, config, data fingerprint, code version of the method)``. It
  keys results.parquet, the skip of finished trials, the reuse of a trial across tables, ``--resume``
  (an interrupted experiment is restored only when its trials' identities are in the current plan) and
  the reports (a cell counts the rows of one identity per seed).
- A **stage's identity** is its key (kind, config, inputs' keys; the inputs include the data
  fingerprint) plus the code version of the module that computes it. The cache folder is
  ``<kind>-<key>-<code>``, so a stage computed by other code is not reused unless asked
  (``--reuse-stale-stages``), and then the trial and its report say so.

**Code version.** A hash of the source the computation depends on: the module itself and every
``harness`` module it imports, transitively (``trainables/<method>.py`` for a trial; ``harness/train.py``
and its imports for the classifier stage). Each file is hashed as its syntax tree without docstrings,
so editing a comment or a docstring changes nothing, while any change to code does: no per-method
version number to forget to bump. The price: a refactor that keeps behaviour still recomputes.

**Data fingerprint.** A sha256 of the decoded uint8 tensors (images, labels, class names) and the
dataset's label (``cifar10 (jpeg q75)`` is not ``cifar10``), not of file names or times: the same data
unpacked again keeps its identity; a re-encoded copy does not.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

HASH_CHARS = 16  # hex characters kept of a sha256, as everywhere in gansweep
ENGINE_PACKAGE = "harness"  # imports followed when versioning code (the application layer is not imported
# by methods or stages, so it never enters their versions)


def _digest(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()[:HASH_CHARS]


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


REPO = Path(__file__).resolve().parents[1]


def _module_file(name: str) -> Path | None:
    """The source file of one of our modules (found by path, without importing it), else None."""
    base = REPO.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(tree: ast.AST) -> set[str]:
    """Names of the engine modules a module imports (``from harness.x import y``, ``import harness.x``,
    ``from harness import x``), also inside functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:  # gansweep has no relative imports
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in found if n.split(".")[0] == ENGINE_PACKAGE and _module_file(n)}


@functools.lru_cache(maxsize=None)
def _file_digest(path: Path) -> tuple[str, frozenset[str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return _digest(ast.dump(_strip_docstrings(tree))), frozenset(_imports(tree))


@functools.lru_cache(maxsize=None)
def code_version(module: str) -> str:
    """A hash of ``module``'s code and of every ``harness`` module it imports, transitively (docstrings
    and comments excluded)."""
    seen, todo, parts = set(), [module], []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        if path is None:
            continue
        digest, imports = _file_digest(path)
        parts.append(f"{name}:{digest}")
        todo.extend(sorted(imports - seen))
    return _digest("\n".join(sorted(parts)))


def data_fingerprint(images) -> str:
    """Content hash of a decoded dataset (``harness.data.Images``): its tensors' bytes, class names and
    label."""
    import torch  # here, so that importing the stage cache stays light (no torch in the lock's processes)

    h = hashlib.sha256(f"{images.label}|{list(images.classes)}|".encode())
    for t in (images.train_x, images.train_y, images.test_x, images.test_y):
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()[:HASH_CHARS]


def identity(method: str, config: dict[str, Any], data: str, code: str) -> str:
    """A trial's identity: its method, effective config (a plain dict), data fingerprint and code version."""
    return _digest(json.dumps([method, config, data, code], sort_keys=True, default=str))
