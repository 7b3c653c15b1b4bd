"""beira-rt: live prediction of subcortical sBOLD activity from scalp EEG with BEIRA."""

from beira_rt._logging import logger, set_log_level

__version__ = "0.1.0"

__all__ = ["__version__", "logger", "set_log_level"]
