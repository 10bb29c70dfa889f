"""How the demo's stages run.

A stage's work is one tool process (or a few lines of Python); up to
``jobs`` stages whose inputs are ready run at once. A stage that succeeds
gets a marker, ``logs/<stage>.done``; a stage with a marker whose outputs
all exist is skipped, so an interrupted demo resumes where it stopped.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


class DemoError(RuntimeError):
    """A stage failed or the work dir cannot be used."""


@dataclass
class Stage:
    """One step of the demo.

    Args:
        name (str): Stage name, also its log file's name.
        outputs (list[str]): Files the stage produces. It counts as done
            when they exist and it was marked finished.
        run (Callable[[str], None]): Does the work; gets the log path.
        deps (tuple[str, ...]): Stages that must finish first.
    """
    name: str
    outputs: list[str]
    run: Callable[[str], None] = field(repr=False)
    deps: tuple[str, ...] = ()


def write_json(path: str, data: dict) -> None:
    """Write ``data`` to ``path`` whole or not at all."""
    from mmspd.evaluation import atomic_write
    atomic_write(path, json.dumps(data, indent=2) + '\n')


def read_json(path: str) -> dict:
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def show(path: str) -> str:
    """``path`` relative to the current directory when inside it."""
    rel = osp.relpath(path)
    return path if rel.startswith(os.pardir) else rel


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return ''


def run_tool(stage: str, args: list[str], log_path: str,
             threads: int) -> None:
    """Run ``python TOOL ARGS...`` with its output going to ``log_path``.

    Args:
        stage (str): Stage name, for messages.
        args (list[str]): The tool's path and its arguments.
        log_path (str): Where the tool's output goes.
        threads (int): CPU threads for the tool, unless the environment
            already sets ``OMP_NUM_THREADS``.

    Raises:
        DemoError: If the tool is missing or exits with a non-zero status;
            the message names the stage and the log file.
    """
    tool = args[0]
    if not osp.isfile(tool):
        raise DemoError(f'stage {stage!r} needs {show(tool)}, which does '
                        'not exist')
    env = dict(os.environ)
    # The tools import mmspd; a checkout that is not pip-installed works too.
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO, env.get('PYTHONPATH')) if p)
    env.setdefault('PYTHONUNBUFFERED', '1')
    env.setdefault('OMP_NUM_THREADS', str(threads))
    command = [sys.executable, *args]
    with open(log_path, 'w', encoding='utf-8') as log:
        log.write('$ ' + ' '.join(command) + '\n')
        log.flush()
        status = subprocess.run(command, cwd=os.getcwd(), env=env,
                                stdout=log, stderr=subprocess.STDOUT,
                                check=False).returncode
    if status != 0:
        raise DemoError(
            f'stage {stage!r} failed (exit status {status}); full log: '
            f'{show(log_path)}\n--- last lines ---\n{_tail(log_path)}')


def _minutes(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f'{minutes}:{seconds:02d}'


def run_stages(stages: list[Stage], log_dir: str, jobs: int) -> dict:
    """Run every stage not yet done, up to ``jobs`` at once.

    After a failure no new stage starts; those running are let finish, so
    their outputs are kept, then the first error is raised.

    Args:
        stages (list[Stage]): In a good order: each after its deps.
        log_dir (str): Where the logs and ``.done`` markers go.
        jobs (int): How many stages may run at once.

    Returns:
        dict: ``seconds`` per stage (from its marker when skipped) and the
        ``skipped`` stages' names.
    """
    start = time.time()
    total = len(stages) + 1  # and the summary
    number = {st.name: i for i, st in enumerate(stages, 1)}
    seconds: dict[str, float | None] = {}
    skipped, done, pending = [], set(), []

    def marker(stage: Stage) -> str:
        # Some tools write their outputs step by step: an output file
        # alone does not mean the stage finished.
        return osp.join(log_dir, f'{stage.name}.done')

    def log(stage: Stage) -> str:
        return osp.join(log_dir, f'{stage.name}.log')

    def say(stage: Stage, what: str) -> None:
        print(f'[{number[stage.name]}/{total}] {stage.name}: {what}',
              flush=True)

    for stage in stages:
        if osp.exists(marker(stage)) and all(map(osp.exists,
                                                 stage.outputs)):
            say(stage, 'done before, skipped')
            skipped.append(stage.name)
            seconds[stage.name] = read_json(marker(stage)).get('seconds')
            done.add(stage.name)
        else:
            pending.append(stage)

    def work(stage: Stage) -> float:
        t0 = time.time()
        stage.run(log(stage))
        return time.time() - t0

    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        running = {}
        while pending or running:
            ready = [st for st in pending if set(st.deps) <= done]
            while not errors and ready and len(running) < jobs:
                stage = ready.pop(0)
                pending.remove(stage)
                say(stage, f'running (log: {show(log(stage))})')
                running[pool.submit(work, stage)] = stage
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                stage = running.pop(future)
                try:
                    took = round(future.result(), 1)
                except BaseException as err:  # noqa: BLE001
                    errors.append(err)
                    continue
                done.add(stage.name)
                seconds[stage.name] = took
                write_json(marker(stage), {'seconds': took})
                say(stage, f'done in {_minutes(took)} (total '
                    f'{_minutes(time.time() - start)})')
    if errors:
        raise errors[0]
    print(f'[{total}/{total}] summary', flush=True)
    return {'seconds': seconds, 'skipped': skipped}
