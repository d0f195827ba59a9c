"""FBCNN models: architecture, weights I/O, tiled inference, restoration methods.

* :class:`FBCNN` -- the network, state-dict compatible with the released
  checkpoints; ``forward(x, qf=None) -> (restored, qf_predicted)`` on the
  0..100 QF scale.
* :func:`load_model`, :func:`save_checkpoint` -- weights I/O through
  ``torch.load(weights_only=True)`` only.
* :func:`pick_device` -- the one device choice of the package.
* :func:`restore`, :func:`restore_batch` -- uint8 in, uint8 out (a
  :class:`Restoration`), tiled inference with one global QF;
  :func:`predict_qf` -- the model's QF reading of an image (patch-wise for
  models trained on patches).
* :func:`get_method`, :data:`METHODS` -- jpeg, fbcnn, fbcnn-d, fbcnn-a.
* :func:`train`, :class:`TrainConfig`, :func:`load_config`,
  :func:`export_weights` -- training, from the :mod:`jpegbench.models.training`
  subpackage (``jpegbench.models.train`` is the training function).
"""

from jpegbench.models.device import pick_device
from jpegbench.models.fbcnn import FBCNN
from jpegbench.models.inference import (
    COLOR_POLICIES,
    DEFAULT_OVERLAP,
    PRECISIONS,
    Restoration,
    predict_qf,
    receptive_field_margin,
    restore,
    restore_batch,
    tile_spans,
)
from jpegbench.models.files import AUTO_TILE_PIXELS, RestoreRun, restore_files
from jpegbench.models.methods import ESTIMATORS, METHODS, Method, get_method
from jpegbench.models.weights import (
    CHECKPOINT_FORMAT,
    KNOWN_WEIGHTS,
    SHIPPED_WEIGHTS,
    WEIGHTS_DIR_ENV,
    Checkpoint,
    default_weights,
    find_weights,
    load_checkpoint,
    load_model,
    qf_patch_from_meta,
    resolve_weights,
    save_checkpoint,
)
from jpegbench.models.training import TrainConfig, export_weights, load_config, train

__all__ = [
    "FBCNN",
    "COLOR_POLICIES", "DEFAULT_OVERLAP", "PRECISIONS", "Restoration", "pick_device",
    "predict_qf", "receptive_field_margin", "restore", "restore_batch", "tile_spans",
    "AUTO_TILE_PIXELS", "RestoreRun", "restore_files",
    "ESTIMATORS", "METHODS", "Method", "get_method",
    "CHECKPOINT_FORMAT", "KNOWN_WEIGHTS", "SHIPPED_WEIGHTS", "WEIGHTS_DIR_ENV", "Checkpoint",
    "default_weights", "find_weights", "load_checkpoint", "load_model", "qf_patch_from_meta", "resolve_weights",
    "save_checkpoint",
    "TrainConfig", "export_weights", "load_config", "train",
]  # fmt: skip
