"""Offline trainer: CWL recordings to an honestly evaluated BEIRA model bundle.

Imports the model and the preprocessing from :mod:`beira_rt` (one
implementation for training and live use); :mod:`beira_rt` never imports this
package.

The pipeline (``beira-train``, :func:`offline.pipeline.run_training`):

1. :mod:`offline.loader` reads the recording (EEG, volume markers, ROI BOLD at
   the model rate on the EEG's time axis).
2. :mod:`offline.dataset` runs the live engine's causal preprocessing over the
   whole recording, aligns the targets with the BOLD delay, splits
   chronologically (:mod:`offline.split`: train | validation | test = last
   60 s) and z-scores EEG and BOLD with training-block statistics.
3. :mod:`offline.train` trains on random windows from the training block and
   keeps the checkpoint with the best validation r.
4. :mod:`offline.metrics` scores the test block twice: the offline read-out
   (tiled windows, centre region) and the live read-out at each look-ahead
   (``beira_rt.inference.predict_at``); the bundle's default look-ahead is
   chosen on the validation block.
5. :mod:`offline.baseline` fits the linear baseline (HRF-convolved log band
   power, ridge) on the same split; :mod:`offline.report` draws the figures.
6. :mod:`offline.evaluate` re-scores a saved bundle on any recording
   (``beira-train evaluate``).

Only training targets reach the loss and the statistics; only validation
targets choose anything; test targets are scored once.
"""
