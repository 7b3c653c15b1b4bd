"""Flat and railed EEG channels: detected on the raw input, reported by name, repaired.

A **flat** channel (an electrode off, a broken lead, an amplifier channel
stuck at zero) and a **railed** one (saturated at the amplifier's limit, or
far beyond any EEG) carry no brain signal; the common average reference
would spread a railed channel's steps into every channel. The
:class:`ChannelMonitor` looks at the raw input (microvolts) before the
filters:

- railed: a sample with ``|x| >= rail_uv`` makes the channel bad at once,
  from the start of the chunk that holds it (before it reaches the filters);
- flat: a peak-to-peak below ``flat_uv`` over a block of ``block_seconds``;
- a bad channel is good again after two consecutive blocks with a signal
  (peak-to-peak >= ``flat_uv`` and no sample beyond ``rail_uv``).

A bad channel is replaced by its spherical-spline interpolation from the
good ones (MNE's ``interpolate_bads`` with the channels' standard 10-05
positions, computed once per set of bad channels); without positions for
every channel, by the mean of the good channels (which the common average
then turns into zero). At each change the repaired channels' band-pass
filters restart at steady state, so the switch does not ring.
"""

from __future__ import annotations

import numpy as np

from beira_rt._logging import logger

__all__ = ["ChannelMonitor", "standard_montage"]


def standard_montage() -> str:
    """Name of MNE's template 10-05 montage (``colin27_1005`` from MNE 1.13, ``standard_1005`` before)."""
    import mne

    builtin = mne.channels.get_builtin_montages()
    return "colin27_1005" if "colin27_1005" in builtin else "standard_1005"


def _positions_known(ch_names: tuple[str, ...]) -> bool:
    import mne

    names = {n.casefold() for n in mne.channels.make_standard_montage(standard_montage()).ch_names}
    return all(ch.casefold() in names for ch in ch_names)


class ChannelMonitor:
    """Detect flat / railed channels in raw EEG chunks and replace them.

    Parameters
    ----------
    ch_names : tuple of str
        Channels, in the order of the chunks' columns.
    sfreq : float
        Input rate in Hz.
    flat_uv : float
        Peak-to-peak (µV) below which a block of a channel is flat.
    rail_uv : float
        Absolute value (µV) at or above which a sample is railed.
    block_seconds : float
        Length of the detection blocks in seconds.
    repair : bool
        Replace bad channels (True) or only report them (False).
    """

    def __init__(
        self,
        ch_names: tuple[str, ...],
        sfreq: float,
        flat_uv: float = 0.5,
        rail_uv: float = 5000.0,
        block_seconds: float = 0.5,
        *,
        repair: bool = True,
    ) -> None:
        self.repair = bool(repair)
        self.ch_names = tuple(ch_names)
        self.n = len(self.ch_names)
        self.flat_uv = float(flat_uv)
        self.rail_uv = float(rail_uv)
        self._block = max(1, round(block_seconds * sfreq))
        self._lo = np.full(self.n, np.inf)
        self._hi = np.full(self.n, -np.inf)
        self._seen = 0
        self._good_blocks = np.zeros(self.n, dtype=np.int64)
        self.kind: dict[str, str] = {}  #: bad channel name -> "flat" | "railed"
        self._bad = np.zeros(self.n, dtype=bool)
        try:
            self._splines = self.repair and self.n >= 4 and _positions_known(self.ch_names)
        except Exception as err:  # no montage available: the fallback still repairs
            logger.info("no channel positions for spherical splines (%s); bad channels get the mean", err)
            self._splines = False
        if self._splines:  # warm MNE's interpolation up now: its first call takes ~0.4 s, later ones ~10 ms
            self._bad[0] = True
            self._spline_matrix()
            self._bad[0] = False
        self.method = "spherical-spline interpolation" if self._splines else "mean of the good channels"
        if not self.repair:
            self.method = "nothing (live.repair_channels is off)"
        self._matrix = np.eye(self.n)
        self.changes = 0  #: changes of the bad set

    @property
    def bad(self) -> dict[str, str]:
        """Bad channels now: name -> ``"flat"`` or ``"railed"``."""
        return dict(self.kind)

    def process(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Check a chunk and repair its bad channels.

        Parameters
        ----------
        x : ndarray, shape (n_samples, n_channels)
            Raw samples in µV (finite).

        Returns
        -------
        x : ndarray, shape (n_samples, n_channels)
            The chunk with bad channels replaced (the input itself when none is bad).
        restart : ndarray of bool, shape (n_channels,) | None
            Channels whose filters should restart (the bad set changed), else None.
        """
        before = self._bad.copy()
        railed = (np.abs(x) >= self.rail_uv).any(axis=0)
        for i in np.flatnonzero(railed & ~self._bad):
            self._mark(i, "railed")
        pos = 0
        while pos < x.shape[0]:
            take = min(x.shape[0] - pos, self._block - self._seen)
            part = x[pos : pos + take]
            self._lo = np.minimum(self._lo, part.min(axis=0))
            self._hi = np.maximum(self._hi, part.max(axis=0))
            self._seen += take
            pos += take
            if self._seen == self._block:
                self._end_block()
        changed = self._bad != before
        if changed.any():
            self._update_matrix()
            self.changes += 1
        if not self._bad.any() or not self.repair:
            return x, (changed if changed.any() and self.repair else None)
        return x @ self._matrix.T, (changed if changed.any() else None)

    def _end_block(self) -> None:
        ptp = self._hi - self._lo
        extreme = np.maximum(np.abs(self._hi), np.abs(self._lo))
        flat = ptp < self.flat_uv
        for i in np.flatnonzero(flat & ~self._bad):
            self._mark(i, "railed" if extreme[i] >= self.rail_uv else "flat")
        fine = ~flat & (extreme < self.rail_uv)
        self._good_blocks = np.where(fine, self._good_blocks + 1, 0)
        for i in np.flatnonzero(self._bad & (self._good_blocks >= 2)):
            name = self.ch_names[i]
            logger.warning(
                "channel %s carries a signal again (was %s); it is used again", name, self.kind[name]
            )
            del self.kind[name]
            self._bad[i] = False
        self._lo[:] = np.inf
        self._hi[:] = -np.inf
        self._seen = 0

    def _mark(self, i: int, kind: str) -> None:
        name = self.ch_names[i]
        self._bad[i] = True
        self._good_blocks[i] = 0
        self.kind[name] = kind
        logger.warning("channel %s is %s; it is replaced by %s", name, kind, self.method)

    def _update_matrix(self) -> None:
        bad = self._bad
        m = np.eye(self.n)
        good = np.flatnonzero(~bad)
        if not bad.any() or good.size == 0:
            self._matrix = m
            return
        if self._splines and good.size >= 3:
            try:
                m = self._spline_matrix()
            except Exception as err:  # degenerate geometry: fall back, say so
                logger.warning(
                    "spherical-spline interpolation failed (%s); using the mean of good channels", err
                )
                m = self._mean_matrix()
        else:
            m = self._mean_matrix()
        self._matrix = m

    def _mean_matrix(self) -> np.ndarray:
        m = np.eye(self.n)
        good = ~self._bad
        m[self._bad] = 0.0
        m[np.ix_(self._bad, good)] = 1.0 / good.sum()
        return m

    def _spline_matrix(self) -> np.ndarray:
        import mne

        info = mne.create_info(list(self.ch_names), 1000.0, "eeg")
        info.set_montage(standard_montage(), match_case=False, verbose=False)
        raw = mne.io.RawArray(np.eye(self.n), info, verbose=False)
        raw.info["bads"] = [self.ch_names[i] for i in np.flatnonzero(self._bad)]
        # template positions: the standard head origin, not a sphere fitted to a few electrodes
        raw.interpolate_bads(reset_bads=True, origin=(0.0, 0.0, 0.04), verbose=False)
        return raw.get_data()
