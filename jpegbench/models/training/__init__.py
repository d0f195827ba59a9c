"""Training FBCNN, FBCNN-A and the table-guided QCN, QGCN, IJCN: from a config to shippable weights.

:func:`train` runs one training described by a :class:`TrainConfig` (or a
TOML file, see ``configs/``) into an output folder:

``out_dir/last.pt``
    The latest state (model, optimizer, scheduler, step, RNG, the running
    sums of the current log window, config): what :func:`train` resumes
    from. Written every ``checkpoint_every`` steps, at the end, where
    ``until_step`` stops, and when the run is interrupted (Ctrl-C).
``out_dir/best.pt``
    The model with the best validation PSNR so far, as a plain jpegbench
    checkpoint (:func:`jpegbench.models.weights.load_model` reads it; for
    QCN, QGCN, IJCN a ``jpegbench-guided`` one that
    :func:`jpegbench.models.load_guided_model` reads).
``out_dir/log.csv``
    ``step, loss, l1, qf_loss, lr, val_psnr, seconds``, a row every
    ``log_every`` and ``val_every`` steps and at the config's last step;
    ``loss``, ``l1`` and ``qf_loss`` are means over the steps since the
    previous row (``val_psnr`` only on validation rows; ``seconds`` is
    training wall time, resumes included).
``out_dir/curves.png``
    Loss and validation PSNR against step.

Every file is written to a temporary name and renamed, so an interruption
never leaves a half-written one; the temporary files (``.NAME.XXXXXXXX.part``)
a killed run leaves are deleted by the next run on the folder.

Recipe
------
Patches come from :class:`jpegbench.synth.PatchDataset` with a
:class:`jpegbench.synth.JpegDegradation`: single JPEG for FBCNN; a mix of
single and ``JPEG(shift(JPEG(x, qf1)), qf2)`` with a random 8x8-grid shift
for FBCNN-A. The loss is, per batch,

    L1(restored, clean) + qf_loss_weight * L1(qf_pred / 100, qf / 100)

with the QF term averaged over single-JPEG samples only: a double JPEG has no
single true QF, so the QF predictor of FBCNN-A learns it without supervision
(the paper's "dominant QF"). Adam with a step schedule (``MultiStepLR``).

Two options exist for short runs of small models (both off by default, i.e.
the paper's recipe): ``qf_teacher_prob`` conditions the decoder on the true
QF for a share of the all-single-JPEG batches, and ``qf_head_lr_mult`` gives
the QF predictor a larger learning rate. Without them a small model trained
for a few thousand steps keeps predicting the mean QF (the pooled bottleneck
features barely change with the QF, the L1 gradients of samples above and
below the mean cancel), so its decoder also never learns to use the QF.

Colour
------
``channels = 3`` trains on RGB patches whose JPEGs are made as real
encoders make them: Pillow (libjpeg-turbo) converts RGB to JFIF YCbCr,
subsamples the chroma (``subsampling``: 4:2:0 by default, 4:2:2, 4:4:4) and
quantizes there; validation cells are made the same way and scored by RGB
PSNR. Single-JPEG FBCNN and double-JPEG FBCNN-A work as for gray, with the
same resumability. A colour model can start from a gray one of the same
width and depth with ``init_from`` and ``init_channel_map``
(``"replicate"``: exactly the gray model on each channel, see
:func:`gray_to_color`; ``"replicate_identity"``: that, started as the
identity), as ``configs/fbcnn-small-color.toml`` and
``configs/fbcnn-a-small-color.toml`` do from the shipped small gray weights.

Determinism
-----------
The batch of step ``s`` is a function of ``(seed, s)`` only: epoch ``e``
visits the items in a permutation seeded by ``(seed, e)`` and the dataset's
items depend on ``(seed, epoch, index)``. With the model, optimizer and
scheduler restored from ``last.pt``, a resumed run on the CPU gives the same
weights as an uninterrupted one, and the same ``log.csv`` (``seconds``
aside): ``last.pt`` keeps the running sums of the log window it was written
in, and neither ``until_step`` nor an interruption adds a log row.

Ctrl-C is held while a step is applied (see :mod:`.loop`); test sets are
never training data (see :mod:`.guard`).

Table-guided networks
---------------------
``[model] arch = "qcn" | "qgcn" | "ijcn"`` trains those networks through the
same loop, with the same determinism and resume (``configs/qgcn-small-gray.toml``,
``configs/ijcn-small-color.toml``): single JPEGs, inputs read from each
patch's JPEG bytes by the builders restoring uses, L1 loss, no QF head;
validation restores the cells as the ``qcn`` / ``qgcn`` / ``ijcn`` methods
do. See :mod:`.guided`.

Layout
------
========  ====================================================================
module    one job
========  ====================================================================
config    :class:`TrainConfig`: the recipe, its validation, reading TOML
guard     :func:`check_not_test_data`: LIVE1 / Classic5 never trained on
data      source split, seeded patch batches, validation cells and PSNR
network   the starting network: seeded, identity, or a checkpoint's weights
guided    QCN / QGCN / IJCN: patches as JPEG bytes, inputs, loss, validation
log       the log window, ``log.csv`` and ``curves.png``
state     ``last.pt``: writing, reading and checking a resumable state
loop      :func:`train`: the loop, its Ctrl-C guard
export    :func:`export_weights`: a shippable file from a run's checkpoint
========  ====================================================================

References
----------
.. [1] J. Jiang, K. Zhang, R. Timofte, "Towards Flexible Blind JPEG Artifacts
   Removal", ICCV 2021 (Sec. 3 and 4: loss, double JPEG degradation model,
   training details).
"""

from jpegbench.models.training.config import TrainConfig, load_config
from jpegbench.models.training.export import export_weights
from jpegbench.models.training.guard import check_not_test_data
from jpegbench.models.training.log import LOG_COLUMNS
from jpegbench.models.training.loop import train
from jpegbench.models.training.network import gray_to_color, identity_init

__all__ = [
    "TrainConfig",
    "load_config",
    "train",
    "identity_init",
    "gray_to_color",
    "export_weights",
    "check_not_test_data",
    "LOG_COLUMNS",
]
