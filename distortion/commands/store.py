"""``distortion keygen | enrol | verify | identify | revoke | list``: a biometric store on carriers.

    distortion keygen --out site.key
    distortion enrol    --store people.db --key site.key --model.ckpt keyed.ckpt --id ada a1.jpg a2.jpg
    distortion verify   --store people.db --key site.key --model.ckpt keyed.ckpt --id ada probe.jpg
    distortion identify --store people.db --key site.key --model.ckpt keyed.ckpt probe.jpg
    distortion revoke   --store people.db --id ada
    distortion list     --store people.db

``verify`` exits 0 on a match and 1 on none; ``identify`` prints JSON. Every refusal prints one line
and exits 2, with nothing changed.
"""

from __future__ import annotations

import json
import sys

import jsonargparse

from distortion.deployment.keys import generate_key, write_key
from distortion.loading import ModelSource
from distortion.store.backends import open_existing_store
from distortion.store.system import BiometricSystem, open_system

__all__ = ["store_main"]

def _system_arguments(parser: jsonargparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", required=True, help="a path (SQLite + FAISS), milvus-lite:///f.db, milvus://host:port"
    )
    parser.add_class_arguments(ModelSource, "model", help="where the carriers come from")
    parser.add_argument("--refine_steps", type=int, default=0, help="refinement steps (needed with --model.embedding)")
    parser.add_argument("--key", default=None, help="the key file (or $DISTORTION_KEY_FILE) of a keyed store")
    parser.add_argument("--threshold", type=float, default=None,
                        help="a new store's score threshold (default: calibrated, of --keyed or --ckpt)")  # fmt: skip
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)


def _system(args) -> BiometricSystem:
    return open_system(args.store, ModelSource(**vars(args.model)), args.refine_steps, args.key, args.threshold,
                       args.device, args.seed)  # fmt: skip


def _parser(verb: str) -> jsonargparse.ArgumentParser:
    parser = jsonargparse.ArgumentParser(prog=f"distortion {verb}", description=__doc__.split("\n")[0])
    if verb == "keygen":
        parser.add_argument("--out", required=True, help="the key file to write (mode 0600)")
        return parser
    if verb in ("revoke", "list"):
        parser.add_argument("--store", required=True)
    else:
        _system_arguments(parser)
    if verb in ("enrol", "verify", "revoke"):
        parser.add_argument("--id", required=True)
    if verb == "enrol":
        parser.add_argument("photos", nargs="+")
    if verb in ("verify", "identify"):
        parser.add_argument("photo")
    if verb == "identify":
        parser.add_argument("--top", type=int, default=5)
    return parser


def _run(verb: str, args) -> int:
    if verb == "keygen":
        key = generate_key()
        path = write_key(key, args.out)
        print(f"{path}: a new key, fingerprint {key.fingerprint}")
        return 0
    if verb in ("revoke", "list"):
        store = open_existing_store(args.store)
        try:
            if verb == "list":
                print(json.dumps(store.people(), indent=1))
                return 0
            if not store.revoke(args.id):
                raise KeyError(f"no live record for id {args.id!r} in this store")
            print(f"revoked {args.id}")
            return 0
        finally:
            store.close()
    system = _system(args)
    try:
        if verb == "enrol":
            print(json.dumps(system.enrol(args.id, args.photos)))
            return 0
        if verb == "verify":
            match, score = system.verify(args.id, args.photo)
            print(json.dumps({"id": args.id, "match": match, "score": score, "threshold": system.threshold}))
            return 0 if match else 1
        print(json.dumps(system.identify(args.photo, args.top)))
        return 0
    finally:
        system.close()


def store_main(verb: str, argv: list[str]) -> None:
    """Parse ``argv`` for ``verb`` and run it; a refusal prints one line and exits 2."""
    args = _parser(verb).parse_args(argv)
    try:
        code = _run(verb, args)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"distortion {verb}: {message}", file=sys.stderr)
        code = 2
    sys.exit(code)
