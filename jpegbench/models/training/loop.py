"""The training loop: :func:`train` runs a config into an output folder, step by step, resumably.

Ctrl-C is held while a step is applied (the optimizer update, the step
counter, its log row, its validation and ``best.pt``) and acted on when the
step is complete, so the ``last.pt`` written on the interrupt is always a
completed step under its own number; an interrupt during the forward or
backward pass discards that step (it is redone on resume, with the same
random draws). A second Ctrl-C while a step is applied stops at once and
writes no ``last.pt``, leaving the previous one.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from jpegbench._device import pick_device
from jpegbench._fs import remove_stale_parts
from jpegbench._lock import DirLock
from jpegbench._progress import progress_bar
from jpegbench.errors import InputError, JpegbenchError
from jpegbench.models.fbcnn import FBCNN
from jpegbench.models.training.config import TrainConfig, is_int, load_config
from jpegbench.models.training.data import (
    batch_at, jpeg_psnr, make_dataset, split_sources, val_cells, val_images, validate,
)
from jpegbench.models.training.guard import check_not_test_data
from jpegbench.models.training.log import account, log_window, plot, read_log, write_log
from jpegbench.models.training.network import build_model
from jpegbench.models.training.state import check_resumable, load_scheduler_state, read_state, run_meta, save_state
from jpegbench.models.weights import save_checkpoint

__all__ = ["train"]

_OUTPUTS = ("last.pt", "best.pt", "log.csv", "curves.png")


def _loss(
    model: FBCNN, batch: dict[str, torch.Tensor], cfg: TrainConfig, rng: torch.Generator
) -> tuple[torch.Tensor, float, float]:
    single = ~batch["is_double"]
    condition = None
    # Drawn every step (not only for all-single batches) so the stream of
    # draws, and thus a resumed run, does not depend on the batch content.
    if cfg.qf_teacher_prob > 0 and float(torch.rand((), generator=rng)) < cfg.qf_teacher_prob and bool(single.all()):
        condition = batch["qf"][:, 0]
    restored, qf_pred = model(batch["lq"], qf=condition)
    l1 = torch.nn.functional.l1_loss(restored, batch["hq"])
    if cfg.qf_loss_weight > 0 and bool(single.any()):
        # The paper's QF loss is on the 0..1 scale; the model speaks 0..100.
        qf_loss = (qf_pred[single] / 100.0 - batch["qf"][single, 0] / 100.0).abs().mean()
    else:
        qf_loss = torch.zeros((), device=l1.device)
    loss = l1 + cfg.qf_loss_weight * qf_loss
    return loss, float(l1.detach()), float(qf_loss.detach())


def _guided_loss(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], cfg: TrainConfig, rng: torch.Generator
) -> tuple[torch.Tensor, float, float]:
    from jpegbench.models.training.guided import guided_loss

    return guided_loss(model, batch)  # no QF head: no teacher forcing, no draw from rng


def train(
    config: TrainConfig | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = True,
    device: str | torch.device | None = None,
    progress: bool = True,
    until_step: int | None = None,
) -> dict[str, Any]:
    """Train an FBCNN (or a QCN, QGCN, IJCN: ``[model] arch``) as described by ``config`` into ``out_dir``.

    Parameters
    ----------
    config : TrainConfig or path to a TOML file
    out_dir : str or PathLike
        Created if needed. See the module docstring for what is written.
    resume : bool, default True
        Continue from ``out_dir/last.pt`` if present (its config must match,
        except ``steps`` and the bookkeeping intervals); ``False`` starts over
        and overwrites.
    device : str or torch.device, optional
        Default CUDA when available, else CPU.
    progress : bool, default True
        Show a progress bar (loss, images/s) under the policy of :mod:`jpegbench._progress`.
    until_step : int, optional
        Stop after this step as if interrupted (``last.pt`` written, no extra
        log row); a later call resumes, and ends with the files of an
        uninterrupted run. Default: ``config.steps``.

    Returns
    -------
    dict
        ``step``, ``seconds``, ``best_val_psnr``, ``best_step``, ``val_psnr``
        (last validation, per cell), ``jpeg_psnr`` (the JPEG input, per
        cell), ``out_dir``, ``last``, ``best``.

    Raises
    ------
    ConfigError
        Invalid config, test images in the training data, or a resumable run
        with a different config in ``out_dir``.
    LockError
        Another run writes to ``out_dir``.
    """
    cfg = load_config(config)
    target = pick_device(device)
    stop = cfg.steps if until_step is None else until_step
    if not is_int(stop) or not 0 <= stop <= cfg.steps:
        raise InputError(f"until_step must be an integer in 0..{cfg.steps} (config steps), got {until_step!r}")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    with DirLock(out):
        for name in _OUTPUTS:  # left by a killed run; no live run writes here while we hold the lock
            remove_stale_parts(out / name)
        return _run(cfg, out, resume=resume, device=target, progress=progress, stop=int(stop))


def _run(cfg: TrainConfig, out: Path, *, resume: bool, device: torch.device, progress: bool, stop: int) -> dict[str, Any]:
    old_threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        return _loop(cfg, out, resume=resume, device=device, progress=progress, stop=stop)
    finally:
        torch.set_num_threads(old_threads)


def _loop(cfg: TrainConfig, out: Path, *, resume: bool, device: torch.device, progress: bool, stop: int) -> dict[str, Any]:
    train_files, val_files = split_sources(cfg)
    # The table-guided networks differ in data, loss and validation only (see .guided).
    if cfg.guided:
        from jpegbench.models.training import guided as g

        dataset, per_epoch = g.make_guided_dataset(cfg, train_files)
        next_batch, step_loss, run_val = g.guided_batch_at, _guided_loss, g.guided_validate
        make_cells, cells_psnr = g.guided_val_cells, g.guided_jpeg_psnr
    else:
        dataset, per_epoch = make_dataset(cfg, train_files)
        next_batch, step_loss, run_val = batch_at, _loss, validate
        make_cells, cells_psnr = val_cells, jpeg_psnr
    check_not_test_data(train_files, images=dataset._images)
    check_not_test_data(val_files)
    cells = make_cells(cfg, val_images(cfg, val_files))
    jpeg_in = cells_psnr(cells)

    model, init = build_model(cfg)
    model.to(device).train()
    if cfg.guided:
        groups: list[dict[str, Any]] = [{"params": list(model.parameters())}]
    else:
        head = list(model.qf_pred.parameters())
        head_ids = {id(p) for p in head}
        rest = [p for p in model.parameters() if id(p) not in head_ids]
        groups = [{"params": rest}, {"params": head, "lr": cfg.lr * cfg.qf_head_lr_mult}]
    optimizer = torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.milestones), gamma=cfg.gamma)
    step, seconds, best, best_step, last_val = 0, 0.0, -math.inf, 0, None
    last_path, best_path, log_path = out / "last.pt", out / "best.pt", out / "log.csv"
    torch_rng = torch.Generator().manual_seed(cfg.seed)  # teacher-forcing draws
    acc = log_window(None)  # sums over the steps since the last log row

    if resume and last_path.is_file():
        state = read_state(last_path)
        check_resumable(cfg, state, last_path)
        model.load_state_dict(state["state_dict"], strict=True)
        tr = state["training"]
        optimizer.load_state_dict(tr["optimizer"])
        load_scheduler_state(scheduler, tr["scheduler"])
        step, seconds = int(tr["step"]), float(tr["seconds"])
        best, best_step = float(tr["best_val_psnr"]), int(tr["best_step"])
        last_val = tr.get("last_val") or None
        torch_rng.set_state(tr["torch_rng"])
        acc = log_window(tr.get("log_window"))
        rows: list[dict[str, Any]] = read_log(log_path, step)
    else:
        rows = []
        for p in (last_path, best_path, log_path, out / "curves.png"):
            p.unlink(missing_ok=True)
    n_train, n_val = len(train_files), len(val_files)
    saved_step = [step if last_path.is_file() else None]  # the step in last.pt on disk

    def meta(val: dict | None) -> dict:
        return run_meta(cfg, step, seconds, n_train, n_val, init, val)

    def write_last() -> None:
        save_state(last_path, model, meta=meta(last_val), step=step, seconds=seconds, optimizer=optimizer,
                   scheduler=scheduler, best=best, best_step=best_step, last_val=last_val, torch_rng=torch_rng,
                   log_window=acc, cfg=cfg)
        saved_step[0] = step

    def flush_log() -> None:
        write_log(log_path, rows)
        plot(out / "curves.png", rows, f"{cfg.name}: JPEG input val PSNR {jpeg_in['mean']:.2f} dB")

    # The project's one bar policy: on a terminal only, unless JPEGBENCH_PROGRESS asks otherwise.
    bar = progress_bar(progress=progress and step < stop, total=stop, initial=step, desc=cfg.name, unit="step")
    # "compute": the step's forward/backward, nothing of the state changed yet but the RNG draws;
    # "apply": the update and the step's bookkeeping (Ctrl-C held); "between": a consistent state.
    phase, rng_at_start = "between", torch_rng.get_state()
    guard = _HeldInterrupt(notify=progress)
    try:
        with guard:
            while step < stop:
                rng_at_start = torch_rng.get_state()
                phase = "compute"
                t0 = time.perf_counter()
                batch = {k: v.to(device) for k, v in next_batch(dataset, per_epoch, cfg, step).items()}
                loss, l1, qf_loss = step_loss(model, batch, cfg, torch_rng)
                if not torch.isfinite(loss):
                    raise JpegbenchError(f"training diverged at step {step + 1}: loss is {float(loss)}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                with guard.held(f"step {step + 1}"):
                    phase = "apply"
                    optimizer.step()
                    scheduler.step()
                    step += 1
                    dt = time.perf_counter() - t0
                    seconds += dt
                    row = account(acc, cfg, step, float(loss.detach()), l1, qf_loss, optimizer, seconds)
                    if step % cfg.val_every == 0 or step == cfg.steps:
                        last_val = run_val(model, cells, device)
                        assert row is not None
                        row["val_psnr"] = f"{last_val['mean']:.4f}"
                        if last_val["mean"] > best:
                            best, best_step = last_val["mean"], step
                            save_checkpoint(model, best_path, meta=meta(last_val))
                    if row is not None:
                        rows.append(row)
                    phase = "between"  # a Ctrl-C held above is raised as the block ends
                bar.update(1)
                if not bar.disable:
                    bar.set_postfix(loss=f"{loss.detach().item():.4f}", img_s=f"{cfg.batch_size / dt:.1f}", refresh=False)
                if step % cfg.checkpoint_every == 0 or row is not None and row["val_psnr"]:
                    flush_log()
                    write_last()
    except KeyboardInterrupt:
        if phase == "apply":
            # Only a second Ctrl-C (or an interrupt raised by code) lands here: the weights may hold
            # part of step `step + 1`, so no state is saved; last.pt keeps its last consistent step.
            if progress:
                kept = f"it holds step {saved_step[0]}" if saved_step[0] is not None else "there is none yet"
                print(f"\n{cfg.name}: interrupted while a step was applied; {last_path} not updated ({kept})",
                      file=sys.stderr)
            raise
        if phase == "compute":
            torch_rng.set_state(rng_at_start)  # the step is redone on resume, with the same draws
        # Keep what was done: the state after the last complete step.
        flush_log()
        write_last()
        raise
    finally:
        bar.close()
    flush_log()
    write_last()
    return {
        "step": step,
        "seconds": seconds,
        "best_val_psnr": best if best > -math.inf else None,
        "best_step": best_step if best > -math.inf else None,
        "val_psnr": last_val,
        "jpeg_psnr": jpeg_in,
        "out_dir": out,
        "last": last_path,
        "best": best_path if best_path.is_file() else None,
    }


class _HeldInterrupt:
    """Hold Ctrl-C (SIGINT) while a training step is applied, so that a step is applied whole or not at all.

    Inside ``with guard:`` SIGINT goes to this handler. Outside a
    :meth:`held` block it calls the previous handler at once (Python's
    default raises KeyboardInterrupt). Inside one, the first SIGINT is held
    and delivered when the block ends normally; a second one is delivered at
    once (an escape hatch for a slow validation), and the caller must then
    treat the state as torn. The handler is installed only in the main thread
    (the only one Python delivers signals to) and only over a Python-level
    previous handler; otherwise nothing is held.
    """

    def __init__(self, *, notify: bool = True) -> None:
        self._notify = notify
        self._previous: Any = None
        self._holding: str | None = None
        self._pending: tuple[int, Any] | None = None

    def __enter__(self) -> _HeldInterrupt:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if callable(previous):
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self._holding is not None and self._pending is None:
            self._pending = (signum, frame)
            if self._notify:
                print(f"\ninterrupted: finishing {self._holding}, then saving (Ctrl-C again to stop without saving)",
                      file=sys.stderr)
            return
        self._previous(signum, frame)

    @contextlib.contextmanager
    def held(self, what: str) -> Iterator[None]:
        self._holding, self._pending = what, None
        try:
            yield
        finally:
            self._holding = None
        pending, self._pending = self._pending, None
        if pending is not None and self._previous is not None:
            self._previous(*pending)
