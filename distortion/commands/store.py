"""``distortion keygen | enrol | verify | identify | revoke | list``: a biometric store on carriers.

    distortion keygen --out site.key
    distortion enrol    --store people.db --key site.key --model.ckpt keyed.ckpt --id ada a1.jpg a2.jpg
    distortion verify   --store people.db --key site.key --model.ckpt keyed.ckpt --id ada probe.jpg

    # each person's own token beside the system key (docs/keyed.md): printed once, kept by the person only
    distortion enrol  --store cards.db --tokens true --key site.key --model.ckpt keyed.ckpt --id ada \
        --token_out ada.token --token_qr ada.png a1.jpg
    distortion verify --store cards.db --key site.key --model.ckpt keyed.ckpt --id ada --token ada.token probe.jpg
    distortion identify --store people.db --key site.key --model.ckpt keyed.ckpt probe.jpg
    distortion revoke   --store people.db --id ada
    distortion list     --store people.db

``verify`` exits 0 on a match and 1 on none; ``identify`` prints JSON. Every refusal prints one line
and exits 2, with nothing changed.
"""

from __future__ import annotations

import inspect
import json
import sys
from contextlib import closing
from dataclasses import dataclass, fields
from pathlib import Path

import jsonargparse

from distortion.deployment.keys import generate_key, write_key
from distortion.deployment.tokens import load_token, write_token, write_token_qr
from distortion.loading import ModelSource
from distortion.store.backends import open_existing_store
from distortion.store.system import BiometricSystem, open_system

__all__ = ["VERBS", "StoreAccess", "store_main"]


def keygen(out: str) -> int:
    """Write a new 256-bit key.

    Args:
        out: the key file to write (mode 0600).
    """
    key = generate_key()
    path = write_key(key, out)
    print(f"{path}: a new key, fingerprint {key.fingerprint}")
    return 0


@dataclass(frozen=True)
class StoreAccess:
    """How a verb opens the store and makes carriers (flags ``--store``, ``--model.*``, ``--key``, ...).

    Args:
        store: a path (SQLite + FAISS), milvus-lite:///f.db, milvus://host:port.
        model: where the carriers come from.
        refine_steps: refinement steps at enrolment (needed with --model.embedding).
        key: the key file (or $DISTORTION_KEY_FILE) of a keyed store.
        threshold: a new store's score threshold (default: the model's calibrated one).
        device: auto, cpu, cuda, ...
        seed: seed of the carriers' noise.
        tokens: a new store gives each person a token that verification needs (an existing store keeps its mode;
            ``false`` or ``true`` against it is refused).
    """

    store: str
    model: ModelSource = ModelSource()
    refine_steps: int = 0
    key: str | None = None
    threshold: float | None = None
    device: str = "auto"
    seed: int = 0
    tokens: bool | None = None

    def open(self) -> BiometricSystem:
        return open_system(self.store, self.model, self.refine_steps, self.key, self.threshold, self.device, self.seed,
                           self.tokens)  # fmt: skip


def enrol(photos: list[str], id: str, access: StoreAccess, token_out: str | None = None,
          token_qr: str | None = None) -> int:  # fmt: skip
    """Enrol a person from one or more photos: their carriers and templates, in one transaction.

    In a store with tokens the person's new token is printed (and written to ``token_out``, drawn as a QR code in
    ``token_qr``) this once: the store does not keep it, and verification needs it.

    Args:
        photos: the person's photos.
        id: the person's id in the store.
        access: the store and the model.
        token_out: a store with tokens: also write the token to this new file (0600).
        token_qr: a store with tokens: also draw the token as a QR code into this new PNG.
    """
    for path in (token_out, token_qr):
        if path is not None and Path(path).exists():
            raise FileExistsError(f"{path} exists: a token file is never overwritten (nothing was enrolled)")
    with closing(access.open()) as system:
        if (token_out or token_qr) and not system.tokens:
            raise ValueError("--token_out/--token_qr: this store has no tokens (make one with --tokens true)")
        result = system.enrol(id, photos)
    token = result.pop("token", None)
    if token is not None:
        result["token"] = token.text()
        if token_out:
            result["token_file"] = str(write_token(token, token_out))
        if token_qr:
            result["token_qr"] = str(write_token_qr(token, token_qr))
    print(json.dumps(result))
    return 0


def verify(photo: str, id: str, access: StoreAccess, token: str | None = None) -> int:
    """Whether a photo is the enrolled person: exit 0 on a match, 1 on none.

    Args:
        photo: the probe photo.
        id: the person's id in the store.
        access: the store and the model.
        token: a store with tokens: the person's token file (default ``$DISTORTION_TOKEN``).
    """
    with closing(access.open()) as system:
        person_token = load_token(token) if system.tokens or token is not None else None
        match, score = system.verify(id, photo, person_token)
        print(json.dumps({"id": id, "match": match, "score": score, "threshold": system.threshold}))
    return 0 if match else 1


def identify(photo: str, access: StoreAccess, top: int = 5) -> int:
    """The best-matching people of a photo, and the match or none, as JSON.

    Args:
        photo: the probe photo.
        access: the store and the model.
        top: how many people to list.
    """
    with closing(access.open()) as system:
        print(json.dumps(system.identify(photo, top)))
    return 0


def revoke(id: str, store: str) -> int:
    """Revoke every live record of a person.

    Args:
        id: the person's id.
        store: the store.
    """
    with closing(open_existing_store(store)) as opened:
        if not opened.revoke(id):
            raise KeyError(f"no live record for id {id!r} in this store")
    print(f"revoked {id}")
    return 0


def list_people(store: str) -> int:
    """The people of a store and their live records, as JSON.

    Args:
        store: the store.
    """
    with closing(open_existing_store(store)) as opened:
        print(json.dumps(opened.people(), indent=1))
    return 0


VERBS = {"keygen": keygen, "enrol": enrol, "verify": verify, "identify": identify, "revoke": revoke,
         "list": list_people}  # fmt: skip
POSITIONAL = {"photos": {"nargs": "+", "help": "the person's photos"}, "photo": {"help": "the probe photo"}}


def _parser(verb: str) -> jsonargparse.ArgumentParser:
    """The verb's flags from its signature: its own, and those of :class:`StoreAccess` at the top level
    (``--store``, ``--model.ckpt``, ...); its photos positional."""
    function = VERBS[verb]
    parameters = inspect.signature(function).parameters
    parser = jsonargparse.ArgumentParser(prog=f"distortion {verb}", description=function.__doc__.split("\n")[0])
    positional = [name for name in POSITIONAL if name in parameters]
    parser.add_function_arguments(function, skip={*positional, "access"})
    if "access" in parameters:
        parser.add_class_arguments(StoreAccess, nested_key=None)
    for name in positional:
        parser.add_argument(name, **POSITIONAL[name])
    return parser


def _call(verb: str, arguments: dict) -> int:
    """Run ``verb`` with its parsed ``arguments``, the :class:`StoreAccess` fields gathered into one."""
    if "access" in inspect.signature(VERBS[verb]).parameters:
        arguments["access"] = StoreAccess(**{field.name: arguments.pop(field.name) for field in fields(StoreAccess)})
    return VERBS[verb](**arguments)


def store_main(verb: str, argv: list[str]) -> None:
    """Parse ``argv`` for ``verb`` and run it; a refusal prints one line and exits 2."""
    parser = _parser(verb)
    arguments = parser.instantiate(parser.parse_args(argv)).as_dict()
    try:
        code = _call(verb, arguments)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"distortion {verb}: {message}", file=sys.stderr)
        code = 2
    sys.exit(code)
