#!/usr/bin/env python3
"""Writes the raw bytes of every HTTP test vector as one seed file each.

Usage: make_corpus.py OUTPUT_DIR

Sources: tests/http/conformance/*_requests.json (upstream vectors) and tests/http/vectors/*.json
(our own). Each JSON character U+0000..U+00FF is one byte (see conformance/README.md).
"""
import glob
import json
import os
import re
import sys


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    http_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http")
    paths = sorted(glob.glob(os.path.join(http_dir, "conformance", "*_requests.json")))
    paths += sorted(glob.glob(os.path.join(http_dir, "vectors", "*.json")))
    count = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for case in json.load(f):
                name = re.sub(r"[^A-Za-z0-9]+", "_", case["id"]).strip("_")
                with open(os.path.join(out_dir, "%03d_%s" % (count, name)), "wb") as seed:
                    seed.write(case["raw"].encode("latin-1"))
                count += 1
    print("wrote %d seeds to %s" % (count, out_dir))


if __name__ == "__main__":
    main()
