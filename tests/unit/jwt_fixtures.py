#!/usr/bin/python3
"""Writes tests/unit/jwt_fixtures.h: keys, a key set and tokens minted by
PyJWT (Debian's python3-jwt), an implementation independent of the C code
under test.  Run again only to change the fixtures:

    /usr/bin/python3 tests/unit/jwt_fixtures.py > tests/unit/jwt_fixtures.h

Times are fixed (NOW below); the C tests pass NOW to the verifier.
"""
import base64
import hashlib
import hmac
import json

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISS = "https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc"
AUD = "ari:cloud:bitbucket::workspace/0f8e7a2c-54d2-4c55-8c4a-1a2b3c4d5e6f"
NOW = 1767225600  # 2026-01-01T00:00:00Z

rsa_a = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rsa_b = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rsa_small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
ec_256 = ec.generate_private_key(ec.SECP256R1())
ec_384 = ec.generate_private_key(ec.SECP384R1())


def jwk(key, kid, **extra):
    d = json.loads((RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm)
                   .to_jwk(key.public_key()))
    d["kid"] = kid
    d.update(extra)
    return d


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


jwks = {"keys": [
    jwk(rsa_a, "rsa-1", alg="RS256", use="sig"),
    jwk(ec_256, "ec-1", use="sig"),
    jwk(ec_384, "ec-384"),
    {"kty": "oct", "kid": "hmac", "k": b64(b"not a signing key for us")},
    jwk(rsa_small, "rsa-small"),
    jwk(rsa_b, "rsa-enc", use="enc"),
]}
jwks_b = {"keys": [jwk(rsa_a, "rsa-1", alg="RS256"), jwk(rsa_b, "rsa-2", alg="RS256")]}

CLAIMS = {
    "iss": ISS, "aud": AUD, "iat": NOW - 10, "exp": NOW + 3600,
    "sub": "{7d3c5b2a-1111-4f4f-9a9a-0e0e0e0e0e01}:{e1e1e1e1-2222-4b4b-8c8c-0d0d0d0d0d02}",
    "accountUuid": "{a0a0a0a0-3333-4c4c-9d9d-0c0c0c0c0c03}",
    "workspaceUuid": "{0f8e7a2c-54d2-4c55-8c4a-1a2b3c4d5e6f}",
    "repositoryUuid": "{7d3c5b2a-1111-4f4f-9a9a-0e0e0e0e0e01}",
    "pipelineUuid": "{b2b2b2b2-4444-4d4d-8e8e-0b0b0b0b0b04}",
    "stepUuid": "{e1e1e1e1-2222-4b4b-8c8c-0d0d0d0d0d02}",
    "branchName": "main",
    "deploymentEnvironmentUuid": "{c3c3c3c3-5555-4e4e-9f9f-0a0a0a0a0a05}",
}


def tok(key, alg, kid, **claims):
    c = dict(CLAIMS)
    c.update(claims)
    for k in [k for k, v in c.items() if v is None]:
        del c[k]
    headers = {"kid": kid} if kid else {}
    return jwt.encode(c, key, algorithm=alg, headers=headers)


def raw(header, claims, sig=b""):
    return "%s.%s.%s" % (b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()),
                         b64(sig))


pem = rsa_a.public_key().public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo)
hs_input = "%s.%s" % (b64(json.dumps({"alg": "HS256", "kid": "rsa-1"}).encode()),
                      b64(json.dumps(CLAIMS).encode()))
good = tok(rsa_a, "RS256", "rsa-1")
h, p, s = good.split(".")
tampered_claims = dict(CLAIMS, branchName="release/evil")

tokens = [
    ("GOOD_RS256", good),
    ("GOOD_ES256", tok(ec_256, "ES256", "ec-1")),
    ("GOOD_ES384", tok(ec_384, "ES384", "ec-384")),
    ("NO_KID_RS256", tok(rsa_a, "RS256", None)),
    ("AUD_LIST", tok(rsa_a, "RS256", "rsa-1", aud=["https://other", AUD])),
    ("NONE_ALG", raw({"alg": "none"}, CLAIMS)),
    ("HS256_PUBKEY", hs_input + "." + b64(hmac.new(pem, hs_input.encode(), hashlib.sha256).digest())),
    ("UNKNOWN_KID", tok(rsa_b, "RS256", "rsa-2")),
    ("RSA_KEY_FOR_EC_KID", tok(rsa_a, "RS256", "ec-1")),
    ("ES256_WITH_P384_KID", tok(ec_256, "ES256", "ec-384")),
    ("RS512_ON_RS256_KEY", tok(rsa_a, "RS512", "rsa-1")),
    ("BAD_SIGNATURE", h + "." + b64(json.dumps(tampered_claims).encode()) + "." + s),
    ("WRONG_SIGNER", tok(rsa_b, "RS256", "rsa-1")),
    ("WRONG_ISS", tok(rsa_a, "RS256", "rsa-1", iss=ISS + "-other")),
    ("WRONG_AUD", tok(rsa_a, "RS256", "rsa-1", aud="ari:cloud:bitbucket::workspace/other")),
    ("EXPIRED", tok(rsa_a, "RS256", "rsa-1", iat=NOW - 7200, exp=NOW - 100)),
    ("EXPIRED_IN_LEEWAY", tok(rsa_a, "RS256", "rsa-1", iat=NOW - 7200, exp=NOW - 30)),
    ("NOT_YET_VALID", tok(rsa_a, "RS256", "rsa-1", nbf=NOW + 300)),
    ("ISSUED_IN_FUTURE", tok(rsa_a, "RS256", "rsa-1", iat=NOW + 300)),
    ("NO_EXP", tok(rsa_a, "RS256", "rsa-1", exp=None)),
    ("CRIT", jwt.encode(CLAIMS, rsa_a, algorithm="RS256", headers={"kid": "rsa-1", "crit": ["b64"], "b64": True})),
    ("OTHER_BRANCH", tok(rsa_a, "RS256", "rsa-1", branchName="feature/x", deploymentEnvironmentUuid=None)),
    ("OTHER_REPO", tok(rsa_a, "RS256", "rsa-1", repositoryUuid="{99999999-9999-4999-8999-999999999999}")),
    ("NEW_KEY", tok(rsa_b, "RS256", "rsa-2")),
]


def c_string(s):
    out = []
    for i in range(0, len(s), 90):
        out.append('\t"%s"' % s[i:i + 90].replace("\\", "\\\\").replace('"', '\\"'))
    return "\n".join(out)


print("/* Generated by tests/unit/jwt_fixtures.py (PyJWT %s): do not edit. */" % jwt.__version__)
print("#ifndef JWT_FIXTURES_H\n#define JWT_FIXTURES_H\n")
print("#define FX_NOW %dLL" % NOW)
print('#define FX_ISS "%s"' % ISS)
print('#define FX_AUD "%s"\n' % AUD)
print("static const char fx_jwks[] =\n%s;\n" % c_string(json.dumps(jwks)))
print("static const char fx_jwks_b[] =\n%s;\n" % c_string(json.dumps(jwks_b)))
for name, t in tokens:
    print("static const char fx_%s[] =\n%s;\n" % (name.lower(), c_string(t)))
print("#endif")
