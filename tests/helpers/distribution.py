"""Test data for the distribution area: small variant files, a manifest, a local HTTP server.

The variants pipeline writes the real files; these fixtures build tiny ones directly with
``generator.variants.store.write_variant`` so fetch/publish/labels can be tested on their own.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import generator.cli
from generator import CLASSES, __version__
from generator.artefacts import RECORD_FORMAT
from generator.artefacts.kinds import DEFAULT_FAMILIES, family_kinds
from generator.variants import ALL_TEST, CLEAN_TRAIN
from generator.variants.manifest import FORMAT, MANIFEST_NAME, sha256_file
from generator.variants.store import Row, encode_mask, encode_png, write_variant

KINDS = tuple(family_kinds(DEFAULT_FAMILIES))  # the paper's kinds

# (variant, split, rows, share of rows with an artefact)
DEFAULT_VARIANTS = (
    (CLEAN_TRAIN, "train", 14, 0.0),
    (ALL_TEST, "test", 11, 1.0),
    ("test_40", "test", 10, 0.4),
)


def make_rows(n: int, share: float, seed: int, size=(32, 24)) -> list[Row]:
    """``n`` rows of random pixels; every class appears (labels cycle), artefacts on the first share*n."""
    rng = np.random.default_rng(seed)
    w, h = size
    n_art = int(round(share * n))
    rows = []
    for i in range(n):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        lesion = np.zeros((h, w), np.uint8)
        lesion[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 1
        has = i < n_art
        kind = KINDS[i % len(KINDS)] if has else ""
        art = np.zeros((h, w), np.uint8)
        record = ""
        if has:
            art[:3, :5] = 1
            # the shape of generator.artefacts records
            record = json.dumps(
                {
                    "format": RECORD_FORMAT,
                    "kind": kind,
                    "seed": i,
                    "bank": "0" * 16,
                    "template_set": f"{kind}_set{i % 2}",
                    "image_shape": [h, w],
                    "instances": [
                        {
                            "template": f"{kind}_{i % 3:02d}_{j}",
                            "flip": ("none", "vertical")[j % 2],
                            "scale": 0.5 + 0.1 * j,
                            "angle": 15 * i + j,
                            "centre": [int(i % w), int((i + j) % h)],
                        }
                        for j in range(1 + i % 2)
                    ],
                }
            )
        label = i % len(CLASSES)
        rows.append(
            Row(
                image_id=f"ISIC_{seed % 1000:03d}{i:04d}",
                lesion_id=f"HAM_{seed % 1000:03d}{i // 2:04d}",
                label=label,
                image_bytes=encode_png(image),
                lesion_mask_bytes=encode_mask(lesion),
                artefact_mask_bytes=encode_mask(art),
                has_artefact=has,
                kind=kind,
                record=record,
                metadata={
                    "dx": CLASSES[label],
                    "dx_type": "histo",
                    "age": "45",
                    "sex": "male",
                    "localization": "back",
                    "dataset": "synthetic",
                },
            )
        )
    return rows


def build_dataset(root: Path, variants=DEFAULT_VARIANTS, seed: int = 0, base_url: str | None = None) -> dict:
    """Write ``<root>/<variant>.h5`` files and ``<root>/manifest.json`` (the schema generator.variants.build writes)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    files = []
    for k, (variant, split, n, share) in enumerate(variants):
        rows = make_rows(n, share, seed + k)
        path = write_variant(
            root / f"{variant}.h5",
            rows,
            n,
            {
                "variant": {"name": variant, "split": split},
                "split": split,
                "seed": seed,
                "source_fingerprint": "f" * 16,
                "templates": "builtin:test",
            },
        )
        class_counts = {c: 0 for c in CLASSES}
        artefact_counts: dict[str, int] = {}
        for r in rows:
            class_counts[CLASSES[r.label]] += 1
            if r.has_artefact:
                artefact_counts[r.kind] = artefact_counts.get(r.kind, 0) + 1
        files.append(
            {
                "name": path.name,
                "variant": variant,
                "split": split,
                "description": f"test variant {variant}",
                "sha256": sha256_file(path),
                "bytes": path.stat().st_size,
                "rows": n,
                "class_counts": class_counts,
                "artefact_counts": artefact_counts,
                "n_artefact": sum(artefact_counts.values()),
                "content_digest": hashlib.sha256(variant.encode()).hexdigest(),
            }
        )
    manifest = {
        "format": FORMAT,
        "generator_version": __version__,
        "seed": seed,
        "source_fingerprint": "f" * 16,
        "templates": "builtin:test",
        "image_size": [32, 24],
        "synthetic": True,
        "base_url": base_url,
        "licence": "CC BY-NC-SA 4.0 (test)",
        "citation": "test citation",
        "files": files,
    }
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    return manifest


# --- a local HTTP server with Range support and fault injection ------------------------------


@dataclass
class ServerState:
    root: Path
    url: str = ""
    requests: list = field(default_factory=list)  # (path, headers dict)
    cut_once: set = field(default_factory=set)  # names whose first GET is cut mid-file
    corrupt: set = field(default_factory=set)  # names served with one byte flipped
    ignore_range: bool = False
    # hostile behaviours (issue 13), each bounded so that a test can never hang:
    drip: dict = field(default_factory=dict)  # name -> seconds between single bytes (at most 10 s a response)
    drip_once: set = field(default_factory=set)  # names dripped on their first GET only
    redirect: dict = field(default_factory=dict)  # name -> Location of a 302 answer
    hold: threading.Event | None = None  # when set up, each GET waits for it (at most 10 s) before answering
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]

    def range_requests(self, name: str) -> list[str]:
        return [h["Range"] for p, h in self.requests if p.endswith("/" + name) and "Range" in h]


def _handler(state: ServerState):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def do_GET(self):  # noqa: N802 - http.server API
            with state.lock:
                state.requests.append((self.path, dict(self.headers)))
                cut = False
                name = self.path.rsplit("/", 1)[-1]
                if name in state.cut_once:
                    state.cut_once.discard(name)
                    cut = True
                delay = state.drip.get(name)
                if name in state.drip_once:
                    state.drip_once.discard(name)
                    delay = delay or 0.05
            if state.hold is not None:
                state.hold.wait(timeout=10)
            if name in state.redirect:
                self.send_response(302)
                self.send_header("Location", state.redirect[name])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path = state.root / name
            if not self.path.startswith("/files/") or "/" in self.path[7:] or not path.is_file():
                self.send_error(404)
                return
            data = bytearray(path.read_bytes())
            if name in state.corrupt:
                data[len(data) // 2] ^= 0xFF
            start = 0
            rng = self.headers.get("Range")
            if rng and not state.ignore_range:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_error(416)
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = bytes(data[start:])
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if cut:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            if delay:
                deadline = time.monotonic() + 10
                try:
                    for i in range(len(body)):
                        if time.monotonic() > deadline:
                            break
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(delay)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on us: what the test wants
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def serve(root: Path):
    """Serve ``root`` on 127.0.0.1 (ephemeral port) in a thread; yields the ServerState."""
    state = ServerState(root=Path(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/files/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def cli_main(argv: list[str]) -> int:
    """The real console entry point, with only our command module registered (so tests do not depend
    on other areas' command modules being importable)."""
    saved = generator.cli.COMMAND_MODULES
    generator.cli.COMMAND_MODULES = ("generator.cli_distribution",)
    try:
        return generator.cli.main(argv)
    finally:
        generator.cli.COMMAND_MODULES = saved
