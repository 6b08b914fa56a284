"""What a one-shot search trains on: the two halves of the training images on the device
(weights / alphas), and each epoch's batches of both."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from archsearch.data.dataset import Dataset
from archsearch.data.split import stratified_split
from archsearch.errors import ConfigError, DataError
from archsearch.estimation.training import prepare_tensors
from archsearch.oneshot.darts import Batch


@dataclass(frozen=True)
class SearchDataSettings:
    """``train_portion`` of the training images (after ``max_images``, a stratified subset,
    when given) train the weights, the rest the alphas, split by ``split_seed``;
    ``image_size`` resizes the images (area interpolation); ``augment`` applies random
    crop (padding 1/8 of the size) and horizontal flip to the weights' batches."""

    train_portion: float = 0.5
    max_images: int | None = None
    image_size: int | None = None
    augment: bool = True
    split_seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.train_portion < 1:
            raise ConfigError(f"train_portion must be in (0, 1), got {self.train_portion}")
        if self.max_images is not None and self.max_images < 2:
            raise ConfigError(f"max_images must be >= 2 (or None: all), got {self.max_images}")
        if self.image_size is not None and self.image_size < 1:
            raise ConfigError(f"image_size must be >= 1 (or None: as stored), "
                              f"got {self.image_size}")


@dataclass
class SearchData:
    """The two halves of the search data on the device, standardised.

    ``val_order`` is a fixed random order of the validation images, for what takes them
    in slices rather than in the epoch's shuffled batches (the eigenvalue's batch, the
    perturbation selection's chunks): the split keeps the dataset's order, class by class
    for an image folder, and a slice of one class normalised by training-mode BN says
    little about the validation loss.
    """

    x_fit: torch.Tensor
    y_fit: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    val_order: torch.Tensor

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_fit.shape[1:])

    def val_slices(self, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The validation images in ``val_order``, in near-equal slices of at most
        ``size`` (never a slice of one image, which BN could not normalise)."""
        chunks = max(1, -(-self.x_val.shape[0] // size))
        return [(self.x_val[i], self.y_val[i]) for i in self.val_order.tensor_split(chunks)]


def prepare_search_data(dataset: Dataset, settings: SearchDataSettings,
                        device: torch.device) -> SearchData:
    """Subset, split, move to ``device``, standardise and resize the training images."""
    if dataset.modality != "image":
        raise DataError("one-shot cell searches need image data (N, C, H, W)")
    x, y = dataset.x_train, dataset.y_train
    if settings.max_images is not None and settings.max_images < y.shape[0]:
        _, subset = stratified_split(y, settings.max_images / y.shape[0], settings.split_seed)
        x, y = x[subset], y[subset]
    trimmed = Dataset(dataset.name, x, y, dataset.x_test[:0], dataset.y_test[:0],
                      dataset.classes)
    tensors = prepare_tensors(trimmed, 1 - settings.train_portion, settings.split_seed, device)

    def resize(images: torch.Tensor) -> torch.Tensor:
        if settings.image_size is None or images.shape[-1] == settings.image_size:
            return images
        return F.interpolate(images, size=(settings.image_size,) * 2, mode="area")

    order = torch.randperm(tensors.y_val.shape[0],
                           generator=torch.Generator().manual_seed(settings.split_seed))
    return SearchData(resize(tensors.x_fit), tensors.y_fit, resize(tensors.x_val), tensors.y_val,
                      order.to(device))


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding of 1/8 of the size) and horizontal flip, per image."""
    n, _, h, w = x.shape
    pad = max(1, h // 8)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (dy[:, None] + torch.arange(h)).to(x.device)
    cols = (dx[:, None] + torch.arange(w)).to(x.device)
    batch = torch.arange(n, device=x.device)[:, None, None]
    # Advanced indices around a slice: the result is (n, h, w, channels).
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def epoch_batches(data: SearchData, batch_size: int, generator: torch.Generator, *,
                  augment_images: bool) -> tuple[Iterator[Batch], int]:
    """This epoch's (training, validation) batch pairs and their number; the last partial
    batch is dropped (BatchNorm cannot train on a batch of one)."""
    n_fit, n_val = data.x_fit.shape[0], data.x_val.shape[0]
    batch = min(batch_size, n_fit, n_val)
    steps = min(n_fit, n_val) // batch
    fit_order = torch.randperm(n_fit, generator=generator)
    val_order = torch.randperm(n_val, generator=generator)
    device = data.x_fit.device

    def batches() -> Iterator[Batch]:
        for k in range(steps):
            i = fit_order[k * batch:(k + 1) * batch].to(device)
            j = val_order[k * batch:(k + 1) * batch].to(device)
            x_fit = data.x_fit[i]
            if augment_images:
                x_fit = augment(x_fit, generator)
            yield x_fit, data.y_fit[i], data.x_val[j], data.y_val[j]

    return batches(), steps
