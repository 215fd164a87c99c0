"""Supervised dataset distillation with an evolution strategy: one synthetic image per class (HaDES, Lupu et al.,
ICLR 2024, section "dataset distillation"; FLAIROx/behaviour-distillation ``distill_dataset.py``).

Outer loop: OpenES + Adam (:mod:`torch_distill.es`) over the ten images ``[10, 1, 28, 28]`` (genome ``D = 7840``),
initialised to the class means of the normalised training images; the labels are fixed one-hots (not evolved).
Inner loop: fresh classifiers -- conv 16 3x3 SAME -> relu -> dense 128 -> relu -> dense 10 -- trained by full-batch
SGD on the ten images; fitness = their loss on the real training set (minimised, ``maximize=False``), averaged over
``inits`` initialisations that every candidate of a generation shares (common random numbers).

As the reference:

* loss = ``-mean(log_softmax(logits) * onehot)`` over ``[B, 10]``, i.e. cross-entropy / 10, for both the inner
  SGD and the fitness;
* classifier init = flax's defaults: kernels lecun-normal (truncated normal, variance ``1 / fan_in``), the conv and
  first dense biases uniform in ``[0, 0.05)``, the last bias zero; flattening in (height, width, channel) order;
* OpenES: antithetic, raw fitness, Adam beta1 0.99; sigma 0.02 (x0.999 per generation, floor 0.001), lr 0.01
  (x0.999, floor 0.001); population 512, 2 inits, 1000 generations, 1000 SGD steps at lr 0.1.

The population of classifiers is trained at once with flat parameters ``[N, P]``: the conv is an im2col matmul
(the patches of the ten images are fixed during training and computed once) and the backward pass is written out
(one batched matmul per layer and gradient; the big dense kernel is updated in place by one ``baddbmm``), which is
much faster on CPUs than autograd over ``vmap(functional_call)`` or a grouped conv (measured in
``docs/bench/distill_images.json``). :meth:`ConvNet.reference_module` rebuilds one member as a ``torch.nn`` module
for the equivalence tests.

Data: the standard IDX files (:func:`load_idx_dataset`, gzipped or not). Nothing is ever downloaded.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tyro.conf import Suppress

from torch_distill import __version__
from torch_distill.files import atomic_write
from torch_distill.runner import Streams, derive_seed
from torch_distill.search import Candidate, ESOptions, Finished, SearchMethod, run_search

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_DATA_DIRS",
    "IDXFileError",
    "ImageFileError",
    "read_idx",
    "load_idx_dataset",
    "ImageData",
    "load_image_data",
    "ConvNet",
    "class_means",
    "random_real_images",
    "evaluate_images",
    "save_distilled_images",
    "load_distilled_images",
    "plot_images",
    "DistillImagesConfig",
    "DistillImagesProblem",
    "DistillImagesSearch",
    "run_distill_images",
    "PRESETS",
]

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"),
    "mnist": tuple(str(i) for i in range(10)),
}
"""Class names by data set, in label order."""

DEFAULT_DATA_DIRS: dict[str, str] = {"fashion-mnist": "/usr/share/datasets/fashion-mnist"}
"""Where ``--data NAME`` looks when ``--data-dir`` is not given: FashionMNIST as installed by the Debian package
``dataset-fashion-mnist``. MNIST has no default folder: pass ``--data-dir``."""

FORMAT = "torch_distill.image_dataset"
FORMAT_VERSION = 1
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


# ------------------------------------------------------------------------------------------------------ IDX files
class IDXFileError(ValueError):
    """An IDX file that is missing, truncated, not IDX (wrong magic number) or inconsistent with its partner."""


class ImageFileError(ValueError):
    """A distilled-images file that is not one written by :func:`save_distilled_images`."""


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (``uint8`` data only, as MNIST / FashionMNIST), gzipped or not.

    IDX: a big-endian header of two zero bytes, the type code (``0x08`` = unsigned byte) and the number of
    dimensions ``n``, then ``n`` big-endian uint32 sizes, then the data. Raises :class:`IDXFileError` naming the file
    for a wrong magic number, a truncated header or body, trailing bytes or a corrupt gzip stream.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise IDXFileError(f"{path}: corrupt or truncated gzip stream ({e})") from None
    if len(raw) < 4:
        raise IDXFileError(f"{path}: {len(raw)} bytes, too short for an IDX header (4-byte magic number)")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise IDXFileError(f"{path}: magic number {raw[:4].hex()} is not an unsigned-byte IDX file "
                           "(expected 000008NN with NN the number of dimensions, 01 labels, 03 images)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFileError(f"{path}: truncated header ({len(raw)} bytes, {header} expected for {ndim} dimensions)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    size = math.prod(shape)
    if len(raw) - header != size:
        what = "truncated" if len(raw) - header < size else "has trailing bytes"
        raise IDXFileError(f"{path}: {what}: the header promises shape {shape} = {size} bytes of data, the file has "
                           f"{len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _idx_path(data_dir: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (data_dir / name).is_file():
            return data_dir / name
    raise FileNotFoundError(f"{data_dir}: no {stem} or {stem}.gz (expected the standard IDX files "
                            "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                            "t10k-labels-idx1-ubyte, gzipped or not)")


def load_idx_dataset(data_dir: str | Path, split: Literal["train", "test"]) -> tuple[Tensor, Tensor]:
    """Images ``[N, 28, 28]`` uint8 and labels ``[N]`` int64 of one split (``train`` or ``test`` = ``t10k``) of
    an MNIST-format folder. Raises ``FileNotFoundError`` naming the missing files, :class:`IDXFileError` for bad
    files, mismatched counts or labels outside 0..9."""
    if split not in _SPLIT_PREFIX:
        raise ValueError(f"split={split!r}: expected 'train' or 'test'")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data folder {data_dir} does not exist")
    prefix = _SPLIT_PREFIX[split]
    missing = [s for s in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
               if not ((data_dir / s).is_file() or (data_dir / (s + ".gz")).is_file())]
    if missing:
        raise FileNotFoundError(f"{data_dir}: missing {' and '.join(f'{m}(.gz)' for m in missing)} (the {split} "
                                "split in the standard IDX format)")
    ipath = _idx_path(data_dir, f"{prefix}-images-idx3-ubyte")
    lpath = _idx_path(data_dir, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(ipath), read_idx(lpath)
    if images.ndim != 3:
        raise IDXFileError(f"{ipath}: shape {images.shape}, expected images [N, rows, cols]")
    if labels.ndim != 1:
        raise IDXFileError(f"{lpath}: shape {labels.shape}, expected labels [N]")
    if images.shape[0] != labels.shape[0]:
        raise IDXFileError(f"{ipath} holds {images.shape[0]} images but {lpath} holds {labels.shape[0]} labels")
    if labels.size and int(labels.max()) > 9:
        raise IDXFileError(f"{lpath}: label {int(labels.max())} outside 0..9")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


@dataclass
class ImageData:
    """A normalised image classification data set: ``x = (pixel / 255 - mean) / std``.

    Attributes:
        name: ``fashion-mnist`` or ``mnist``.
        train_x / test_x: ``[N, 1, 28, 28]`` float32 normalised images; train_y / test_y: ``[N]`` int64 labels.
        mean / std: the normalisation (statistics of the training pixels in [0, 1] for ``standard``; 0 and 1 for
            ``unit``, the reference's ``--normalize``).
    """

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    mean: float
    std: float

    @property
    def classes(self) -> tuple[str, ...]:
        return CLASS_NAMES.get(self.name, tuple(str(i) for i in range(10)))


def load_image_data(data: str, data_dir: str | None = None, normalize: str = "standard",
                    device: torch.device | str = "cpu") -> ImageData:
    """Both splits of ``data`` from ``data_dir`` (default :data:`DEFAULT_DATA_DIRS`), normalised."""
    if data_dir is None:
        if data not in DEFAULT_DATA_DIRS:
            raise ValueError(f"data={data!r} has no default folder: pass data_dir (a folder with the IDX files)")
        data_dir = DEFAULT_DATA_DIRS[data]
    tr_x, tr_y = load_idx_dataset(data_dir, "train")
    te_x, te_y = load_idx_dataset(data_dir, "test")
    if tr_x.shape[1:] != te_x.shape[1:]:
        raise IDXFileError(f"{data_dir}: train images are {tuple(tr_x.shape[1:])}, test images "
                           f"{tuple(te_x.shape[1:])}")
    if len(torch.unique(tr_y)) != 10:
        raise IDXFileError(f"{data_dir}: the training labels hold {len(torch.unique(tr_y))} classes, expected 10")
    tr = tr_x.float().div_(255.0)
    if normalize == "standard":
        mean, std = float(tr.mean()), float(tr.std())
    elif normalize == "unit":
        mean, std = 0.0, 1.0
    else:
        raise ValueError(f"normalize={normalize!r}: expected 'standard' or 'unit'")
    dev = torch.device(device)

    def norm(x: Tensor) -> Tensor:
        return ((x.float() / 255.0 - mean) / std).unsqueeze(1).to(dev)

    return ImageData(data, norm(tr_x), tr_y.to(dev), norm(te_x), te_y.to(dev), mean, std)


# ----------------------------------------------------------------------------------------------------- classifier
@dataclass(frozen=True)
class ConvNet:
    """The reference's CNN with flat parameters ``[N, P]``: conv ``conv_channels`` ``kernel x kernel`` SAME ->
    relu -> dense ``hidden`` -> relu -> dense ``classes``.

    Flat layout, in order: ``conv_w [C_in * k * k, F]`` (rows in (channel, ky, kx) order, as ``F.unfold``),
    ``conv_b [F]``, ``dense1_w [H * W * F, hidden]`` (rows in (y, x, channel) order, the reference's NHWC
    flattening), ``dense1_b``, ``dense2_w [hidden, classes]``, ``dense2_b``.
    """

    channels: int = 1
    height: int = 28
    width: int = 28
    conv_channels: int = 16
    kernel: int = 3
    hidden: int = 128
    classes: int = 10

    @property
    def layout(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        ck, hw, f = self.channels * self.kernel**2, self.height * self.width, self.conv_channels
        return (("conv_w", (ck, f)), ("conv_b", (f,)), ("dense1_w", (hw * f, self.hidden)),
                ("dense1_b", (self.hidden,)), ("dense2_w", (self.hidden, self.classes)),
                ("dense2_b", (self.classes,)))

    @property
    def num_params(self) -> int:
        return sum(math.prod(s) for _, s in self.layout)

    def split(self, params: Tensor) -> dict[str, Tensor]:
        """Views ``{name: [N, *shape]}`` into ``params [N, P]`` (writes go through to ``params``)."""
        if params.dim() != 2 or params.shape[1] != self.num_params:
            raise ValueError(f"expected params of shape [N, {self.num_params}], got {tuple(params.shape)}")
        out, i = {}, 0
        for name, shape in self.layout:
            n = math.prod(shape)
            out[name] = params[:, i:i + n].view(params.shape[0], *shape)
            i += n
        return out

    def init(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` initialisations ``[n, P]`` drawn from ``generator`` (flax defaults, see the module docstring)."""
        device = generator.device
        params = torch.zeros(n, self.num_params, device=device)
        views = self.split(params)
        for name, shape in self.layout:
            v = views[name]
            if name.endswith("_w"):
                std = math.sqrt(1.0 / shape[0]) / 0.87962566103423978  # flax lecun_normal: truncated at +-2 std
                torch.nn.init.trunc_normal_(v, 0.0, std, -2.0 * std, 2.0 * std, generator=generator)
            elif name in ("conv_b", "dense1_b"):
                v.uniform_(0.0, 0.05, generator=generator)
        return params

    def patches(self, images: Tensor) -> Tensor:
        """im2col of ``images [M, C, H, W]``: ``[M, H * W, C * k * k]`` (SAME padding, stride 1)."""
        cols = F.unfold(images, self.kernel, padding=self.kernel // 2)  # [M, C k k, H W]
        return cols.transpose(1, 2)

    def logits(self, params: Tensor, images: Tensor) -> Tensor:
        """Logits ``[N, B, classes]`` of ``params [N, P]`` on ``images [N, B, C, H, W]`` (one set per member) or
        ``[B, C, H, W]`` (shared by every member)."""
        p = self.split(params)
        n = params.shape[0]
        shared = images.dim() == 4
        b = images.shape[0] if shared else images.shape[1]
        cols = self.patches(images if shared else images.reshape(n * b, *images.shape[2:]))
        cols = cols.reshape(1 if shared else n, b * self.height * self.width, -1)
        z0 = torch.matmul(cols, p["conv_w"]) + p["conv_b"].unsqueeze(1)  # [N, B HW, F]
        h = torch.relu(z0).reshape(n, b, -1)
        a1 = torch.relu(torch.baddbmm(p["dense1_b"].unsqueeze(1), h, p["dense1_w"]))
        return torch.baddbmm(p["dense2_b"].unsqueeze(1), a1, p["dense2_w"])

    def train(self, params0: Tensor, images: Tensor, labels: Tensor, steps: int, lr: float) -> Tensor:
        """Full-batch SGD of ``params0 [N, P]`` on ``images [N, B, C, H, W]`` with ``labels [B]`` or ``[N, B]``
        (int64): ``steps`` steps at ``lr`` on the reference loss (cross-entropy / classes). Returns ``[N, P]``.

        The backward pass is written out; :meth:`reference_module` + autograd give the same result (tested)."""
        n, b = images.shape[:2]
        params = params0.detach().clone()
        p = self.split(params)
        hw, f = self.height * self.width, self.conv_channels
        cols = self.patches(images.reshape(n * b, *images.shape[2:])).reshape(n, b * hw, -1)  # fixed over steps
        cols_t = cols.transpose(1, 2).contiguous()
        onehot = F.one_hot(labels.expand(n, b), self.classes).to(params.dtype)
        scale = 1.0 / (b * self.classes)
        w0, b0, w1, b1, w2, b2 = (p[k] for k in ("conv_w", "conv_b", "dense1_w", "dense1_b", "dense2_w", "dense2_b"))
        for _ in range(steps):
            z0 = torch.baddbmm(b0.unsqueeze(1), cols, w0)  # [N, B HW, F]
            h = torch.relu(z0)
            hf = h.view(n, b, hw * f)
            a1 = torch.relu(torch.baddbmm(b1.unsqueeze(1), hf, w1))  # [N, B, hidden]
            z2 = torch.baddbmm(b2.unsqueeze(1), a1, w2)
            g2 = (torch.softmax(z2, -1) - onehot).mul_(scale)  # dL/dz2, [N, B, classes]
            g1 = torch.bmm(g2, w2.transpose(1, 2)).mul_(a1 > 0)  # dL/dz1
            gh = torch.bmm(g1, w1.transpose(1, 2)).view(n, b * hw, f).mul_(h > 0)  # dL/dz0 (before w1 changes)
            w2.baddbmm_(a1.transpose(1, 2), g2, alpha=-lr)
            b2.sub_(g2.sum(1), alpha=lr)
            w1.baddbmm_(hf.transpose(1, 2), g1, alpha=-lr)
            b1.sub_(g1.sum(1), alpha=lr)
            w0.baddbmm_(cols_t, gh, alpha=-lr)
            b0.sub_(gh.sum(1), alpha=lr)
        return params

    def loss_and_accuracy(self, params: Tensor, images: Tensor, labels: Tensor,
                          chunk_elems: int = 1 << 25) -> tuple[Tensor, Tensor]:
        """Reference loss (cross-entropy / classes) ``[N]`` and accuracy ``[N]`` of every member on the shared
        ``images [K, C, H, W]``, ``labels [K]``; in blocks of members x images (up to 512 images, so that the
        dense matmuls stay compute-bound) whose activations stay below ``chunk_elems`` floats. No host sync."""
        n, k = params.shape[0], images.shape[0]
        per_image = self.height * self.width * self.conv_channels
        per = max(1, min(k, 512, chunk_elems // per_image))
        members = max(1, chunk_elems // (per * per_image))
        loss = params.new_zeros(n)
        correct = params.new_zeros(n)
        for m in range(0, n, members):
            p = params[m:m + members]
            for i in range(0, k, per):
                z = self.logits(p, images[i:i + per])  # [m, c, classes]
                y = labels[i:i + per]
                logp = torch.log_softmax(z, -1)
                loss[m:m + members] -= logp.gather(-1, y.view(1, -1, 1).expand(p.shape[0], -1, 1)).squeeze(-1).sum(1)
                correct[m:m + members] += (z.argmax(-1) == y).sum(1)
        return loss / (k * self.classes), correct / k

    def reference_module(self, params: Tensor) -> torch.nn.Sequential:
        """One member ``params [P]`` as ``torch.nn`` layers (Conv2d, Linear; NCHW flattening), for tests."""
        p = {k: v[0] for k, v in self.split(params.reshape(1, -1)).items()}
        f, hw = self.conv_channels, (self.height, self.width)
        conv = torch.nn.Conv2d(self.channels, f, self.kernel, padding=self.kernel // 2)
        d1 = torch.nn.Linear(f * hw[0] * hw[1], self.hidden)
        d2 = torch.nn.Linear(self.hidden, self.classes)
        with torch.no_grad():
            conv.weight.copy_(p["conv_w"].T.reshape(f, self.channels, self.kernel, self.kernel))
            conv.bias.copy_(p["conv_b"])
            w1 = p["dense1_w"].reshape(hw[0], hw[1], f, self.hidden).permute(2, 0, 1, 3).reshape(-1, self.hidden)
            d1.weight.copy_(w1.T)
            d1.bias.copy_(p["dense1_b"])
            d2.weight.copy_(p["dense2_w"].T)
            d2.bias.copy_(p["dense2_b"])
        return torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.Flatten(), d1, torch.nn.ReLU(), d2)

    def flat_from_module(self, module: torch.nn.Sequential) -> Tensor:
        """The flat ``[P]`` parameters of a :meth:`reference_module` (inverse of it)."""
        conv, d1, d2 = module[0], module[3], module[5]
        f, (h, w) = self.conv_channels, (self.height, self.width)
        w1 = d1.weight.detach().T.reshape(f, h, w, self.hidden).permute(1, 2, 0, 3).reshape(-1, self.hidden)
        parts = [conv.weight.detach().reshape(f, -1).T, conv.bias.detach(), w1, d1.bias.detach(),
                 d2.weight.detach().T, d2.bias.detach()]
        return torch.cat([t.reshape(-1) for t in parts])


def class_means(images: Tensor, labels: Tensor, classes: int = 10) -> Tensor:
    """Mean image of every class ``[classes, C, H, W]`` (the reference's ``init_mode="mean"``)."""
    out = torch.zeros(classes, *images.shape[1:], device=images.device)
    out.index_add_(0, labels, images)
    counts = torch.bincount(labels, minlength=classes).clamp(min=1).to(images.dtype)
    return out / counts.view(-1, *([1] * (images.dim() - 1)))


def random_real_images(images: Tensor, labels: Tensor, seed: int, classes: int = 10) -> Tensor:
    """One random real image per class ``[classes, C, H, W]`` (draws from ``seed``)."""
    gen = torch.Generator().manual_seed(seed)
    picks = []
    for c in range(classes):
        idx = torch.nonzero(labels.cpu() == c).flatten()
        picks.append(int(idx[torch.randint(len(idx), (1,), generator=gen)]))
    return images[torch.tensor(picks, device=images.device)]


def evaluate_images(net: ConvNet, sets: dict[str, Tensor | list[Tensor]], test_x: Tensor, test_y: Tensor,
                    seeds: list[int], steps: int, lr: float) -> dict[str, dict[str, Any]]:
    """Test accuracy of fresh classifiers trained on each image set (``[10, C, H, W]``, labels ``arange(10)``, or a
    list with one set per seed), one classifier per seed (init from that seed), all sets and seeds trained at
    once. Returns ``{name: {accuracy_mean, accuracy_std, accuracy_min, per_seed, test_loss_mean}}``."""
    device = test_x.device
    imgs, inits = [], []
    for name, s in sets.items():
        per_seed = s if isinstance(s, list) else [s] * len(seeds)
        if len(per_seed) != len(seeds):
            raise ValueError(f"{name}: {len(per_seed)} image sets for {len(seeds)} seeds")
        imgs += per_seed
    for seed in seeds:
        inits.append(net.init(1, torch.Generator(device=device).manual_seed(int(seed))))
    init = torch.cat(inits).repeat(len(sets), 1)
    labels = torch.arange(net.classes, device=device)
    params = net.train(init, torch.stack(imgs), labels, steps, lr)
    loss, acc = net.loss_and_accuracy(params, test_x, test_y)
    loss, acc = loss.view(len(sets), len(seeds)).cpu(), acc.view(len(sets), len(seeds)).cpu()
    out = {}
    for i, name in enumerate(sets):
        a = acc[i]
        out[name] = {"accuracy_mean": float(a.mean()), "accuracy_std": float(a.std()) if len(seeds) > 1 else 0.0,
                     "accuracy_min": float(a.min()), "per_seed": [float(x) for x in a],
                     "test_loss_mean": float(loss[i].mean()), "seeds": len(seeds)}
    return out


# ---------------------------------------------------------------------------------------------------- files, PNG
def save_distilled_images(path: str | Path, images: Tensor, labels: Tensor, metadata: dict[str, Any]) -> None:
    """Write ``images [10, C, H, W]`` float32 (normalised space) and ``labels [10]`` int64 atomically as
    safetensors; ``metadata`` (JSON: normalisation, settings, evaluation) under the key ``torch_distill``."""
    from safetensors.torch import save_file

    if images.dim() != 4 or labels.shape != (images.shape[0],):
        raise ValueError(f"expected images [K, C, H, W] and labels [K], got {tuple(images.shape)}, "
                         f"{tuple(labels.shape)}")
    if "normalization" not in metadata:
        raise ValueError("metadata needs 'normalization' ({mean, std}) so the file is usable alone")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__, **metadata}
    tensors = {"images": images.detach().float().cpu().contiguous(),
               "labels": labels.detach().long().cpu().contiguous()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"torch_distill": json.dumps(meta, default=str)}))


def load_distilled_images(path: str | Path) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """``(images [K, C, H, W], labels [K], metadata)`` of a file of :func:`save_distilled_images`; a name without a
    folder that is not a file resolves to ``torch_distill/datasets/images/<name>.safetensors``."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file() and p.parent == Path(".") and not p.suffix:
        p = Path(__file__).resolve().parents[1] / "datasets" / "images" / f"{p.name}.safetensors"
    if not p.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with safe_open(str(p), "pt") as f:
            meta_raw = (f.metadata() or {}).get("torch_distill")
            keys = set(f.keys())
            if keys != {"images", "labels"}:
                raise ImageFileError(f"{p}: tensors {sorted(keys)}, expected images and labels")
            images, labels = f.get_tensor("images"), f.get_tensor("labels")
    except ImageFileError:
        raise
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise ImageFileError(f"{p}: not a safetensors file ({type(e).__name__}: {e})") from None
    try:
        meta = json.loads(meta_raw or "")
    except ValueError:
        raise ImageFileError(f"{p}: no torch_distill JSON metadata; expected a file of save_distilled_images") from None
    if meta.get("format") != FORMAT or not isinstance(meta.get("normalization"), dict):
        raise ImageFileError(f"{p}: format {meta.get('format')!r}, expected {FORMAT!r} with a normalization entry")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ImageFileError(f"{p}: format version {meta['format_version']} is newer than this reader "
                             f"({FORMAT_VERSION})")
    if images.dim() != 4 or labels.shape != (images.shape[0],):
        raise ImageFileError(f"{p}: images {tuple(images.shape)}, labels {tuple(labels.shape)}; expected [K, C, H, W]"
                             " and [K]")
    return images, labels, meta


def plot_images(path: str | Path, images: Tensor, labels: Tensor, class_names: tuple[str, ...], mean: float,
                std: float, title: str = "") -> None:
    """PNG of ``images [K, 1, H, W]`` (normalised space, shown as pixels in [0, 1], clipped) with class names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    px = (images.detach().float().cpu() * std + mean).clamp(0, 1)
    k = px.shape[0]
    cols = min(5, k)
    rows = math.ceil(k / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.2 * rows + (0.4 if title else 0)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < k:
            ax.imshow(px[i, 0].numpy(), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_title(class_names[int(labels[i])], fontsize=10)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()

    def write(tmp: str) -> None:
        fig.savefig(tmp, format="png", dpi=100)

    atomic_write(path, write)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------------- config
PRESETS: dict[str, dict[str, Any]] = {
    "reference": {"popsize": 512, "generations": 1000, "inits": 2, "sgd_steps": 1000, "sgd_lr": 0.1,
                  "fitness_subset": 0, "eval_subset": 10000},
    "cpu": {"popsize": 32, "generations": 30, "inits": 1, "sgd_steps": 50, "sgd_lr": 1.0,
            "fitness_subset": 1000, "eval_subset": 1000},
}
"""Values of the options left at None: ``reference`` = the paper's run (GPU: 512 x 2 classifiers of 1000 SGD steps
per generation, fitness on all 60k training images); ``cpu`` = what a 2-core CPU runs in about 20 minutes."""


@dataclass
class DistillImagesConfig(ESOptions):
    """Supervised dataset distillation (HaDES): evolve one image per class so that a fresh CNN trained on the ten
    images alone classifies the real test set. Options left at None take the --preset's value."""

    data: Literal["fashion-mnist", "mnist"] = "fashion-mnist"
    """Data set (IDX files; nothing is downloaded)."""
    data_dir: str | None = None
    """Folder with train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-... (default for fashion-mnist:
    /usr/share/datasets/fashion-mnist, the Debian package dataset-fashion-mnist; required for mnist)."""
    preset: Literal["cpu", "reference"] = "cpu"
    """Defaults of the options left at None: reference (the paper: population 512, 2 inits, 1000 SGD steps at lr 0.1,
    fitness on the full training set, 1000 generations; a GPU run) or cpu (population 32, 1 init, 50 SGD steps at
    lr 1.0, fitness on 1000 training images, 30 generations)."""
    normalize: Literal["standard", "unit"] = "standard"
    """Input normalisation: standard ((pixel/255 - mean) / std of the training pixels) or unit (pixel/255, the
    reference's --normalize)."""
    strategy: Literal["open_es"] = "open_es"
    """Evolution strategy: OpenES + Adam (beta1 0.99, antithetic, raw fitness), as the reference."""
    popsize: int | None = None  # type: ignore[assignment]
    """ES population size (even; auto: preset, 512 reference, 32 cpu)."""
    generations: int | None = None  # type: ignore[assignment]
    """ES generations (auto: preset, 1000 reference, 30 cpu)."""
    sigma: float = 0.02  # type: ignore[assignment]
    """Initial ES noise scale, in normalised pixel units."""
    sigma_decay: float = 0.999
    """Multiplicative sigma decay per generation."""
    sigma_limit: float = 0.001
    """Floor of sigma."""
    es_lr: float = 0.01  # type: ignore[assignment]
    """ES Adam learning rate."""
    lr_decay: float = 0.999
    """Multiplicative ES learning-rate decay per generation."""
    lr_limit: float = 0.001
    """Floor of the ES learning rate."""
    inits: int | None = None
    """Classifier initialisations trained per candidate, shared by the whole generation (auto: 2 reference, 1 cpu)."""
    sgd_steps: int | None = None
    """Full-batch SGD steps of the inner classifier training (auto: 1000 reference, 50 cpu)."""
    sgd_lr: float | None = None
    """SGD learning rate of the inner training, on cross-entropy / 10 as the reference (auto: 0.1 reference, 1.0
    cpu)."""
    fitness_subset: int | None = None
    """Training images the fitness is measured on, drawn afresh each generation and shared by the population;
    0 = the full training set (auto: 0 reference, 1000 cpu)."""
    eval_subset: int | None = None
    """Held-out training images (fixed) for the periodic ES-mean accuracy (auto: 10000 reference, 1000 cpu)."""
    eval_inits: int = 2
    """Fresh classifiers trained on the ES mean at each periodic evaluation."""
    final_seeds: int = 5
    """Fresh classifiers (one per seed) per image set in the final test evaluation."""
    final_steps: int = 1000
    """SGD steps of the final evaluation's classifiers (the reference recipe; the inner recipe is reported too
    when it differs)."""
    final_lr: float = 0.1
    """SGD learning rate of the final evaluation's classifiers."""
    eval_every: int = 10
    """Evaluate the ES mean every N generations (accuracy on the eval subset; the best mean is kept too)."""

    # RunOptions of the RL searches that mean nothing here: kept (run_search and resume read them), hidden.
    env: Suppress[str] = "images"  # type: ignore[assignment]
    episodes: Suppress[int] = 8  # type: ignore[assignment]
    max_steps: Suppress[int | None] = None  # type: ignore[assignment]
    deterministic_eval: Suppress[bool] = False  # type: ignore[assignment]
    obs_norm: Suppress[Literal["random", "none"]] = "none"  # type: ignore[assignment]
    backend: Suppress[Literal["auto", "native", "envpool", "gymnasium"]] = "auto"  # type: ignore[assignment]
    eval_episodes: Suppress[int] = 32  # type: ignore[assignment]
    final_episodes: Suppress[int] = 100  # type: ignore[assignment]
    max_env_steps: Suppress[float | None] = None  # type: ignore[assignment]

    strategy_fields: ClassVar[tuple[str, ...]] = ("sigma_decay", "sigma_limit", "lr_decay", "lr_limit")

    def __post_init__(self) -> None:
        preset = PRESETS.get(self.preset)
        if preset is None:
            raise ValueError(f"preset={self.preset!r}: expected one of {sorted(PRESETS)}")
        for k, v in preset.items():
            if getattr(self, k) is None:
                setattr(self, k, v)
        self.env = self.data

    def strategy_kwargs(self) -> dict[str, Any]:
        kw = super().strategy_kwargs()
        kw.update(beta1=0.99, maximize=False)  # the reference's Adam beta1; the fitness is a loss
        return kw

    def validate(self) -> None:
        super().validate()
        for k in ["inits", "sgd_steps", "eval_subset", "eval_inits", "final_seeds", "final_steps"]:
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{k}={v!r}: expected a positive integer")
        if not isinstance(self.fitness_subset, int) or self.fitness_subset < 0:
            raise ValueError(f"fitness_subset={self.fitness_subset!r}: expected 0 (full set) or a positive integer")
        for k in ["sgd_lr", "final_lr", "sigma_decay", "lr_decay"]:
            v = getattr(self, k)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{k}={v!r}: expected a positive finite number")
        for k in ["sigma_limit", "lr_limit"]:
            v = getattr(self, k)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{k}={v!r}: expected a finite number >= 0")
        if self.data_dir is None and self.data not in DEFAULT_DATA_DIRS:
            raise ValueError(f"data={self.data!r}: pass --data-dir (a folder with the IDX files); only "
                             f"{sorted(DEFAULT_DATA_DIRS)} have a default folder")


# ------------------------------------------------------------------------------------------------------- problem
class DistillImagesProblem:
    """The :class:`~torch_distill.runner.Problem` of image distillation. Genome: the ten images ``[10 * C*H*W]``
    (normalised space). Fitness ``[P]``: the reference loss of ``inits`` fresh classifiers per candidate on
    ``fitness_subset`` training images (both drawn from ``derive_seed(seed, g, ...)`` and shared by every candidate
    of generation ``g``), minimised. ``evaluate_mean``'s ``return_mean`` is an accuracy (larger is better) on a
    fixed held-out part of the training set, never the test set."""

    def __init__(self, config: DistillImagesConfig, data: ImageData) -> None:
        self.cfg = config
        self.data = data
        self.device = data.train_x.device
        c, h, w = data.train_x.shape[1:]
        self.net = ConvNet(channels=c, height=h, width=w)
        self.image_shape = (10, c, h, w)
        self.num_dims = math.prod(self.image_shape)
        self.labels = torch.arange(10, device=self.device)
        n = data.train_x.shape[0]
        if config.fitness_subset > n:
            raise ValueError(f"fitness_subset={config.fitness_subset}: the training set has only {n} images")
        if config.eval_subset > n:
            raise ValueError(f"eval_subset={config.eval_subset}: the training set has only {n} images")
        gen = torch.Generator().manual_seed(derive_seed(config.seed, -1, Streams.MEAN_EVAL))
        perm = torch.randperm(n, generator=gen)
        self.eval_idx = perm[:config.eval_subset].to(self.device)

    def initial_mean(self) -> Tensor:
        return class_means(self.data.train_x, self.data.train_y).reshape(-1)

    def images(self, genomes: Tensor) -> Tensor:
        """Genomes ``[P, D]`` as images ``[P, 10, C, H, W]``."""
        return genomes.reshape(genomes.shape[0], *self.image_shape)

    def _inits(self, seed: int, n: int) -> Tensor:
        return self.net.init(n, torch.Generator(device=self.device).manual_seed(seed))

    def train(self, genomes: Tensor, inits: Tensor, steps: int | None = None, lr: float | None = None) -> Tensor:
        """Classifiers ``[P * R, num_params]`` (member ``p * R + r``) trained from ``inits [R, num_params]`` on every
        candidate of ``genomes [P, D]``."""
        p, r = genomes.shape[0], inits.shape[0]
        imgs = self.images(genomes).unsqueeze(1).expand(p, r, *self.image_shape).reshape(p * r, *self.image_shape)
        params0 = inits.unsqueeze(0).expand(p, r, -1).reshape(p * r, -1)
        return self.net.train(params0, imgs, self.labels, steps or self.cfg.sgd_steps, lr or self.cfg.sgd_lr)

    def fitness(self, genomes: Tensor, generation: int) -> tuple[Tensor, dict[str, Tensor]]:
        c = self.cfg
        inits = self._inits(derive_seed(c.seed, generation, Streams.INIT), c.inits)
        params = self.train(genomes, inits)
        x, y = self.data.train_x, self.data.train_y
        if c.fitness_subset:
            gen = torch.Generator().manual_seed(derive_seed(c.seed, generation, Streams.ENV))
            idx = torch.randperm(x.shape[0], generator=gen)[:c.fitness_subset].to(self.device)
            x, y = x[idx], y[idx]
        loss, _ = self.net.loss_and_accuracy(params, x, y)
        zero = torch.zeros((), device=self.device)
        return loss.view(genomes.shape[0], -1).mean(1), {"env_steps": zero, "episode_steps": zero}

    def evaluate_mean(self, mean: Tensor, generation: int) -> dict[str, float]:
        inits = self._inits(derive_seed(self.cfg.seed, generation, Streams.MEAN_INIT), self.cfg.eval_inits)
        params = self.train(mean.unsqueeze(0), inits)
        x, y = self.data.train_x[self.eval_idx], self.data.train_y[self.eval_idx]
        loss, acc = self.net.loss_and_accuracy(params, x, y)
        return {"return_mean": float(acc.mean()), "loss": float(loss.mean())}

    def state_dict(self) -> dict[str, Any]:
        return {"normalization": {"mean": self.data.mean, "std": self.data.std}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        norm = state["normalization"]
        if not (math.isclose(norm["mean"], self.data.mean, rel_tol=1e-6)
                and math.isclose(norm["std"], self.data.std, rel_tol=1e-6)):
            raise ValueError(f"the checkpoint's normalisation {norm} differs from this data's "
                             f"({self.data.mean}, {self.data.std}): another data folder?")


# --------------------------------------------------------------------------------------------------- the search
class DistillImagesSearch(SearchMethod):
    """Image distillation for :func:`~torch_distill.search.run_search`: saves ``images.safetensors`` (+
    ``images_best.safetensors`` when an earlier periodic evaluation was better) and a PNG of each, with the test
    accuracy of fresh classifiers trained on them next to the two baselines (class means, random real images)."""

    artefact = "images"

    def __init__(self, config: DistillImagesConfig, device: torch.device, resumed: bool) -> None:
        self.config = config
        self.data = load_image_data(config.data, config.data_dir, config.normalize, device)
        self.problem = DistillImagesProblem(config, self.data)
        self._baselines: dict[str, Any] | None = None

    def run_name(self) -> str:
        return f"{self.config.data}-distill-images-s{self.config.seed}"

    def record(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "method": "distill-images",
                "normalization": {"mean": self.data.mean, "std": self.data.std},
                "strategy": self.config.strategy_name(), "strategy_kwargs": self.config.strategy_kwargs(),
                "classifier": asdict(self.problem.net)}

    def banner(self, where: str) -> str:
        c = self.config
        subset = f"{c.fitness_subset} training images per generation" if c.fitness_subset else "the full training set"
        return (f"Image distillation on {c.data} [{where}], preset {c.preset}: 10 images ({self.problem.num_dims} "
                f"dims) from the class means, OpenES popsize {c.popsize}, {c.generations} generations, sigma "
                f"{c.sigma} lr {c.es_lr}; {c.inits} classifier init(s) x {c.sgd_steps} SGD steps at lr {c.sgd_lr}; "
                f"fitness = train loss (CE/10) on {subset}")

    def title(self) -> str:
        return f"distill-images {self.config.data} (fitness: train loss, minimised)"

    def _recipes(self) -> list[tuple[str, int, float]]:
        c = self.config
        out = [(f"{c.final_steps} SGD steps lr {c.final_lr}", c.final_steps, c.final_lr)]
        if (c.sgd_steps, c.sgd_lr) != (c.final_steps, c.final_lr):
            out.append((f"{c.sgd_steps} SGD steps lr {c.sgd_lr} (inner loop)", c.sgd_steps, c.sgd_lr))
        return out

    def finish(self, candidate: Candidate, run_dir: Path) -> Finished:
        c, d = self.config, self.data
        seeds = [candidate.seed % 100000 + i for i in range(c.final_seeds)]
        images = candidate.mean.reshape(self.problem.image_shape)
        sets: dict[str, Tensor | list[Tensor]] = {"distilled": images}
        if self._baselines is None:
            sets["class means"] = class_means(d.train_x, d.train_y)
            sets["random real image per class"] = [random_real_images(d.train_x, d.train_y, s) for s in seeds]
        evals: dict[str, dict[str, Any]] = {}
        for recipe, steps, lr in self._recipes():
            evals[recipe] = evaluate_images(self.problem.net, sets, d.test_x, d.test_y, seeds, steps, lr)
        if self._baselines is None:
            self._baselines = {r: {k: v for k, v in e.items() if k != "distilled"} for r, e in evals.items()}
        else:
            for r, e in evals.items():
                e.update(self._baselines[r])
        meta = {**candidate.metadata(), "data": c.data, "classes": list(d.classes),
                "normalization": {"mean": d.mean, "std": d.std, "pixel_scale": 255.0,
                                  "formula": "x = (pixel / pixel_scale - mean) / std"},
                "classifier": asdict(self.problem.net), "loss": "cross_entropy / classes (the reference's)",
                "inner": {"sgd_steps": c.sgd_steps, "sgd_lr": c.sgd_lr, "inits": c.inits, "full_batch": True},
                "fitness_subset": c.fitness_subset or int(d.train_x.shape[0]),
                "es": {"strategy": "open_es", **c.strategy_kwargs()}, "seed": c.seed, "preset": c.preset,
                "test_eval": {"seeds": seeds, **evals}}
        path = candidate.file(run_dir, "images")
        save_distilled_images(path, images, torch.arange(10), meta)
        plot_images(path.with_suffix(".png"), images, torch.arange(10), d.classes, d.mean, d.std,
                    f"{c.data}: distilled, {candidate.which} (gen {candidate.generation})")
        label = f"distilled, {candidate.which} (gen {candidate.generation})"
        rows = [{"images": label if name == "distilled" else name,
                 "classifier training": recipe, "seeds": r["seeds"], "test accuracy": r["accuracy_mean"],
                 "std": r["accuracy_std"], "worst seed": r["accuracy_min"]}
                for recipe, e in evals.items() for name, r in e.items()
                if name == "distilled" or candidate.which == "final"]
        return Finished(path, evals, rows)

    def summary(self, common: dict[str, Any], entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
        c = self.config
        return {"method": "distill-images", "data": c.data, "preset": c.preset,
                "fitness": f"train loss (CE/10) on {c.fitness_subset or 'all'} training images (minimised)",
                **common, "images": entries, "path": entries["final"]["path"], "test_eval": entries["final"]["eval"]}

    def headline(self, summary: dict[str, Any]) -> str:
        return (f"Distilled {self.config.data} images (one per class) after {summary['generations']} generations, "
                f"{summary['train_time_s']:.1f}s; test accuracy of fresh classifiers "
                f"({self.config.final_seeds} seeds):")


def run_distill_images(config: DistillImagesConfig, resume: str | None = None,
                       resume_overrides: Collection[str] = ()) -> dict[str, Any]:
    """Run image distillation end to end (ES loop with checkpoints and resume, final test evaluation against the
    class-mean and random-real-image baselines, ``images.safetensors`` + PNG, ``summary.json``). Returns the
    summary (rank 0) or ``{}``."""
    return run_search(config, DistillImagesSearch, resume, resume_overrides)
