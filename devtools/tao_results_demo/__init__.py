"""The demo and the local stack: the real function on moto and the TAO emulator, on this machine.

``python -m tao_results_demo`` is ``make demo`` (:mod:`tao_results_demo.demo`);
``python -m tao_results_demo.local_stack`` is ``make local-stack``
(:mod:`tao_results_demo.local_stack`); :mod:`tao_results_demo.demo_metrics` records what AWS would
publish about a demo run. Development only: never deployed.
"""
