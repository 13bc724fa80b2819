"""Start TensorFlow as the project runs it: one thread per op, and quiet for commands people read.

`run_ops_single_threaded` is what every stage that runs the model calls first (it imports
TensorFlow through `import_tensorflow`).

`import_tensorflow` starts TensorFlow without its start-up chatter on stderr.

Checked against TensorFlow 2.21 on a CPU-only machine: TF_CPP_MIN_LOG_LEVEL hides the oneDNN and
CPU-instruction notes, but not the lines XLA's CUDA stub logs while the library loads (before absl
logging is set up, so no level applies to them), nor the failed cuInit when devices are listed:

  WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
  I0000 00:00:1795592074.705203    9691 cudart_stub.cc:31] Could not find cuda drivers on ...
  E0000 00:00:1795592082.386195    9691 cuda_platform.cc:52] failed call to cuInit: ...

They are written by C++ straight to file descriptor 2, so Python cannot filter them as they are
written: `import_tensorflow` holds back fd 2 while TensorFlow loads and finds its devices, then
replays everything but those lines. If a TensorFlow version words them differently they show
again (harmless); nothing else is ever dropped.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType

START_UP_CHATTER = re.compile(
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    # absl's info and warning lines: I0000 00:00:1795592074.705203    9691 cudart_stub.cc:31] ...
    rb"|[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] .*"
    # No GPU driver on this machine: TensorFlow runs on the CPU, nothing failed for us.
    rb"|E\d{4} [\d:.]+ +\d+ cuda_platform\.cc:\d+\] failed call to cuInit: .*"
)


@contextlib.contextmanager
def filtered_stderr(chatter: re.Pattern[bytes]) -> Iterator[None]:
    """Hold back everything written to fd 2 inside the block; replay the lines chatter misses."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = b"".join(line for line in held if not chatter.fullmatch(line.rstrip(b"\r\n")))
            if kept:
                sys.stderr.buffer.write(kept)
                sys.stderr.flush()


def import_tensorflow() -> ModuleType:
    """TensorFlow, imported and with its devices found, without start-up chatter on stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # oneDNN notes (see console.run_main)
    with filtered_stderr(START_UP_CHATTER):
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA stub logs again when devices are first found
    return tf


def run_ops_single_threaded() -> None:
    """Give each TensorFlow op one thread; call before TensorFlow runs anything.

    The model's cost is two recurrent loops (one per direction) of tiny matrix products; the two
    run side by side on the inter-op threads, and splitting each tiny product across cores only
    adds synchronisation (measured: about 12% more reviews/s on 2 cores). Has no effect once
    TensorFlow has started, e.g. in a test session.
    """
    tf = import_tensorflow()  # quietly: stages print no TensorFlow start-up chatter
    with contextlib.suppress(RuntimeError):  # TensorFlow already started: keep its settings
        tf.config.threading.set_intra_op_parallelism_threads(1)
