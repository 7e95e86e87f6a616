"""Helpers for the data-layer tests: tiny files in the upstream layouts and a local HTTP server."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_LA = SHARED / "data" / "la"
SHARED_SPLITS = SHARED / "data" / "splits"
SHAPE = (8, 8, 6)


def tiny_case(seed: int = 0, shape: tuple[int, int, int] = SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """A float32 image and a uint8 {0, 1} label of the given (X, Y, Z) shape."""
    rng = np.random.default_rng(seed)
    image = rng.standard_normal(shape).astype(np.float32)
    label = (rng.random(shape) > 0.7).astype(np.uint8)
    return image, label


def write_h5(path: Path, datasets: Mapping[str, np.ndarray], attrs: Mapping | None = None) -> Path:
    """Write an h5 file the way the upstream preprocessing scripts do (plain datasets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f.create_dataset(key, data=value)
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
    return path


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


@contextlib.contextmanager
def serve(files: Mapping[str, bytes]) -> Iterator[str]:
    """Serve ``{url path: bytes}`` on 127.0.0.1 (free port) in a thread; yield the base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # the http.server API names it so
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body if body is not None else b"not found")

        def log_message(self, *args):  # keep pytest output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def unreachable_url() -> str:
    """A URL on a local port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
