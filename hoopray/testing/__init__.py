"""Test and demo support: nothing here identifies a player in real video.

- :mod:`~hoopray.testing.replay`: test doubles of the detector, tracker and reader that
  REPLAY the ground-truth labels of generated games (``Replay*``, named so), with misses,
  jitter and misreads on request;
- :mod:`~hoopray.testing.synthetic`: the synthetic world, games of stamped clips with
  their labels and rosters, at several difficulties;
- :mod:`~hoopray.testing.tiny`: tiny randomly initialised models of the real
  architectures, saved like real weights;
- :mod:`~hoopray.testing.smoke` and :mod:`~hoopray.testing.demo`: the generated inputs of
  the smoke run (``+experiment=smoke``) and of the demo (``+experiment=demo``), and when
  ``make run`` runs the demo.

Production code never imports this package, except the job's entry points, which prepare
the smoke and demo inputs and run the demo (lazily, inside :func:`hoopray.job.run_job`
and ``jobs/process_games.py``); ``tests/test_package.py`` checks it.
"""
