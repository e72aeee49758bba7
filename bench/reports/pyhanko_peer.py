"""The peer: pyHanko signs the same unsigned report with the same P-256 key
(PAdES B-B, SHA-256, incremental update), timed the same way.

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
