"""Where agents and the runner log: TensorBoard, or nowhere (outside ``train.py``, free)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class Logger:
    """The no-op logger; :class:`TensorBoardLogger` overrides every method."""

    def scalar(self, tag: str, value: float, step: int) -> None:
        pass

    def text(self, tag: str, text: str, step: int) -> None:
        pass

    def image(self, tag: str, png: str | Path, step: int) -> None:
        pass

    def figure(self, tag: str, draw: Callable[[], Figure], step: int) -> None:
        """A matplotlib figure; ``draw`` makes it, called only by a logger that keeps it."""

    def hparams(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardLogger(Logger):
    """TensorBoard events in ``log_dir``, made at the first write (a refused run leaves nothing)."""

    def __init__(self, log_dir: str | Path):
        self.log_dir = Path(log_dir)
        self._writer = None

    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.log_dir))
        return self._writer

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, value, step)

    def text(self, tag: str, text: str, step: int) -> None:
        self.writer.add_text(tag, text, step)

    def image(self, tag: str, png: str | Path, step: int) -> None:
        from matplotlib.image import imread

        self.writer.add_image(tag, imread(png)[..., :3], step, dataformats="HWC")  # RGBA floats in [0, 1]

    def figure(self, tag: str, draw: Callable[[], Figure], step: int) -> None:
        self.writer.add_figure(tag, draw(), step, close=True)

    def hparams(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        # TensorBoard's hparams take scalars and strings only
        clean = {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in hparams.items()}
        self.writer.add_hparams(clean, metrics, run_name=".")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
