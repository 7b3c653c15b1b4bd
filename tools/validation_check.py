"""Compare closed-form configurations on the validation blocks of many synthetic subjects.

How the closed-form default's settings are chosen (README, "Without a GPU"): for each synthetic
subject (``--data-seeds``; written under ``--data-root`` as tools/accuracy_matrix.py writes them,
when missing), every configuration -- the base (``--config`` with ``--set``) and each
``--candidate`` (its overrides on top of the base) -- is fitted the way ``training.fit:
closed_form`` fits (the front end as ``model.filter_init`` fits it, batch-norm statistics, the
ridge read-out) on the **training block only**, and scored by its mean r over the ROIs on the
**validation block**. The test block is never read. A 60-s block of slow BOLD holds few
independent samples, so a difference is only worth a change when it holds over many subjects:
the paired differences against the base are printed with their standard error and on how many
subjects the candidate was better.

    .venv/bin/python tools/validation_check.py --data-root /tmp/beira_matrix --data-seeds 0 1 2 3 4 5 6 \\
        --candidate model.readout_seconds=14 --candidate "model.n_filters=3 model.spoc_bands=20"

``--generator foreign`` writes missing subjects with the independent generator of
tools/make_foreign_cwl.py instead of this project's.

The bundle is fitted again on training + validation (``training.refit``), 60 s more than these
fits see, and gains measured here have more than once been gone on the test blocks after that
refit (README, "Without a GPU"). ``--trim 60`` fits on the training block without its last 60 s:
a gain that shrinks from there to the whole block will likely shrink further with the refit.

Only configurations that take no gradient step are compared (``training.fit`` closed_form, or
auto with the read-out back end); tools/refit_check.py covers gradient training.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "tools"):  # tools/: the foreign generator
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from make_foreign_cwl import add_generator_argument, subject_loader  # noqa: E402

from beira_rt.config import BeiraConfig, load_config, override, parse_assignments  # noqa: E402
from offline.dataset import prepare_recording  # noqa: E402
from offline.pipeline import closed_form_val_r  # noqa: E402
from offline.split import Block  # noqa: E402


def parse_overrides(text: str) -> dict[str, object]:
    """``"a.b=1 c.d=[1, 2]"`` -> ``{"a.b": 1, "c.d": [1, 2]}`` (values as YAML; items split at
    spaces outside brackets)."""
    items, depth, cur = [], 0, ""
    for ch in text.strip():
        depth += (ch in "[{") - (ch in "]}")
        if ch == " " and depth == 0:
            if cur:
                items.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        items.append(cur)
    return parse_assignments(items)


def validation_r(cfg: BeiraConfig, recording, trim: float = 0.0) -> np.ndarray:
    """Per-ROI r on the validation block of a closed-form fit on the training block (without its
    last ``trim`` seconds)."""
    if cfg.gradient_steps or not cfg.readout_ridge:
        raise SystemExit(
            f"validation_check compares closed-form fits; this configuration's fit is {cfg.fit!r}."
        )
    data = prepare_recording(recording, cfg)
    train = data.split.train
    if trim > 0:
        train = Block(train.name, train.start, train.stop - round(trim * data.sfreq))
        if len(train) <= 0:
            raise SystemExit(
                f"--trim {trim} s leaves nothing of the {len(data.split.train) / data.sfreq:.0f}-s training block."
            )
    return closed_form_val_r(cfg, data, train)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", default=None, help="YAML config of the base (default: the built-in default)"
    )
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides of the base")
    parser.add_argument(
        "--candidate", action="append", default=[], metavar='"KEY=VALUE ..."',
        help="a configuration to compare: overrides on top of the base (repeat for several)",
    )  # fmt: skip
    parser.add_argument(
        "--data-root", default="/tmp/beira_matrix", help="subjects seed<N>/ (written when missing)"
    )
    parser.add_argument("--data-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5, 6])
    add_generator_argument(parser)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of a subject written here")
    parser.add_argument(
        "--trim", type=float, default=0.0, metavar="S",
        help="fit on the training block without its last S seconds: run with 0 and, say, 60 to see whether "
        "a gain grows or shrinks with more data (the bundle refits on training + validation)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    base = override(load_config(args.config), parse_assignments(args.set), skip_none=False)
    configs = {"base": base}
    for text in args.candidate:
        configs[text] = override(base, parse_overrides(text), skip_none=False)
    names = list(configs)
    print(
        f"base: {args.config or 'built-in default'} {' '.join(args.set)}".rstrip()
        + f"; fit {base.fit}; subjects: {args.generator} generator"
    )
    fitted_on = "the training block" + (f" without its last {args.trim:g} s" if args.trim else "")
    print(f"r on the validation block (mean over the ROIs), each fitted on {fitted_on}:")
    scores = {name: [] for name in names}
    root = Path(args.data_root)
    load_subject = subject_loader(args.generator)
    for seed in args.data_seeds:
        t0 = time.perf_counter()
        rec = load_subject(
            root / f"seed{seed}", base.data, base.preprocessing.sfreq, duration=args.duration, seed=seed
        )
        for name in names:
            scores[name].append(float(np.nanmean(validation_r(configs[name], rec, args.trim))))
        cells = "  ".join(f"{scores[n][-1]:.3f}" for n in names)
        print(f"  subject seed {seed}: {cells}   ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(
        "\nconfiguration: mean r over the subjects; paired difference against the base (mean +- standard error),"
    )
    print("subjects where it is higher")
    ref = np.array(scores["base"])
    for name in names:
        s = np.array(scores[name])
        line = f"  {name}: {s.mean():.3f}"
        if name != "base":
            d = s - ref
            se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
            line += f"   {d.mean():+.3f} +- {se:.3f}, higher on {(d > 0).sum()} of {len(d)}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
