"""A small runtime API: generate showers from a model directory or an exported ONNX file.

:class:`Generator` needs neither Lightning nor the training stack:

- an ``.onnx`` file (see :mod:`twinforge.inference.export`) runs with ``onnxruntime`` and
  ``numpy`` only; the model's description (noise shape, voxel count, binning, particles) is
  read from the file's ``metadata_props``; the noise is drawn with numpy
  (``Generator(PCG64(seed)).standard_normal``, float32);
- a model directory (:meth:`twinforge.models.Surrogate.load`) runs with PyTorch (``torch``
  backend; the noise is the model's own ``model.noise`` from a seeded ``torch.Generator``, as
  :meth:`~twinforge.models.Surrogate.sample` draws it, so the same seed gives the same showers),
  or is exported on the fly and run with ONNX Runtime (``onnx`` backend).

The two backends draw their noise with different generators, so the same seed gives different
(equally valid) showers; :meth:`Generator.generate` with ``noise=`` takes the noise from the
caller, and then both backends compute the same showers (to float rounding).

    >>> gen = Generator("model.onnx", threads=2)
    >>> showers = gen.generate([10_000.0, 20_000.0], pdg=11, seed=1)  # (2, V) float32, MeV
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from twinforge.errors import TwinforgeError

__all__ = [
    "BACKENDS",
    "Generator",
    "ModelInfo",
    "broadcast_conditions",
    "default_providers",
    "usable_cpus",
]

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx")
Backend = Literal["auto", "torch", "onnx"]
Precision = Literal["float32", "float16"]

_CUDA_EP = "CUDAExecutionProvider"
_CPU_EP = "CPUExecutionProvider"


@dataclass(frozen=True)
class ModelInfo:
    """What a generator produces.

    Attributes:
        family: model family (``vae``, ``gan``, ``flow``, ``flow-matching``).
        n_voxels: V, voxels per shower.
        noise_shape: shape of one shower's random input (without the batch axis).
        binning_xml: the CaloChallenge binning XML of the showers ("" if unknown).
        pdgs: particle ids the model was trained on.
        metadata: the ONNX file's ``metadata_props`` (empty for a model directory).
    """

    family: str
    n_voxels: int
    noise_shape: tuple[int, ...]
    binning_xml: str = ""
    pdgs: tuple[int, ...] = (11,)
    metadata: dict[str, str] = field(default_factory=dict)


def default_providers() -> list[str]:
    """ONNX Runtime providers to use: CUDA first when this onnxruntime build has it, then CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in (_CUDA_EP, _CPU_EP) if p in available] or [_CPU_EP]


def broadcast_conditions(
    energy: ArrayLike, pdg: ArrayLike = 11, theta: ArrayLike = 0.0, phi: ArrayLike = 0.0
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Conditions as four ``(N,)`` arrays; scalars (or length-1 arrays) are broadcast to N.

    ``energy`` in MeV (finite, > 0), ``pdg`` integer PDG ids, ``theta`` and ``phi`` in rad.

    Raises:
        TwinforgeError: lengths that do not match, or invalid values.
    """
    e = np.asarray(energy, dtype=np.float64).reshape(-1)
    n = e.shape[0]
    bad = ~(np.isfinite(e) & (e > 0))
    if bad.any():
        raise TwinforgeError(
            f"incident energy must be finite and > 0 MeV; {int(bad.sum())} value(s) are not "
            f"(first: {float(e[bad][0])})"
        )
    cols: list[NDArray[Any]] = []
    for name, value, dtype in (
        ("pdg", pdg, np.int64),
        ("theta", theta, np.float64),
        ("phi", phi, np.float64),
    ):
        arr = np.asarray(value).reshape(-1)
        if arr.size == 1:
            arr = np.full(n, arr[0])
        if arr.shape != (n,):
            raise TwinforgeError(
                f"{name}: expected 1 or {n} values (one per energy), got {arr.size}"
            )
        if name == "pdg" and not np.all(np.equal(np.mod(arr, 1), 0)):
            raise TwinforgeError("pdg: PDG ids must be integers")
        if name != "pdg" and not np.all(np.isfinite(arr.astype(np.float64))):
            raise TwinforgeError(f"{name} must be finite")
        cols.append(arr.astype(dtype))
    return e, cols[0], cols[1], cols[2]


class Generator:
    """Showers from a trained model, with PyTorch or ONNX Runtime.

    Args:
        path: a model directory (``model.json`` + weights) or an exported ``.onnx`` file.
        backend: ``"torch"`` (model directory only), ``"onnx"`` (an ONNX file, or a model
            directory exported on the fly into memory), or ``"auto"``: ``torch`` for a
            directory, ``onnx`` for a file.
        threads: intra-op threads (``torch.set_num_threads`` while generating, ONNX Runtime's
            ``intra_op_num_threads``); None leaves the library default.
        providers: ONNX Runtime execution providers, in order of preference; default
            :func:`default_providers` (CUDA when available, then CPU).
        device: torch backend: ``"cpu"`` or ``"cuda"``; default CUDA when available.
        precision: torch backend: ``"float16"`` runs the network (not the transforms) in half
            precision; slow or unsupported on CPUs, meant for GPUs.
        block_size: ONNX backend on the CPU: run a call of more showers than this in blocks of
            ``block_size`` showers, shared out to ``threads`` single-threaded sessions running
            at once, each writing its rows of one output array. A block's tensors then stay in
            the caches: a small model's elementwise passes over the voxels, bound by memory
            bandwidth at large batches, run faster (the Par04-sized VAE on siw: 28 -> 19 us per
            shower at batch 1000 on 2 cores, block 64). A large model reads its weights once per
            block and can run slower, and each session holds its own copy of them: time it
            (``twinforge bench --block-size``). None (default): one session runs each call with
            ``threads`` intra-op threads. Ignored, with a warning, where the session does not
            run on the CPU.

    Raises:
        TwinforgeError: missing or unreadable model, unknown backend, a backend that does not
            fit the path, an ONNX file without the twinforge metadata.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        backend: Backend = "auto",
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        device: str | None = None,
        precision: Precision = "float32",
        block_size: int | None = None,
    ) -> None:
        self.path = Path(path)
        if backend not in BACKENDS:
            raise TwinforgeError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
        if precision not in ("float32", "float16"):
            raise TwinforgeError(f"unknown precision {precision!r}; known: float32, float16")
        if threads is not None and threads < 1:
            raise TwinforgeError(f"threads must be >= 1, got {threads}")
        if block_size is not None and block_size < 1:
            raise TwinforgeError(f"block_size must be >= 1, got {block_size}")
        if not self.path.exists():
            raise TwinforgeError(f"{self.path}: model directory or ONNX file not found")
        is_dir = self.path.is_dir()
        if backend == "auto":
            backend = "torch" if is_dir else "onnx"
        if backend == "torch" and not is_dir:
            raise TwinforgeError(
                f"{self.path}: the torch backend needs a model directory, not a file "
                "(use backend='onnx' for an ONNX file)"
            )
        self.backend: str = backend
        self.threads = threads
        self.precision = precision
        self._session: Any = None
        self._blocks: _Blocks | None = None
        self._surrogate: Any = None
        self.device = "cpu"
        if backend == "onnx":
            source = _onnx_source(self.path)
            self._session = _open_session(self.path, source, threads, providers)
            self.info = _info_from_metadata(self.path, self._session)
            self._noise_dtype = _onnx_input_dtype(self._session, "noise")
            if block_size is not None:
                if self._session.get_providers()[0] == _CPU_EP:
                    self._blocks = _Blocks(self.path, source, block_size, threads or usable_cpus())
                else:
                    log.warning("block_size is for the CPU provider; %s runs calls whole",
                                self._session.get_providers()[0])  # fmt: skip
        else:
            if block_size is not None:
                raise TwinforgeError("block_size is an option of the onnx backend")
            self._load_torch(device)
        self.block_size = block_size if self._blocks is not None else None

    # ------------------------------------------------------------------ properties
    @property
    def family(self) -> str:
        """The model family."""
        return self.info.family

    @property
    def n_voxels(self) -> int:
        """V, voxels per shower."""
        return self.info.n_voxels

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """Shape of one shower's random input (without the batch axis)."""
        return self.info.noise_shape

    @property
    def binning_xml(self) -> str:
        """The CaloChallenge binning XML of the generated showers ("" if unknown)."""
        return self.info.binning_xml

    @property
    def readout(self) -> Any:
        """The :class:`~twinforge.detector.Readout` of the generated showers.

        Raises:
            TwinforgeError: the model does not carry its binning.
        """
        if not self.binning_xml:
            raise TwinforgeError(f"{self.path}: the model carries no binning")
        from twinforge.detector.readout import Readout

        return Readout.from_xml(self.binning_xml)

    @property
    def providers(self) -> list[str]:
        """ONNX Runtime providers in use (empty for the torch backend)."""
        return list(self._session.get_providers()) if self._session is not None else []

    def __repr__(self) -> str:
        where = self.providers[0] if self._session is not None else self.device
        return (
            f"Generator({str(self.path)!r}, backend={self.backend!r}, family={self.family!r}, "
            f"n_voxels={self.n_voxels}, on={where})"
        )

    # ------------------------------------------------------------------ generation
    def noise(self, n: int, seed: int | None = None) -> NDArray[np.float32]:
        """``(n, *noise_shape)`` float32 standard normal noise from ``PCG64(seed)``.

        What the ONNX backend draws; usable as ``noise=`` of :meth:`generate` on any backend.
        """
        rng = np.random.Generator(np.random.PCG64(seed))
        return rng.standard_normal((n, *self.noise_shape), dtype=np.float32)

    def generate(
        self,
        energy: ArrayLike,
        pdg: ArrayLike = 11,
        theta: ArrayLike = 0.0,
        phi: ArrayLike = 0.0,
        *,
        seed: int | None = None,
        noise: ArrayLike | None = None,
        batch_size: int = 10_000,
    ) -> NDArray[np.float32]:
        """Showers ``(N, V)`` float32 in MeV, voxels ordered (z, alpha, r) with r fastest.

        Args:
            energy: ``(N,)`` incident energies, MeV (a scalar gives one shower).
            pdg: PDG ids, ``(N,)`` or a scalar (broadcast).
            theta: polar angles of the incident direction, rad, ``(N,)`` or a scalar.
            phi: azimuths, rad, ``(N,)`` or a scalar.
            seed: same seed, same showers (per backend); None draws fresh entropy.
            noise: ``(N, *noise_shape)`` random input to use instead of drawing it (then
                ``seed`` is ignored and both backends give the same showers).
            batch_size: showers per forward pass (bounds memory).

        Non-negative, readout threshold applied.

        Raises:
            TwinforgeError: mismatched lengths, invalid conditions, wrong noise shape.
        """
        e, p, t, f = broadcast_conditions(energy, pdg, theta, phi)
        n = e.shape[0]
        if batch_size < 1:
            raise TwinforgeError(f"batch_size must be >= 1, got {batch_size}")
        z: NDArray[np.float32] | None = None
        if noise is not None:
            z = np.asarray(noise, dtype=np.float32)
            if z.shape != (n, *self.noise_shape):
                raise TwinforgeError(
                    f"noise: expected shape {(n, *self.noise_shape)}, got {tuple(z.shape)}"
                )
        if n == 0:
            return np.zeros((0, self.n_voxels), dtype=np.float32)
        if self.backend == "onnx":
            if z is None:
                z = self.noise(n, seed)
            return self._run_onnx(z, e, p, t, f, batch_size)
        return self._run_torch(z, e, p, t, f, seed, batch_size)

    # ------------------------------------------------------------------ ONNX Runtime
    def _run_onnx(
        self,
        z: NDArray[np.float32],
        e: NDArray[np.float64],
        p: NDArray[np.int64],
        t: NDArray[np.float64],
        f: NDArray[np.float64],
        batch_size: int,
    ) -> NDArray[np.float32]:
        wanted = {i.name: i.type for i in self._session.get_inputs()}
        inputs = {
            "noise": z.astype(self._noise_dtype, copy=False),
            "energy": e.astype(np.float32),
            "pdg": p,
            "theta": t.astype(np.float32),
            "phi": f.astype(np.float32),
        }
        inputs = {k: v for k, v in inputs.items() if k in wanted}
        if self._blocks is not None and e.shape[0] > self._blocks.block_size:
            return self._blocks.run(inputs, e.shape[0], self.n_voxels)
        out = []
        for start in range(0, e.shape[0], batch_size):
            feed = {k: v[start : start + batch_size] for k, v in inputs.items()}
            (showers,) = self._session.run(["showers"], feed)
            out.append(np.asarray(showers, dtype=np.float32))
        return out[0] if len(out) == 1 else np.concatenate(out)

    # ------------------------------------------------------------------ PyTorch
    def _load_torch(self, device: str | None) -> None:
        import torch

        from twinforge.models.base import Surrogate

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise TwinforgeError("device 'cuda' asked for, but torch sees no CUDA device")
        surrogate = Surrogate.load(self.path)
        surrogate.model.to(device)
        if self.precision == "float16":
            surrogate.model.half()
        surrogate.model.eval()
        self._surrogate = surrogate
        self.device = device
        with torch.no_grad():
            noise_shape = tuple(surrogate.model.noise(1, torch.Generator().manual_seed(0)).shape)
        self.info = ModelInfo(
            family=surrogate.family,
            n_voxels=surrogate.transform.n_voxels,
            noise_shape=noise_shape[1:],
            binning_xml=surrogate.binning_xml,
            pdgs=tuple(int(v) for v in surrogate.transform.pdgs),
        )

    def _run_torch(
        self,
        z: NDArray[np.float32] | None,
        e: NDArray[np.float64],
        p: NDArray[np.int64],
        t: NDArray[np.float64],
        f: NDArray[np.float64],
        seed: int | None,
        batch_size: int,
    ) -> NDArray[np.float32]:
        import torch

        surrogate = self._surrogate
        model, transform = surrogate.model, surrogate.transform
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 1)
        generator = torch.Generator().manual_seed(seed)
        half = self.precision == "float16"
        out = []
        with torch.no_grad(), _torch_threads(self.threads):
            for start in range(0, e.shape[0], batch_size):
                stop = min(start + batch_size, e.shape[0])
                if z is None:
                    noise = model.noise(stop - start, generator)
                else:
                    noise = torch.from_numpy(np.ascontiguousarray(z[start:stop]))
                energy = torch.as_tensor(e[start:stop], dtype=torch.float32, device=self.device)
                c = transform.encode_conditions_torch(
                    energy,
                    torch.as_tensor(p[start:stop], device=self.device),
                    torch.as_tensor(t[start:stop], dtype=torch.float32, device=self.device),
                    torch.as_tensor(f[start:stop], dtype=torch.float32, device=self.device),
                )
                noise = noise.to(self.device, torch.float16 if half else torch.float32)
                features = model.decode(noise, c.half() if half else c).float()
                showers = transform.inverse_torch(features, energy)
                out.append(showers.cpu().numpy().astype(np.float32, copy=False))
        return out[0] if len(out) == 1 else np.concatenate(out)


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op torch threads (unchanged when None)."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _Blocks:
    """Cache-blocked runs on the CPU (see ``Generator``'s ``block_size``): ``workers``
    single-threaded sessions, each taking a contiguous share of the rows in blocks of
    ``block_size``, writing into one output array through I/O binding (no copies)."""

    def __init__(self, path: Path, source: str | bytes, block_size: int, workers: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.block_size = block_size
        self.sessions = [_open_session(path, source, 1, [_CPU_EP]) for _ in range(workers)]
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="twinforge-onnx")
        self.dtype = {"tensor(float)": np.float32, "tensor(float16)": np.float16}[
            self.sessions[0].get_outputs()[0].type
        ]

    def run(self, inputs: dict[str, NDArray[Any]], n: int, n_voxels: int) -> NDArray[np.float32]:
        out = np.empty((n, n_voxels), dtype=self.dtype)
        bounds = np.linspace(0, n, len(self.sessions) + 1).astype(int)

        def share(i: int) -> None:
            session = self.sessions[i]
            for start in range(bounds[i], bounds[i + 1], self.block_size):
                stop = min(start + self.block_size, bounds[i + 1])
                binding = session.io_binding()
                for name, value in inputs.items():
                    binding.bind_cpu_input(name, np.ascontiguousarray(value[start:stop]))
                rows = out[start:stop]
                binding.bind_output(
                    "showers", "cpu", 0, self.dtype, list(rows.shape), rows.ctypes.data
                )
                session.run_with_iobinding(binding)

        for done in [self.pool.submit(share, i) for i in range(len(self.sessions))]:
            done.result()  # raises what a share raised
        return out if self.dtype == np.float32 else out.astype(np.float32)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask; all of them where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _onnx_source(path: Path) -> str | bytes:
    """What a session loads: an ``.onnx`` file's path, or a model directory exported into
    memory (needs torch)."""
    return _export_to_bytes(path) if path.is_dir() else str(path)


def _open_session(
    path: Path, source: str | bytes, threads: int | None, providers: Sequence[str] | None
) -> Any:
    """An ONNX Runtime session of ``source`` (from :func:`_onnx_source` of ``path``)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    providers = list(providers) if providers is not None else default_providers()
    unknown = [p for p in providers if p not in ort.get_available_providers()]
    if unknown:
        raise TwinforgeError(
            f"ONNX Runtime provider(s) {unknown} not available here; available: "
            f"{ort.get_available_providers()}"
        )
    try:
        return ort.InferenceSession(source, options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TwinforgeError(f"{path}: not a loadable ONNX model ({first})") from None


def _export_to_bytes(directory: Path) -> bytes:
    """The ONNX export of a model directory, as bytes (written to a temporary file first)."""
    from twinforge.inference.export import export_onnx
    from twinforge.models.base import Surrogate

    surrogate = Surrogate.load(directory)
    with tempfile.TemporaryDirectory(prefix="twinforge-onnx-") as tmp:
        target = Path(tmp) / "model.onnx"
        export_onnx(surrogate, target)
        return target.read_bytes()


def _info_from_metadata(path: Path, session: Any) -> ModelInfo:
    """The model description from an ONNX file's ``metadata_props``.

    Raises:
        TwinforgeError: the file lacks the metadata twinforge writes (not a twinforge export).
    """
    meta = dict(session.get_modelmeta().custom_metadata_map)
    missing = [k for k in ("family", "n_voxels", "noise_shape") if k not in meta]
    if missing:
        raise TwinforgeError(
            f"{path}: not a twinforge ONNX export (metadata {', '.join(missing)} missing)"
        )
    try:
        noise_shape = tuple(int(v) for v in json.loads(meta["noise_shape"]))
        pdgs = tuple(int(v) for v in json.loads(meta.get("pdgs", "[11]")))
        n_voxels = int(meta["n_voxels"])
    except (ValueError, TypeError) as exc:
        raise TwinforgeError(f"{path}: corrupt twinforge metadata ({exc})") from None
    return ModelInfo(
        family=meta["family"],
        n_voxels=n_voxels,
        noise_shape=noise_shape,
        binning_xml=meta.get("binning_xml", ""),
        pdgs=pdgs,
        metadata=meta,
    )


def _onnx_input_dtype(session: Any, name: str) -> type[np.floating[Any]]:
    """numpy dtype of a float input of the session (float16 or float32)."""
    for i in session.get_inputs():
        if i.name == name:
            return np.float16 if "float16" in i.type else np.float32
    raise TwinforgeError(f"the ONNX model has no input {name!r}")
