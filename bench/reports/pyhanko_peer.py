"""The peer: pyHanko signs the same unsigned report with the same P-256 key
(PAdES B-B, SHA-256, incremental update), timed the same way; then B-LT as
Telediag does: a timestamp from an in-process TSA (pyHanko's, so no
network is timed; it signs with RSA only, so it gets an RSA-2048 TSA key
of its own where Telediag's TSA is P-256) and the certificates and the
CA's CRL embedded, validated against the same CA.

Usage: python3 pyhanko_peer.py OUT_DIR [ROUNDS]
"""
import io
import statistics
import sys
import time

from pyhanko.sign import signers, fields
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

out = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 50
signer = signers.SimpleSigner.load_pkcs12(f"{out}/reporter.p12", passphrase=b"bench-pass")
unsigned = open(f"{out}/unsigned.pdf", "rb").read()
times = []
signed = None
for _ in range(rounds):
    t = time.perf_counter()
    writer = IncrementalPdfFileWriter(io.BytesIO(unsigned))
    meta = signers.PdfSignatureMetadata(field_name="报告医师", subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256")
    result = signers.sign_pdf(writer, meta, signer=signer)
    signed = result.getvalue()
    times.append((time.perf_counter() - t) * 1000)
open(f"{out}/pyhanko-signed.pdf", "wb").write(signed)
print(f"pyHanko sign once (PAdES, P-256, incremental): median {statistics.median(times):.2f} ms over {rounds}")

# B-LT: timestamped by the same TSA key, validation data (CA, TSA, CRL) embedded.
from asn1crypto import crl as asn1_crl, keys, x509
from pyhanko.sign import timestamps
from pyhanko_certvalidator import ValidationContext

def load(name):
    return open(f"{out}/{name}", "rb").read()

ca = x509.Certificate.load(load("ca-cert.der"))
revocation = asn1_crl.CertificateList.load(load("crl.der"))


def rsa_tsa():
    """A self-signed RSA-2048 TSA (critical EKU timeStamping), for pyHanko's dummy timestamper."""
    import datetime

    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, "pyHanko bench TSA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        cx509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(cx509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(key, hashes.SHA256())
    )
    der_key = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)), keys.PrivateKeyInfo.load(der_key)


tsa_cert, tsa_key = rsa_tsa()
timestamper = timestamps.DummyTimeStamper(tsa_cert=tsa_cert, tsa_key=tsa_key)
times = []
for _ in range(rounds):
    t = time.perf_counter()
    context = ValidationContext(trust_roots=[ca, tsa_cert], crls=[revocation], allow_fetching=False)
    writer = IncrementalPdfFileWriter(io.BytesIO(unsigned))
    meta = signers.PdfSignatureMetadata(
        field_name="报告医师",
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        embed_validation_info=True,
        validation_context=context,
    )
    signed = signers.sign_pdf(writer, meta, signer=signer, timestamper=timestamper).getvalue()
    times.append((time.perf_counter() - t) * 1000)
open(f"{out}/pyhanko-lt.pdf", "wb").write(signed)
print(f"pyHanko sign once B-LT (+ TSA token, + DSS): median {statistics.median(times):.2f} ms over {rounds}")
