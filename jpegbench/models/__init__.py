"""FBCNN models: architecture, weights I/O, tiled inference, restoration methods.

* :class:`FBCNN` -- the network, state-dict compatible with the released
  checkpoints; ``forward(x, qf=None) -> (restored, qf_predicted)`` on the
  0..100 QF scale.
* :func:`load_model`, :func:`save_checkpoint` -- weights I/O through
  ``torch.load(weights_only=True)`` only.
* :func:`restore`, :func:`restore_batch`, :func:`pick_device` -- uint8 in,
  uint8 out, tiled inference with one global QF; :func:`predict_qf` -- the
  model's QF reading of an image (patch-wise for models trained on patches).
* :func:`get_method`, :data:`METHODS` -- jpeg, fbcnn, fbcnn-d, fbcnn-a, and
  the table-guided qcn, qgcn, ijcn with their ``-d`` twins
  (:class:`GuidedMethod`, called on JPEG files; tiling in
  :mod:`jpegbench.models.guided_inference`).
* :class:`QCN`, :class:`QGCN`, :class:`IJCN` -- the table-guided restorers
  (Li et al. 2020; Liu et al. 2025), state-dict compatible with the authors'
  networks; their inputs from a JPEG file in :mod:`jpegbench.models.jpeg_inputs`,
  their weights through :func:`load_guided_model`.

* :func:`pick_device` -- the one device choice of the package.
* :func:`train`, :class:`TrainConfig`, :func:`load_config`,
  :func:`export_weights` -- training, from the :mod:`jpegbench.models.training`
  subpackage (``jpegbench.models.train`` is the training function).
"""

from jpegbench._device import pick_device
from jpegbench.models.fbcnn import FBCNN
from jpegbench.models.guided_weights import (
    GUIDED_ARCHITECTURES,
    detect_architecture,
    find_guided_weights,
    load_guided_model,
)
from jpegbench.models.ijcn import IJCN
from jpegbench.models.qcn import QCN, QGCN
from jpegbench.models.inference import (
    COLOR_POLICIES,
    DEFAULT_OVERLAP,
    PRECISIONS,
    predict_qf,
    receptive_field_margin,
    restore,
    restore_batch,
    tile_spans,
)
from jpegbench.models.files import AUTO_TILE_PIXELS, RestoreRun, restore_files
from jpegbench.models.guided_inference import guided_margin, restore_ijcn, restore_qcn
from jpegbench.models.methods import (
    GUIDED_METHODS,
    METHODS,
    QF_SOURCES,
    GuidedMethod,
    Method,
    Restoration,
    get_method,
)
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
    "FBCNN", "QCN", "QGCN", "IJCN",
    "GUIDED_ARCHITECTURES", "detect_architecture", "find_guided_weights", "load_guided_model",
    "guided_margin", "restore_ijcn", "restore_qcn",
    "COLOR_POLICIES", "DEFAULT_OVERLAP", "PRECISIONS", "pick_device",
    "predict_qf", "receptive_field_margin", "restore", "restore_batch", "tile_spans",
    "AUTO_TILE_PIXELS", "RestoreRun", "restore_files",
    "GUIDED_METHODS", "METHODS", "QF_SOURCES", "GuidedMethod", "Method", "Restoration", "get_method",
    "CHECKPOINT_FORMAT", "KNOWN_WEIGHTS", "SHIPPED_WEIGHTS", "WEIGHTS_DIR_ENV", "Checkpoint",
    "default_weights", "find_weights", "load_checkpoint", "load_model", "qf_patch_from_meta", "resolve_weights",
    "save_checkpoint",
    "TrainConfig", "export_weights", "load_config", "train",
]  # fmt: skip
