"""Offline trainer: CWL recordings to an honestly evaluated BEIRA model bundle.

Imports the model and the preprocessing from :mod:`beira_rt` (one
implementation for training and live use); :mod:`beira_rt` never imports this
package.
"""
