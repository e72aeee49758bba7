"""Validates every signature of a PDF with pyHanko, as an independent
PAdES verifier would years later: offline, trusting only the given CA,
using the revocation data embedded in the document (B-LT).

    python3 pades_validate.py report.pdf ca.der

Prints one JSON object per signature: its field, whether it is intact and
trusted, the timestamp's time and validity, whether the long-term
validation succeeded from the embedded data alone, and pyHanko's summary.
"""

import json
import sys

from asn1crypto import x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import RevocationInfoValidationType, validate_pdf_ltv_signature, validate_pdf_signature
from pyhanko_certvalidator import ValidationContext


def main(pdf_path: str, ca_path: str) -> None:
    with open(ca_path, "rb") as f:
        ca = x509.Certificate.load(f.read())
    with open(pdf_path, "rb") as f:
        reader = PdfFileReader(f)
        for sig in reader.embedded_signatures:
            basic = validate_pdf_signature(sig, ValidationContext(trust_roots=[ca], allow_fetching=False))
            out = {
                "field": sig.field_name,
                "intact": basic.intact,
                "valid": basic.valid,
                "trusted": basic.trusted,
                "coverage": basic.coverage.name,
                "timestamp": None,
                "ltv": None,
            }
            ts = basic.timestamp_validity
            if ts is not None:
                out["timestamp"] = {"time": ts.timestamp.isoformat(), "intact": ts.intact, "valid": ts.valid, "trusted": ts.trusted}
            try:
                ltv = validate_pdf_ltv_signature(
                    sig,
                    RevocationInfoValidationType.PADES_LT,
                    validation_context_kwargs={"trust_roots": [ca]},
                )
                out["ltv"] = {"valid": ltv.valid, "trusted": ltv.trusted, "summary": ltv.summary()}
            except Exception as e:  # pyHanko raises when the LTV data are incomplete
                out["ltv"] = {"error": f"{type(e).__name__}: {e}"}
            print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
