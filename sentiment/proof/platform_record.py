"""The platform a run was made on: what decides whether its bits can be reproduced elsewhere.

Training is bitwise deterministic on one platform only. TensorFlow, oneDNN and Eigen choose their
kernels by instruction set and cache sizes and so sum in another order elsewhere, and training
amplifies a last-bit difference into another model of the same quality. The train stage writes
this record beside the metrics (metrics/platform.json, neither a metric nor a param) and the
reproduction check compares it: equal records promise equal bits, different ones only a result
within the measured noise (proof/reproduction.py).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

# CPU features the numeric libraries dispatch on (oneDNN, Eigen, XNNPACK, OpenBLAS); other flags
# (virtualisation, security mitigations) differ between hosts without changing a single bit.
DISPATCH_FEATURES = (
    # x86-64 (Linux calls SSE3 "pni")
    "pni",
    "ssse3",
    "sse4_1",
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512cd",
    "avx512bw",
    "avx512dq",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    # aarch64
    "asimd",
    "asimdhp",
    "asimddp",
    "sve",
    "sve2",
    "bf16",
    "i8mm",
)
# Environment variables that change which kernels run or how they round: these names, and every
# variable of the libraries that read a family of them (OpenBLAS' core type, cache sizes and
# threads decide the baseline's and the word vectors' BLAS kernels and their blocking).
NUMERIC_ENVIRONMENT = (
    "TF_ENABLE_ONEDNN_OPTS",  # 0: TensorFlow's own kernels instead of oneDNN's
    "TF_DETERMINISTIC_OPS",
    "CUDA_VISIBLE_DEVICES",
)
NUMERIC_ENVIRONMENT_PREFIXES = (
    "ONEDNN_",  # e.g. ONEDNN_MAX_CPU_ISA=AVX caps the instruction set oneDNN dispatches to
    "DNNL_",  # oneDNN's older spelling of the same settings
    "OMP_",
    "OPENBLAS_",  # NumPy's and scikit-learn's BLAS: OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE, ...
    "MKL_",
)
VERSIONED_PACKAGES = ("tensorflow", "keras", "numpy", "scikit-learn")
CPUINFO = Path("/proc/cpuinfo")
CPU_CACHES = Path("/sys/devices/system/cpu/cpu0/cache")


def cpuinfo_fields(text: str) -> dict[str, str]:
    """The first processor's 'key: value' lines of /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # one processor's block is enough: they are identical
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def dispatch_features(fields: dict[str, str]) -> list[str]:
    """The instruction-set features the numeric kernels choose by, in DISPATCH_FEATURES order."""
    present = set((fields.get("flags") or fields.get("Features") or "").split())
    return [feature for feature in DISPATCH_FEATURES if feature in present]


def cpu_caches(folder: Path = CPU_CACHES) -> dict[str, str]:
    """{'L1d': '32K', 'L2': '512K', ...} of the first core; empty where the system hides them."""
    caches = {}
    for index in sorted(folder.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        caches[f"L{level}{suffix}"] = size
    return caches


def describe_cpu() -> dict:
    """CPU model, the features kernels dispatch on, caches and logical cores."""
    try:
        fields = cpuinfo_fields(CPUINFO.read_text())
    except OSError:
        fields = {}
    return {
        "model": fields.get("model name") or platform.processor() or "unknown",
        "vendor": fields.get("vendor_id") or fields.get("CPU implementer") or "unknown",
        "dispatch_features": dispatch_features(fields),
        "caches": cpu_caches(),
        "logical_cores": os.cpu_count(),
    }


def describe_gpus() -> list[dict]:
    """The GPUs TensorFlow sees, with the driver nvidia-smi reports; empty on a CPU machine."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return []
    driver = "unknown"
    if shutil.which("nvidia-smi"):
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        driver = (result.stdout.split() or ["unknown"])[0]
    return [
        {"name": tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)}
        | {"driver": driver}
        for gpu in gpus
    ]


def describe_numeric_libraries() -> dict[str, dict]:
    """The BLAS and OpenMP libraries NumPy, SciPy and scikit-learn load, as threadpoolctl sees
    them: {package: library, version, architecture (the kernels it dispatched to), threads}.
    They decide the baseline's bits as oneDNN decides the network's."""
    import scipy.sparse  # noqa: F401  (each loads its own libraries: load them to see them)
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_info

    libraries = {}
    for library in threadpool_info():
        folder = Path(library.get("filepath") or "unknown").parent.name  # e.g. scipy.libs
        owner = folder.removesuffix(".libs") if folder.endswith(".libs") else library["prefix"]
        libraries[f"{owner} {library['user_api']}"] = {
            "library": library["internal_api"],
            "version": library.get("version") or "unknown",
            "architecture": library.get("architecture", "n/a"),
            "threading_layer": library.get("threading_layer", "n/a"),
            "threads": library["num_threads"],
        }
    return dict(sorted(libraries.items()))


def onednn_enabled(environment: dict[str, str]) -> bool:
    """Whether TensorFlow uses oneDNN's CPU kernels: on by default on x86-64 Linux since TF 2.9."""
    setting = environment.get("TF_ENABLE_ONEDNN_OPTS")
    if setting is not None:
        return setting.strip().lower() not in ("0", "false", "off")
    return platform.machine().lower() in ("x86_64", "amd64") and platform.system() == "Linux"


def numeric_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """The variables of `environment` that change which kernels run or how they round, sorted."""
    return {
        name: value
        for name, value in sorted(environment.items())
        if name in NUMERIC_ENVIRONMENT or name.startswith(NUMERIC_ENVIRONMENT_PREFIXES)
    }


def describe_platform() -> dict:
    """The record of this machine and its software that decides a run's bits (see module doc).

    Call it in the process that trains, after TensorFlow's threads are configured.
    """
    import tensorflow as tf

    environment = numeric_environment(os.environ)
    libc_name, libc_version = platform.libc_ver()
    return {
        "cpu": describe_cpu(),
        "threads": {
            # 0 means TensorFlow's default: one thread per logical core
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        },
        "os": {
            "system": platform.system(),
            "architecture": platform.machine(),
            "libc": f"{libc_name} {libc_version}".strip() or "unknown",
        },
        "versions": {"python": platform.python_version()}
        | {package: _version(package) for package in VERSIONED_PACKAGES},
        "onednn": onednn_enabled(environment),
        "numeric_libraries": describe_numeric_libraries(),
        "environment": environment,
        "gpus": describe_gpus(),
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def platform_differences(committed: dict, reproduced: dict, prefix: str = "") -> list[str]:
    """'field: committed -> reproduced' for every field in which two records differ."""
    differences = []
    for key in sorted(set(committed) | set(reproduced)):
        old, new = committed.get(key), reproduced.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += platform_differences(old, new, f"{prefix}{key}.")
        elif old != new:
            differences.append(f"{prefix}{key}: {_short(old)} -> {_short(new)}")
    return differences


def _short(value: object) -> str:
    return re.sub(r"\s+", " ", str(value))
