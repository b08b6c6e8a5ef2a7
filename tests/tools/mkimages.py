#!/usr/bin/env python3
"""Builds test and benchmark images from layer tarballs.

mkimages.py [--archive FILE] [--oci DIR] [--compress gzip|zstd|none]
            [--tag NAME] LAYER.tar...

--archive: a docker-archive (`docker save` format: manifest.json, the
           config, LAYER/layer.tar, uncompressed layers).
--oci:     an OCI image layout (oci-layout, index.json with the ref.name
           annotation TAG, blobs/sha256/...), layers compressed with
           --compress (gzip -6 by default, as registries serve them;
           compressed by the gzip/zstd commands, streaming).
The image config lists the layers' diff_ids; both outputs hold the same
image (same config digest).
"""
import argparse, hashlib, io, json, os, subprocess, tarfile

p = argparse.ArgumentParser()
p.add_argument("--archive")
p.add_argument("--oci")
p.add_argument("--compress", default="gzip", choices=["gzip", "zstd", "none"])
p.add_argument("--tag", default="latest")
p.add_argument("layers", nargs="+")
a = p.parse_args()


def sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


diff_ids = [sha_file(l) for l in a.layers]
config = {
    "architecture": "amd64", "os": "linux",
    "created": "2024-01-01T00:00:00Z",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
               "Cmd": ["/bin/sh"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d in diff_ids]},
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "sbomd test layer %d" % i}
                for i in range(len(a.layers))],
}
cfg = json.dumps(config, separators=(",", ":")).encode()
cfg_id = hashlib.sha256(cfg).hexdigest()

if a.archive:
    with tarfile.open(a.archive, "w", format=tarfile.PAX_FORMAT) as t:
        def add_bytes(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 0
            t.addfile(ti, io.BytesIO(data))
        names = []
        for l, d in zip(a.layers, diff_ids):
            name = f"{d}/layer.tar"
            t.add(l, arcname=name)
            names.append(name)
        add_bytes(f"{cfg_id}.json", cfg)
        add_bytes("manifest.json", json.dumps(
            [{"Config": f"{cfg_id}.json", "RepoTags": [f"sbomd-test:{a.tag}"],
              "Layers": names}]).encode())

if a.oci:
    blobs = os.path.join(a.oci, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put_bytes(data):
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, d), "wb") as f:
            f.write(data)
        return d

    def put_file(tmp):
        d = sha_file(tmp)
        os.replace(tmp, os.path.join(blobs, d))
        return d

    media = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
             "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
             "none": "application/vnd.oci.image.layer.v1.tar"}[a.compress]
    mlayers = []
    for l in a.layers:
        tmp = os.path.join(blobs, ".tmp")
        with open(l, "rb") as src, open(tmp, "wb") as dst:
            if a.compress == "gzip":
                subprocess.run(["gzip", "-6", "-n", "-c"], stdin=src, stdout=dst, check=True)
            elif a.compress == "zstd":
                subprocess.run(["zstd", "-q", "-3", "-c"], stdin=src, stdout=dst, check=True)
            else:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    dst.write(chunk)
        size = os.path.getsize(tmp)
        mlayers.append({"mediaType": media, "digest": "sha256:" + put_file(tmp),
                        "size": size})
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + put_bytes(cfg), "size": len(cfg)},
        "layers": mlayers}).encode()
    md = put_bytes(manifest)
    with open(os.path.join(a.oci, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(a.oci, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2,
                   "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                  "digest": "sha256:" + md, "size": len(manifest),
                                  "annotations": {"org.opencontainers.image.ref.name": a.tag},
                                  "platform": {"architecture": "amd64", "os": "linux"}}]}, f)

print("sha256:" + cfg_id)
