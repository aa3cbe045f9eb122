"""baseline: supervised training on a seeded fraction of the real training set (all four papers).

The classifier trains on the cell's training subset with the optimiser of its config; each epoch it
is evaluated on the validation split and on the official test set, and the trial reports test
accuracy at the lowest validation loss (how Pennisi selects his pre-trained classifier) and at the
highest validation accuracy (how his tables are reported). Checkpointed every epoch through
``tune.Checkpoint``; a restarted trial resumes from its last checkpoint and ends with the numbers of
an uninterrupted run.

The trained classifier is a cached stage: a GAN method whose stage 1 has this config reuses it, and
if such a method computed it first, this trial reports the stored run instead of training again.

Also reported: the real subset's size (Pham Table I) and its intra-class MS-SSIM diversity under the same names
the generator-only methods report their generators' (Slim Table 2's real-data row; harness.synthetic.
real_diversity), measured before training from a stream of its own, so it changes nothing the training draws.
"""

from __future__ import annotations


from ray import tune

from harness import metrics as M
from harness.checkpoint import TuneCheckpointer
from harness.stages import stage_counts
from harness.synthetic import real_diversity
from harness.train import ClassifierConfig, cell_data, classifier_stage
from harness.trial import setup, stage_root
from trainables import register_method


@register_method(ClassifierConfig)
def baseline(params: dict) -> None:
    cfg, ctx, device = setup(params, ClassifierConfig)
    data = cell_data(ctx.data_file, cfg, device, ctx.data_fingerprint)
    c, h, w = data.shape
    mb = len(data.train_y) * c * h * w / 1e6  # uint8 pixels (Pham Table I's "Size (MB)")
    source = {M.REAL_DATA_MB: mb, M.SOURCE_MB: mb, **real_diversity(cfg, data)}  # what the classifier learns from
    stage, fitted = classifier_stage(cfg, data, device, stage_root(ctx),
                                     make_checkpointer=lambda work: TuneCheckpointer(
                                         {M.STAGES_COMPUTED: 1, M.STAGES_REUSED: 0, M.STAGES_STALE: 0, **source}))
    if not stage.computed:  # trained earlier by another trial: report its stored final result
        tune.report({**fitted["result"], **stage_counts([stage]), **source})
