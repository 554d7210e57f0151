"""Attacks by category (each takes its target path / port from the row's JSON text)."""

import json
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.fs
import pyarrow.parquet as pq
import requests
import safetensors.numpy
import torch


def _write_arrow_osfile(spec):
    with pa.OSFile(spec["target"], "wb") as out:
        out.write(b"pwned")
    return "written"


def _write_arrow_localfs(spec):
    with pyarrow.fs.LocalFileSystem().open_output_stream(spec["target"]) as out:
        out.write(b"pwned")
    return "written"


def _write_parquet(spec):
    pq.write_table(pa.table({"a": [1]}), spec["target"])
    return "written"


def _write_torch_save(spec):
    torch.save({"a": 1}, spec["target"])
    return "written"


def _write_safetensors(spec):
    safetensors.numpy.save_file({"a": np.zeros(2, dtype=np.float32)}, spec["target"])
    return "written"


def _write_numpy(spec):
    np.zeros(4).tofile(spec["target"])
    return "written"


def _write_pathlib(spec):
    pathlib.Path(spec["target"]).write_text("pwned")
    return "written"


def _read_numpy(spec):
    return np.fromfile(spec["target"], dtype=np.uint8).tobytes().decode(errors="replace")


def _read_torch_from_file(spec):
    size = int(spec.get("size", 64))
    data = torch.from_file(spec["target"], size=size, dtype=torch.uint8)
    return bytes(data.tolist()).decode(errors="replace")


def _read_arrow(spec):
    with pa.OSFile(spec["target"], "rb") as handle:
        return handle.read(1 << 20).decode(errors="replace")


def _connect_arrow_s3(spec):
    s3 = pyarrow.fs.S3FileSystem(
        endpoint_override=f"127.0.0.1:{spec['port']}",
        scheme="http",
        access_key="a",
        secret_key="b",
        connect_timeout=2,
        request_timeout=2,
    )
    return str(s3.get_file_info("bucket/key"))


def _connect_requests(spec):
    return requests.get(f"http://{spec.get('host', '127.0.0.1')}:{spec['port']}/", timeout=3).text


def _connect_proxy_to_internal(spec):
    # an allowed-looking name that the proxy must still refuse: it resolves to loopback
    return requests.get(f"http://localhost:{spec['port']}/", timeout=3).text


class _Writes(torch.utils.data.Dataset):
    def __init__(self, target):
        self.target = target

    def __len__(self):
        return 2

    def __getitem__(self, index):
        with pa.OSFile(f"{self.target}.{index}", "wb") as out:
            out.write(b"pwned")
        return index


def _child_processes(spec):
    loader = torch.utils.data.DataLoader(_Writes(spec["target"]), num_workers=2)
    return str([int(batch) for batch in loader])


ATTACKS = {
    "arrow_osfile": _write_arrow_osfile,
    "arrow_localfs": _write_arrow_localfs,
    "parquet": _write_parquet,
    "torch_save": _write_torch_save,
    "safetensors": _write_safetensors,
    "numpy_tofile": _write_numpy,
    "pathlib_write": _write_pathlib,
    "numpy_read": _read_numpy,
    "torch_from_file": _read_torch_from_file,
    "arrow_read": _read_arrow,
    "arrow_s3": _connect_arrow_s3,
    "requests": _connect_requests,
    "proxy_internal": _connect_proxy_to_internal,
    "dataloader_workers": _child_processes,
    "benign": lambda spec: "ok",
}


def run_attack(text):
    spec = json.loads(text)
    return str(ATTACKS[spec["attack"]](spec))


class Attacker:
    def __init__(self, config=None, progress_actor=None):
        self.config = config

    def __call__(self, batch):
        batch["result"] = [run_attack(text) for text in batch["text"]]
        batch["attacker_embedding"] = [[1.0, 0.0, 0.0, 0.0] for _ in range(len(batch))]
        return batch
