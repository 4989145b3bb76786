"""Deep Nash Q-learning on RLlib's new API stack: ``NashQConfig`` / ``NashQ`` (see :mod:`.nash_q`)."""

from nashrl.algorithms.nash_q.nash_q import MODULE_ID, NashQ, NashQConfig

__all__ = ["MODULE_ID", "NashQ", "NashQConfig"]
