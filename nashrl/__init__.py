"""nashrl: Deep Nash Q-learning for oligopoly market games on Ray RLlib.

Importing nashrl registers its RLlib environments (``nashrl/<market type>`` and the generic
``nashrl/market``) and the ``NashQ`` algorithm with Ray Tune, so ``tune.Tuner("NashQ", ...)``,
``NashQConfig().environment("nashrl/cournot", ...)`` and ``Algorithm.from_checkpoint(path)``
(whose pickled config imports nashrl) work in any process.
"""

__version__ = "0.1.0"

from nashrl.threads import configure_environment

configure_environment()  # before numba or torch start a thread pool (see nashrl.threads)


def _register() -> None:
    from ray.tune.registry import register_trainable

    from nashrl.algorithms.nash_q import NashQ
    from nashrl.markets import register_rllib_envs

    register_rllib_envs()
    register_trainable("NashQ", NashQ)


_register()
