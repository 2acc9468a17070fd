#!/usr/bin/env bash
# Regenerates the committed seed inputs (fuzz/corpus/<target>/seed-*) with the system
# openssl (3.0): CSRs for P-256, SM2 (the CA's distinguishing ID and OpenSSL's empty one)
# and RSA-3072, in DER and PEM; OCSP requests with SHA-1 and SHA-256 CertIDs, with and
# without a nonce, for one and two certificates. Keys are throw-away; each run gives new
# bytes, which is fine for seeds.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
csr=corpus/csr
ocsp=corpus/ocsp_request
mkdir -p "$csr" "$ocsp"
rm -f "$csr"/seed-* "$ocsp"/seed-*
subj="/C=CN/CN=fuzz"

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/p256.key" 2>/dev/null
openssl genpkey -algorithm SM2 -out "$tmp/sm2.key" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$tmp/rsa.key" 2>/dev/null

req() { # name key extra-args...
    local name=$1 key=$2
    shift 2
    openssl req -new -key "$key" -subj "$subj" "$@" -outform DER -out "$csr/seed-$name.der"
    openssl req -new -key "$key" -subj "$subj" "$@" -outform PEM -out "$csr/seed-$name.pem"
}
req p256 "$tmp/p256.key" -sha256
req sm2-distid "$tmp/sm2.key" -sm3 -sigopt distid:1234567812345678
req sm2-emptyid "$tmp/sm2.key" -sm3
req rsa3072 "$tmp/rsa.key" -sha256
# The PEM-marker form the csr target wraps in armour itself: 'P' followed by DER.
{ printf 'P'; cat "$csr/seed-p256.der"; } >"$csr/seed-marker-p256"
{ printf 'P'; cat "$csr/seed-sm2-distid.der"; } >"$csr/seed-marker-sm2"

# A CA and two certificates for the OCSP requests.
openssl req -x509 -new -key "$tmp/p256.key" -subj "/C=CN/CN=fuzz CA" -days 30 -out "$tmp/ca.pem" 2>/dev/null
for n in 1 2; do
    openssl req -new -key "$tmp/sm2.key" -subj "/C=CN/CN=ee$n" -out "$tmp/ee$n.csr" 2>/dev/null
    openssl x509 -req -in "$tmp/ee$n.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/p256.key" -set_serial "0x$(openssl rand -hex 16 | sed 's/^./7/')" \
        -days 30 -out "$tmp/ee$n.pem" 2>/dev/null
done
ocspreq() { # name args...
    local name=$1
    shift
    openssl ocsp -issuer "$tmp/ca.pem" "$@" -reqout "$ocsp/seed-$name.der" >/dev/null
}
ocspreq sha1-nonce -cert "$tmp/ee1.pem"
ocspreq sha1-nononce -cert "$tmp/ee1.pem" -no_nonce
ocspreq sha256-nonce -sha256 -cert "$tmp/ee1.pem"
ocspreq sha256-nononce -sha256 -cert "$tmp/ee1.pem" -no_nonce
ocspreq sha1-two-certs -cert "$tmp/ee1.pem" -cert "$tmp/ee2.pem"
ocspreq sha1-signed -cert "$tmp/ee1.pem" -signer "$tmp/ca.pem" -signkey "$tmp/p256.key" -no_nonce

du -cb "$csr"/seed-* | tail -1 | sed 's/total/bytes of CSR seeds/'
du -cb "$ocsp"/seed-* | tail -1 | sed 's/total/bytes of OCSP request seeds/'
