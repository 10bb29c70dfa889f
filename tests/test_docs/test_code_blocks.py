"""The code blocks of README.md and docs/*.md do what the text says.

Which blocks run: every fenced block whose language is ``python`` runs, as
written, in a fresh namespace, from the repository root (a traceback names
the Markdown file and its line). A Python block that is not meant to run
(one that needs data, a GPU or a full-size model) says so with ``no-run``
after the language, and the text around it says why:
```` ```python no-run ````. Shell blocks (``bash``,
``shell``) and the rest (``bibtex``, ...) never run here: they need the
data sets, GPUs or the set-up of a new machine. Of those, the files under
``tools/`` and ``configs/`` that shell blocks name must exist.

Python blocks that set config variables (``optim_wrapper``,
``custom_hooks``, ...) are also read as MMEngine reads a config file
(``custom_imports`` and ``_base_`` included), every type they name (hooks,
loops, transforms, optimizers, wrappers and constructors) must be
registered, and an ``optim_wrapper`` that needs no base config and no
model-specific constructor is built on a small model and steps once.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / 'README.md'
MARKDOWN = [README, *sorted((REPO / 'docs').glob('*.md'))]
FENCE = re.compile(r'^```(\S*)[ \t]*(.*)$')
CONFIG_KEYS = ('optim_wrapper', 'custom_hooks', 'custom_imports', '_base_')
SHELL = ('bash', 'shell', 'sh', 'console')
# Constructors that build for any model (others expect, e.g., BEiT's).
GENERIC_CONSTRUCTORS = (None, 'DefaultOptimWrapperConstructor',
                        'SPDOptimWrapperConstructor')
# A path in this repository: not after a '/', '$' or word character
# (mmseg's own tools/ and $VARIABLES are someone else's).
REPO_PATH = re.compile(
    r'(?<![\w/$.-])((?:tools|configs)/[\w./-]*\w\.(?:py|sh))\b')


def code_blocks(path: Path) -> list:
    """``(language, options, first line number, code)`` of each fenced
    block of a Markdown file."""
    blocks, current = [], None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = FENCE.match(line)
        if current is None and match:
            current = (match[1], match[2].split(), number + 1, [])
        elif current is not None and line.startswith('```'):
            language, options, start, lines = current
            blocks.append((language, options, start, '\n'.join(lines)))
            current = None
        elif current is not None:
            current[3].append(line)
    assert current is None, f'{path}: the block at line {current[2]} is ' \
        'not closed'
    return blocks


def runnable(path: Path) -> list:
    return [
        # Blank lines first: line numbers in tracebacks are the file's.
        pytest.param(path, '\n' * (start - 1) + code,
                     id=f'{path.name}:{start}')
        for language, options, start, code in code_blocks(path)
        if language == 'python' and 'no-run' not in options
    ]


def test_the_docs_have_blocks_that_run():
    """The selection below found the Python snippets of the README and of
    docs/optimizer.md (and the docs folder is where it is looked for)."""
    assert len(runnable(README)) >= 3
    assert len(runnable(REPO / 'docs' / 'optimizer.md')) >= 5


@pytest.mark.parametrize(
    ('path', 'code'),
    [block for path in MARKDOWN for block in runnable(path)])
def test_python_block_runs_as_written(path, code, monkeypatch):
    monkeypatch.chdir(REPO)
    namespace = {}
    exec(compile(code, str(path), 'exec'), namespace)  # noqa: S102
    if any(key in namespace for key in CONFIG_KEYS):
        check_config(code)


def _types(value) -> list:
    """The ``type`` of a config dict, or of each dict of a list."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return [item['type'] for item in items
            if isinstance(item, dict) and isinstance(item.get('type'), str)]


def check_config(code: str) -> None:
    """Read ``code`` as a config file; look its types up; build and step
    its optimizer wrapper when it needs no base config."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import (
        HOOKS,
        LOOPS,
        OPTIM_WRAPPER_CONSTRUCTORS,
        OPTIM_WRAPPERS,
        OPTIMIZERS,
        TRANSFORMS,
    )

    cfg = Config.fromstring(code, '.py')
    wanted = [(HOOKS, t) for t in _types(cfg.get('custom_hooks', []))]
    wanted += [(LOOPS, t) for key in ('train_cfg', 'val_cfg', 'test_cfg')
               for t in _types(cfg.get(key, {}))]
    for key, value in cfg.items():
        if key.endswith('pipeline'):
            wanted += [(TRANSFORMS, t) for t in _types(value)]
    wrapper = cfg.get('optim_wrapper', {})
    wanted += [(OPTIM_WRAPPERS, t) for t in _types(wrapper)]
    wanted += [(OPTIMIZERS, t) for t in _types(wrapper.get('optimizer'))]
    wanted += [(OPTIM_WRAPPER_CONSTRUCTORS, wrapper[k])
               for k in ('constructor', 'base_constructor') if k in wrapper]
    with DefaultScope.overwrite_default_scope('mmseg'):
        unknown = [t for registry, t in wanted if registry.get(t) is None]
        assert not unknown, f'types not registered: {unknown}'
        constructor = wrapper.get('base_constructor',
                                  wrapper.get('constructor'))
        if ('_base_' in code or 'type' not in wrapper
                or constructor not in GENERIC_CONSTRUCTORS):
            return  # needs the model of its base config or constructor
        from mmengine.optim import build_optim_wrapper
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            OrderedDict(conv=torch.nn.Conv2d(3, 4, 3),
                        norm=torch.nn.BatchNorm2d(4)))
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        before = model.conv.weight.detach().clone()
        optim_wrapper.update_params(model(torch.randn(2, 3, 8, 8)).square()
                                    .mean())
        assert not torch.equal(before, model.conv.weight)


@pytest.mark.parametrize('path', MARKDOWN, ids=lambda path: path.name)
def test_files_shell_blocks_name_exist(path):
    named = {
        name
        for language, _, _, code in code_blocks(path) if language in SHELL
        for name in REPO_PATH.findall(code)
    }
    if path == README:
        assert 'tools/train.py' in named or 'tools/dist_train.sh' in named
    missing = sorted(p for p in named if not (REPO / p).is_file())
    assert not missing, \
        f'{path.name} names files that do not exist: {missing}'
