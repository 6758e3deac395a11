"""``distortion keygen | enrol | verify | identify | revoke | list``: a biometric store on carriers.

    distortion keygen --out site.key
    distortion enrol    --store people.db --key site.key --keyed dlib_keyed.pt --embedding dlib --id ada a1.jpg a2.jpg
    distortion verify   --store people.db --key site.key --keyed dlib_keyed.pt --embedding dlib --id ada probe.jpg
    distortion identify --store people.db --key site.key --keyed dlib_keyed.pt --embedding dlib probe.jpg
    distortion revoke   --store people.db --id ada
    distortion list     --store people.db

``verify`` exits 0 on a match and 1 on none; ``identify`` prints JSON. Every refusal prints one line
and exits 2, with nothing changed.
"""

from __future__ import annotations

import json
import sys

import jsonargparse
import torch

from distortion.commands.evaluation import load_distorter, resolve_device
from distortion.deployment.enrolment import Enrolment
from distortion.deployment.keyed_model import operating_threshold
from distortion.deployment.keys import generate_key, write_key
from distortion.store.backends import open_existing_store
from distortion.store.system import BiometricSystem

__all__ = ["open_system", "store_main"]

DEFAULT_THRESHOLD = 1 / (1 + 0.6)  # dlib's distance 0.6 as a score, for stores without a calibrated threshold


def _system_arguments(parser: jsonargparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", required=True, help="a path (SQLite + FAISS), milvus-lite:///f.db, milvus://host:port"
    )
    parser.add_argument("--ckpt", default=None, help="a carrier G (distortion fit on faces)")
    parser.add_argument("--embedding", default=None, help="instead of --ckpt: F alone (dlib), refined from noise")
    parser.add_argument("--refine_steps", type=int, default=0, help="refinement steps (needed without --ckpt)")
    parser.add_argument("--keyed", default=None, help="a keyed model file (distortion fit-transform); needs --key")
    parser.add_argument("--key", default=None, help="the key file (or $DISTORTION_KEY_FILE)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="a new store's score threshold (default: calibrated, of --keyed or --ckpt)")  # fmt: skip
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)


def open_system(
    store: str, ckpt: str | None = None, embedding: str | None = None, refine_steps: int = 0, keyed: str | None = None,
    key: str | None = None, threshold: float | None = None, device: str = "auto", seed: int = 0,
) -> BiometricSystem:  # fmt: skip
    """The :class:`BiometricSystem` the verbs open: its carriers from ``ckpt`` (a G) or ``embedding`` (F alone,
    refined ``refine_steps`` from noise), keyed by ``keyed`` or a keyed ``ckpt`` with ``key``; a new store's
    threshold is ``threshold``, else the calibrated one of ``keyed`` or ``ckpt``, else dlib's 0.6."""
    torch.manual_seed(seed)
    enrolment = Enrolment(refine_steps, storage="png", key=key)
    distorter = load_distorter(ckpt, embedding, resolve_device(device), enrolment, keyed)
    threshold = threshold or operating_threshold(ckpt, keyed) or DEFAULT_THRESHOLD
    return BiometricSystem(store, distorter, type(distorter.embedding).__name__, threshold)


def _system(args) -> BiometricSystem:
    return open_system(args.store, args.ckpt, args.embedding, args.refine_steps, args.keyed, args.key,
                       args.threshold, args.device, args.seed)  # fmt: skip


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
