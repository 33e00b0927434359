"""Any simulation program as a campaign simulator (entry point ``command``).

For each point: render the input deck from a Jinja2 template with the point's parameters (and
``seed``, ``index``), run the executable in the point's own folder with a timeout and a clean
environment, and read the declared outputs with a parser::

    simulator:
      name: command
      package: pymadng                 # optional: the executable ships in this Python package
      executable: bin/mad_{system}     # a path, a name on PATH, or relative to ``package``
      args: ["{input}"]                # {input}: the rendered input file's name
      template_file: fodo.mad          # or template: "..." inline
      input_name: job.mad
      parameters:                      # the program's inputs: units, bounds, defaults
        k1f: {unit: 1/m^2, min: 0.05, max: 1.0, default: 0.3}
      outputs:
        q1: {parser: regex, pattern: 'q1 = (\\S+)'}                  # on stdout by default
        betx_max: {parser: json, file: out.json, key: betx_max, unit: m}
        profile: {parser: hdf5, file: out.h5, dataset: beta, shape: [100]}
      timeout: 60                      # seconds per point

Failures are data: a non-zero exit, a timeout or an output the parser cannot find raises
:class:`~twinforge.errors.JobFailure` with the exit code and the tail of stderr (the campaign
records it and retries); a template that names an undefined parameter, or an executable that is
missing, is refused when the config is read.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, PositiveFloat, model_validator

from twinforge.config import StrictModel
from twinforge.errors import ConfigError, JobFailure
from twinforge.simulation.base import Output, OutputFormat, RunResult, Simulator
from twinforge.simulation.table import TableFormat
from twinforge.space import Parameter, Points, ResolvedSpace

__all__ = ["CommandBackend", "CommandOptions"]

_TAIL_LINES = 20
_CONTEXT = ("seed", "index")  # names every template may use besides the parameters


class ParameterSpec(StrictModel):
    """One input of the program."""

    unit: str | None = None
    min: float | None = None
    max: float | None = None
    type: Literal["float", "integer", "category"] = "float"
    choices: list[float | int | str] | None = None
    default: Any = None
    description: str = ""


class OutputSpec(StrictModel):
    """Where one output is read: ``regex`` (a number in stdout, stderr or a text file: the
    pattern's first group, the last match unless ``match: first``), ``json`` (``key`` in a JSON
    file, dots for nesting), ``hdf5`` (a dataset in an HDF5 file)."""

    parser: Literal["regex", "json", "hdf5"]
    pattern: str | None = None
    source: str = Field("stdout", description="regex: stdout, stderr, or a file name")
    match: Literal["first", "last"] = "last"
    file: str | None = None
    key: str | None = None
    dataset: str | None = None
    shape: list[int] = Field(default_factory=list, description="() for a number")
    unit: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> OutputSpec:
        need = {"regex": ("pattern",), "json": ("file", "key"), "hdf5": ("file", "dataset")}
        missing = [k for k in need[self.parser] if getattr(self, k) is None]
        if missing:
            raise ValueError(f"the {self.parser} parser needs {', '.join(missing)}")
        if self.parser == "regex":
            try:
                compiled = re.compile(self.pattern or "")
            except re.error as exc:
                raise ValueError(f"pattern {self.pattern!r}: {exc}") from None
            if compiled.groups < 1:
                raise ValueError(f"pattern {self.pattern!r} needs a group: (...) around the number")
            if self.shape:
                raise ValueError("the regex parser reads one number (shape [])")
        return self


class CommandOptions(StrictModel):
    """The program, its input template, its parameters and outputs, limits."""

    executable: str = Field(description="a path, a name on PATH, or a path inside 'package'")
    package: str | None = Field(None, description="a Python package that ships the executable")
    args: list[str] = Field(default_factory=lambda: ["{input}"])
    template: str | None = Field(None, description="the input deck, a Jinja2 template")
    template_file: str | None = None
    input_name: str = Field("input.txt", description="file name of the rendered deck")
    parameters: dict[str, ParameterSpec]
    outputs: dict[str, OutputSpec]
    timeout: PositiveFloat = Field(600.0, description="seconds per point")
    env: dict[str, str] = Field(default_factory=dict, description="added to the clean env")
    keep: Literal["failed", "always", "never"] = Field(
        "failed", description="keep each point's folder: on failure (default), always, never"
    )
    code_name: str | None = Field(None, description="the code's name (default: the executable)")
    code_version: str | None = None

    @model_validator(mode="after")
    def _check(self) -> CommandOptions:
        if (self.template is None) == (self.template_file is None):
            raise ValueError("give one of 'template' (inline) or 'template_file'")
        if not self.outputs:
            raise ValueError("declare at least one output")
        if "/" in self.input_name or self.input_name in ("", ".", ".."):
            raise ValueError(f"input_name must be a file name, got {self.input_name!r}")
        return self


class CommandBackend(Simulator):
    """Runs an external program once per point."""

    name = "command"
    summary = "any program: Jinja2 input deck, subprocess with timeout, declared output parsers"
    Options: ClassVar[type[StrictModel]] = CommandOptions
    format: ClassVar[type[OutputFormat]] = TableFormat

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._program = _resolve_executable(self.opts)
        self._template_text = _template_text(self.opts)
        self._template = _compile(self._template_text, self._where, set(self.opts.parameters))

    @property
    def opts(self) -> CommandOptions:
        assert isinstance(self.options, CommandOptions)
        return self.options

    @property
    def _where(self) -> str:
        return self.opts.template_file or "the inline template"

    def parameters(self) -> list[Parameter]:
        return [
            Parameter(
                name, unit=p.unit, type=p.type, lower=p.min, upper=p.max, default=p.default,
                description=p.description, choices=tuple(p.choices) if p.choices else None,
            )
            for name, p in self.opts.parameters.items()
        ]  # fmt: skip

    def outputs(self) -> list[Output]:
        return [
            Output(name, o.unit, tuple(o.shape), "float64", o.description)
            for name, o in self.opts.outputs.items()
        ]

    def code(self) -> dict[str, str]:
        version = self.opts.code_version
        if version is None and self.opts.package is not None:
            from importlib.metadata import PackageNotFoundError
            from importlib.metadata import version as package_version

            try:
                version = f"as shipped by {self.opts.package} {package_version(self.opts.package)}"
            except PackageNotFoundError:
                version = None
        return {"name": self.opts.code_name or self._program.name,
                "version": version or "unknown"}  # fmt: skip

    def provenance(self) -> dict[str, Any]:
        return {**super().provenance(), "executable": str(self._program), "args": self.opts.args}

    def worker_options(self) -> dict[str, Any]:
        data = self.opts.model_dump(mode="json")
        data |= {"template": self._template_text, "template_file": None}  # workers: inline
        return data

    def check_space(self, space: ResolvedSpace) -> None:
        return None  # the template's names were checked against the parameters already

    def run(
        self, points: Points, seed: int, *, first_index: int = 0, workdir: Path | None = None
    ) -> RunResult:
        n = len(next(iter(points.values())))
        values = {name: [] for name in self.opts.outputs}
        decks: list[str] = []
        root = Path(workdir) if workdir is not None else None
        for i in range(n):
            point = {k: v[i].item() if hasattr(v[i], "item") else v[i] for k, v in points.items()}
            try:
                deck = self._template.render(**point, seed=seed, index=first_index + i)
            except Exception as exc:  # the same point fails the same way every time
                raise JobFailure(
                    f"point {first_index + i}: {self._where} does not render: "
                    f"{type(exc).__name__}: {exc}",
                    retryable=False,
                ) from None
            decks.append(deck)
            for name, value in self._run_point(deck, first_index + i, root).items():
                values[name].append(value)
        outputs = {}
        for name, o in self.opts.outputs.items():
            outputs[name] = np.asarray(values[name], dtype=np.float64).reshape(n, *o.shape)
        return RunResult(outputs, {"input": decks})

    def _run_point(self, deck: str, index: int, root: Path | None) -> dict[str, Any]:
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"point-{index:06d}-", dir=root))
        ok = False
        try:
            (folder / self.opts.input_name).write_text(deck, encoding="utf-8")
            args = [a.replace("{input}", self.opts.input_name) for a in self.opts.args]
            env = {
                "PATH": os.defpath, "HOME": str(folder), "TMPDIR": str(folder),
                "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", **self.opts.env,
            }  # fmt: skip
            stdout_path, stderr_path = folder / "stdout.txt", folder / "stderr.txt"
            with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
                proc = subprocess.Popen(
                    [str(self._program), *args], cwd=folder, env=env, stdin=subprocess.DEVNULL,
                    stdout=out, stderr=err, start_new_session=True,
                )  # fmt: skip
                try:
                    code = proc.wait(timeout=self.opts.timeout)
                except subprocess.TimeoutExpired:
                    _kill_group(proc)
                    raise JobFailure(
                        f"point {index}: {self._program.name} timed out after "
                        f"{self.opts.timeout:g} s (folder {folder})",
                        stderr_tail=_tail(stderr_path), retryable=True,
                    ) from None  # fmt: skip
            if code != 0:
                raise JobFailure(
                    f"point {index}: {self._program.name} exited with {code} (folder {folder})",
                    exit_code=code, stderr_tail=_tail(stderr_path), retryable=True,
                )  # fmt: skip
            result = {
                name: _parse(name, spec, folder, index) for name, spec in self.opts.outputs.items()
            }
            ok = True
            return result
        finally:
            if self.opts.keep == "never" or (self.opts.keep == "failed" and ok):
                shutil.rmtree(folder, ignore_errors=True)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-_TAIL_LINES:])


def _parse(name: str, spec: OutputSpec, folder: Path, index: int) -> Any:
    """One output of one point; JobFailure naming the file and key when it cannot be read."""

    def fail(why: str) -> JobFailure:
        return JobFailure(
            f"point {index}: output {name!r}: {why} (folder {folder})",
            stderr_tail=_tail(folder / "stderr.txt"), retryable=True,
        )  # fmt: skip

    def read(file: str) -> Path:
        path = folder / file
        if not path.is_file():
            raise fail(f"the program wrote no file {file}")
        return path

    if spec.parser == "regex":
        source = {"stdout": "stdout.txt", "stderr": "stderr.txt"}.get(spec.source, spec.source)
        text = read(source).read_text(encoding="utf-8", errors="replace")
        found = re.findall(spec.pattern or "", text, flags=re.MULTILINE)
        if not found:
            raise fail(f"pattern {spec.pattern!r} not found in {spec.source}")
        hit = found[0] if spec.match == "first" else found[-1]
        hit = hit[0] if isinstance(hit, tuple) else hit
        try:
            return float(hit)
        except ValueError:
            raise fail(
                f"{hit!r} (pattern {spec.pattern!r} in {spec.source}) is not a number"
            ) from None
    if spec.parser == "json":
        path = read(spec.file or "")
        try:
            value: Any = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise fail(f"{spec.file} is not JSON ({exc})") from None
        for part in (spec.key or "").split("."):
            if not isinstance(value, dict) or part not in value:
                raise fail(f"{spec.file} has no key {spec.key!r}")
            value = value[part]
        return _shaped(value, spec, fail)
    import h5py

    path = read(spec.file or "")
    try:
        with h5py.File(path, "r") as h5:
            if spec.dataset not in h5:
                raise fail(f"{spec.file} has no dataset {spec.dataset!r}")
            value = h5[spec.dataset][()]
    except OSError as exc:
        raise fail(f"{spec.file} is not HDF5 ({exc})") from None
    return _shaped(value, spec, fail)


def _shaped(value: Any, spec: OutputSpec, fail: Any) -> Any:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(f"{value!r} is not numeric") from None
    if array.shape != tuple(spec.shape):
        raise fail(f"shape {array.shape}, declared {tuple(spec.shape)}")
    return array


def _resolve_executable(o: CommandOptions) -> Path:
    """The executable's absolute path; ConfigError when it is missing or not executable."""
    text = o.executable.replace("{system}", platform.system())
    if o.package is not None:
        spec = importlib.util.find_spec(o.package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"executable: Python package {o.package!r} is not installed")
        path = Path(next(iter(spec.submodule_search_locations))) / text
    elif "/" in text:
        path = Path(text).expanduser()
    else:
        found = shutil.which(text)
        if found is None:
            raise ConfigError(f"executable {text!r} not found on PATH")
        path = Path(found)
    if not path.is_file():
        raise ConfigError(f"executable {path} does not exist")
    if not os.access(path, os.X_OK):
        raise ConfigError(f"executable {path} is not executable (chmod +x)")
    return path.resolve()


def _template_text(o: CommandOptions) -> str:
    if o.template is not None:
        return o.template
    assert o.template_file is not None
    try:
        return Path(o.template_file).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"template_file {o.template_file}: cannot read ({exc.strerror})"
        ) from None


def _compile(text: str, where: str, parameters: set[str]) -> Any:
    """The Jinja2 template; ConfigError for a syntax error or a name that is not a parameter."""
    import jinja2
    from jinja2 import meta

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    try:
        names = meta.find_undeclared_variables(env.parse(text))
        template = env.from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{where}, line {exc.lineno}: template error: {exc.message}") from None
    unknown = sorted(names - parameters - set(_CONTEXT))
    if unknown:
        raise ConfigError(
            f"{where}: the template names undefined parameter(s) {', '.join(unknown)} "
            f"(parameters: {', '.join(sorted(parameters)) or 'none'}; also seed, index)"
        )
    return template
