"""The CPU demo: does SPD keep more of a broad pre-training's robustness?

This directory is not part of the installed ``mmspd`` package: users do
not import it. Run it with ``python demo/run_demo.py`` (or ``make demo``);
docs/demo.md describes the setting and records a run. Read it in this
order:

- ``run_demo.py``: what the demo does, its settings and its command line;
- ``stages.py``: the methods compared, the work dir and every stage (the
  tool command lines a user would type);
- ``scheduler.py``: how stages run (one process per tool call, two at a
  time, skipped when already done);
- ``summary.py``: the table, ``summary.json`` and the figures;
- ``data.py`` and ``generate_data.py``: the synthetic data and a command
  line to write it;
- ``configs/``: the demo's model and training configs.
"""
