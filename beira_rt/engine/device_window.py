"""The model-rate window, kept on the inference device.

A buffer of twice the window length holds every sample twice (at ``i`` and
``i + W``), so that the last ``W`` samples are always one contiguous slice:
an append writes the new samples (at most four small slice copies), a read is
a view (no copy of the window, no roll).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["DeviceWindow"]


class DeviceWindow:
    """The last ``n_times`` model-rate samples of ``n_chans`` channels on ``device``.

    Parameters
    ----------
    n_chans : int
        Channels.
    n_times : int
        Window length ``W`` in samples.
    device : torch.device | str
        Where the window lives (``cuda`` keeps it GPU-resident).
    dtype : torch.dtype
        Element type (the model's, float32).
    """

    def __init__(
        self,
        n_chans: int,
        n_times: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.n_chans = int(n_chans)
        self.n_times = int(n_times)
        self.device = torch.device(device)
        self.dtype = dtype
        self._buf = torch.zeros((self.n_chans, 2 * self.n_times), dtype=dtype, device=self.device)
        self.count = 0  #: samples appended since the last reset
        self.epoch = 0  #: resets so far (lets derived caches notice a reset)

    def reset(self) -> None:
        """Forget the content (the buffer is reused; it is refilled before it is read)."""
        self.count = 0
        self.epoch += 1

    @property
    def full(self) -> bool:
        """Whether ``n_times`` samples have been appended since the last reset."""
        return self.count >= self.n_times

    def append(self, z: np.ndarray | torch.Tensor) -> None:
        """Append samples.

        Parameters
        ----------
        z : ndarray or tensor, shape (n_chans, n_samples)
            New samples, oldest first (converted to the window's dtype and device).
        """
        if z.ndim != 2 or z.shape[0] != self.n_chans:
            raise ValueError(f"expected samples of shape ({self.n_chans}, n_samples), got {z.shape}.")
        m = z.shape[1]
        if m == 0:
            return
        W = self.n_times
        if m > W:  # only the newest W can be in the window
            self.count += m - W
            z = z[:, m - W :]
            m = W
        if isinstance(z, torch.Tensor):
            t = z.to(self.device, self.dtype)
        else:
            t = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)).to(self.device, self.dtype)
        start = self.count % W
        first = min(m, W - start)
        self._buf[:, start : start + first] = t[:, :first]
        self._buf[:, start + W : start + W + first] = t[:, :first]
        rest = m - first
        if rest:
            self._buf[:, :rest] = t[:, first:]
            self._buf[:, W : W + rest] = t[:, first:]
        self.count += m

    def latest(self, k: int) -> torch.Tensor:
        """The last ``k`` samples (``k <= min(count, n_times)``), oldest first: a view of shape (n_chans, k)."""
        if not 0 <= k <= min(self.count, self.n_times):
            raise ValueError(
                f"cannot take the last {k} samples of a window holding {min(self.count, self.n_times)}."
            )
        hi = self.count % self.n_times + self.n_times
        return self._buf[:, hi - k : hi]

    def view(self) -> torch.Tensor:
        """The last ``n_times`` samples, oldest first: a view of shape (n_chans, n_times).

        Raises
        ------
        RuntimeError
            When fewer than ``n_times`` samples were appended since the last reset.
        """
        if not self.full:
            raise RuntimeError(
                f"the window holds {self.count} of {self.n_times} samples since the last reset; "
                "check DeviceWindow.full before calling view()."
            )
        lo = self.count % self.n_times
        return self._buf[:, lo : lo + self.n_times]
