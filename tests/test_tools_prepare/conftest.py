"""Running the data-preparation tools in this process: their ``main`` with
the exit status and output a command would give, without the start-up of a
Python with torch and mmseg for every call."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / 'tools'


def load_tool(name: str):
    """Import ``tools/<name>.py``; its sibling imports resolve as when it
    runs as a script (tools/ first on sys.path)."""
    sys.path.insert(0, str(TOOLS))
    try:
        spec = importlib.util.spec_from_file_location(f'mmspd_tool_{name}',
                                                      TOOLS / f'{name}.py')
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(TOOLS))


@pytest.fixture
def tool_module():
    """Return :func:`load_tool`: ``tool_module(name)`` imports
    ``tools/<name>.py``."""
    return load_tool


@pytest.fixture
def run_tool(capsys):
    """Return ``run(name, *args)``: ``tools/<name>.py``'s ``main(args)`` as
    a ``CompletedProcess``. ``sys.exit(message)`` and uncaught exceptions
    give status 1 with the message in ``stderr``, as the command would."""

    def run(name: str, *args) -> subprocess.CompletedProcess:
        tool = load_tool(name)
        argv = [str(a) for a in args]
        try:
            code, message = tool.main(argv), ''
        except SystemExit as exit_:
            code, message = 1, str(exit_.code)
        except Exception as error:  # noqa: BLE001 (a traceback, as a command)
            code, message = 1, f'{type(error).__name__}: {error}'
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(argv, code, out, err + message)

    return run
