"""Tenants and their API keys: a key opens its tenant alone, is stored as a digest, and stops when revoked."""

from __future__ import annotations

import hashlib
import stat
from contextlib import closing

import pytest

from distortion.deployment.keys import load_key
from distortion.service.tenants import TenantError, Tenants


def test_api_keys_open_their_tenant_alone_and_are_kept_as_digests(tmp_path) -> None:
    with closing(Tenants(tmp_path)) as tenants:
        acme, acme_key = tenants.create("acme")
        other, other_key = tenants.create("other", store=str(tmp_path / "elsewhere.db"))
        assert tenants.authenticate(acme_key) == acme and tenants.authenticate(other_key) == other
        assert acme.store == str(tmp_path / "tenants" / "acme" / "store.db") and other.store.endswith("elsewhere.db")
        assert stat.S_IMODE(acme.key_file.stat().st_mode) == 0o600
        assert load_key(acme.key_file) != load_key(other.key_file)
        wrong = acme_key[:-1] + ("A" if acme_key[-1] != "A" else "B")
        for guess in (wrong, "", "dst_", acme_key + "x", other_key.replace(other_key.split("_")[1], "0" * 12)):
            assert tenants.authenticate(guess) is None, guess
        second = tenants.issue_key("acme")
        assert second != acme_key and tenants.authenticate(second) == acme
        tenants.revoke_key(acme_key.split("_")[1])
        assert tenants.authenticate(acme_key) is None and tenants.authenticate(second) == acme
        with pytest.raises(TenantError, match="exists already"):
            tenants.create("acme")
        with pytest.raises(TenantError, match="a tenant's name"):
            tenants.create("../escape")
        with pytest.raises(TenantError, match="no tenant"):
            tenants.issue_key("nobody")
        assert [k["key_id"] for k in tenants.keys("acme")] == [acme_key.split("_")[1], second.split("_")[1]]
    database = b"".join(p.read_bytes() for p in tmp_path.glob("service.db*"))
    for api_key in (acme_key, other_key, second):
        secret = api_key.split("_", 2)[2]
        assert secret.encode() not in database
        assert hashlib.sha256(secret.encode()).digest() in database  # what is kept instead
