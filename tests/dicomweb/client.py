"""Telediag's DICOMweb service seen by an independent client: the
`dicomweb-client` package (PyPI), as AI pipelines and scripts use it.

Run by tests/dicomweb.rs with the centre's URL and tokens; every check is an
assert with what was expected and found. Prints one line per check.
"""
import io
import json
import sys

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

config = json.loads(sys.argv[1])
base = config["url"]
client = DICOMwebClient(url=base, headers={"Authorization": "Bearer " + config["token"]})


def check(name, condition, detail=""):
    assert condition, f"{name}: {detail}"
    print("ok", name)


def value(item, tag):
    return item.get(tag, {}).get("Value", [None])[0]


# --- QIDO-RS ----------------------------------------------------------
studies = client.search_for_studies()
check("all studies listed", len(studies) == config["studies"], f"expected {config['studies']}, found {len(studies)}")
by_name = client.search_for_studies(search_filters={"PatientName": "张*"})
check("a GB18030 name found by its ideographic group", len(by_name) == 1, by_name)
check("its name has both groups", by_name[0]["00100010"]["Value"][0].get("Ideographic") == "张^三", by_name[0]["00100010"])
study = value(by_name[0], "0020000D")
check("case-insensitive Latin wildcard", len(client.search_for_studies(search_filters={"PatientName": "zhang*"})) == 1)
check("no match is an empty list", client.search_for_studies(search_filters={"PatientName": "Nobody*"}) == [])
by_tag = client.search_for_studies(search_filters={"00100020": value(by_name[0], "00100020")})
check("a key given by tag", [value(s, "0020000D") for s in by_tag] == [study], by_tag)
first = client.search_for_studies(limit=2, offset=0)
second = client.search_for_studies(limit=2, offset=2)
check("pages do not overlap", not {value(s, "0020000D") for s in first} & {value(s, "0020000D") for s in second})
with_description = client.search_for_studies(fields=["StudyDescription"], search_filters={"StudyInstanceUID": study})
check("includefield returns the description", "00081030" in with_description[0], with_description[0].keys())
ranged = client.search_for_studies(search_filters={"StudyDate": "19000101-", "ModalitiesInStudy": "CT"})
check("date range and modality", study in [value(s, "0020000D") for s in ranged])
series = client.search_for_series(study_instance_uid=study)
check("the study's series", len(series) >= 1 and value(series[0], "00080060") == "CT", series)
series_uid = value(series[0], "0020000E")
instances = client.search_for_instances(study_instance_uid=study, series_instance_uid=series_uid)
check("the series' instances with their size", value(instances[0], "00280010") is not None, instances[0])
all_series = client.search_for_series(search_filters={"Modality": "CT"})
check("series across studies carry study attributes", all("0020000D" in s and "00100010" in s for s in all_series))

# --- WADO-RS ----------------------------------------------------------
sop = value(instances[0], "00080018")
dataset = client.retrieve_instance(study, series_uid, sop)
check("an instance retrieved and parsed", dataset.SOPInstanceUID == sop, dataset.SOPInstanceUID)
metadata = client.retrieve_series_metadata(study, series_uid)
check("series metadata, one object per instance", len(metadata) == len(instances), len(metadata))
pixel = metadata[0].get("7FE00010", {})
check("pixel data as a bulk data URI", pixel.get("BulkDataURI", "").startswith(base), pixel)
rows, columns = value(metadata[0], "00280010"), value(metadata[0], "00280011")
bits = value(metadata[0], "00280100")
frames = client.retrieve_instance_frames(
    study, series_uid, sop, frame_numbers=[1], media_types=(("application/octet-stream", "1.2.840.10008.1.2.1"),)
)
check("a frame in explicit VR little endian", len(frames[0]) == rows * columns * bits // 8, (len(frames[0]), rows, columns, bits))
rendered = client.retrieve_instance_rendered(study, series_uid, sop, media_types=("image/png",))
check("rendered as PNG", rendered[:8] == b"\x89PNG\r\n\x1a\n", rendered[:8])
jpeg = client.retrieve_instance_rendered(study, series_uid, sop, params={"window": "40,400,linear", "viewport": "128,128"})
check("rendered as JPEG with a window and a viewport", jpeg[:2] == b"\xff\xd8", jpeg[:4])
bulk = client.retrieve_bulkdata(pixel["BulkDataURI"])
check("pixel data through its bulk data URI", len(bulk[0]) == rows * columns * bits // 8, len(bulk[0]))

jls = config.get("jls")
if jls:
    stored = client.retrieve_instance_frames(
        jls["study"], jls["series"], jls["instance"], frame_numbers=[1],
        media_types=(("image/jls", "1.2.840.10008.1.2.4.80"),),
    )
    check("a JPEG-LS frame as stored", stored[0][:2] == b"\xff\xd8", stored[0][:4])
    decoded = client.retrieve_instance_frames(
        jls["study"], jls["series"], jls["instance"], frame_numbers=[1],
        media_types=(("application/octet-stream", "1.2.840.10008.1.2.1"),),
    )
    check("the JPEG-LS frame decoded", len(decoded[0]) == jls["frame_bytes"], (len(decoded[0]), jls["frame_bytes"]))
    refused = requests.get(
        f"{base}/studies/{jls['study']}/series/{jls['series']}/instances/{jls['instance']}/frames/1",
        headers={"Authorization": "Bearer " + config["token"], "Accept": 'multipart/related; type="image/jp2"'},
    )
    check("a syntax that cannot be made is 406 with a reason", refused.status_code == 406 and "stored" in refused.json()["error"],
          (refused.status_code, refused.text))


# --- STOW-RS ----------------------------------------------------------
def new_instance(study_uid, sop_class="1.2.840.10008.5.1.4.1.1.7"):
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Li^Si=李^四"
    ds.PatientID = "STOW001"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.SOPClassUID = sop_class
    ds.Modality = "OT"
    ds.preamble = b"\x00" * 128
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


stow_client = DICOMwebClient(url=base, headers={"Authorization": "Bearer " + config["site_token"]})
new_study = generate_uid()
good = new_instance(new_study)
response = stow_client.store_instances([good])
stored = response.get("ReferencedSOPSequence", [])
check("a STOW instance stored", len(stored) == 1 and stored[0].ReferencedSOPInstanceUID == good.SOPInstanceUID, response)
found = stow_client.search_for_studies(search_filters={"StudyInstanceUID": new_study})
check("the stored study is searchable", len(found) == 1 and found[0]["00100010"]["Value"][0]["Ideographic"] == "李^四", found)


def refused_reasons(instances, study_uid=None):
    try:
        stow_client.store_instances(instances, study_instance_uid=study_uid)
    except requests.HTTPError as e:
        body = e.response.json()
        return e.response.status_code, [item["00081197"]["Value"][0] for item in body["00081198"]["Value"]]
    return 200, []


status, reasons = refused_reasons([new_instance(generate_uid())], study_uid=new_study)
check("another study's instance posted to a study is 0xA900", (status, reasons) == (409, [0xA900]), (status, reasons))
status, reasons = refused_reasons([new_instance(new_study, sop_class="1.2.3.4.5.6")])
check("an unknown SOP class is 0x0122", (status, reasons) == (409, [0x0122]), (status, reasons))
status, reasons = refused_reasons([new_instance(config["foreign_study"])])
check("another site's study UID is refused", (status, reasons) == (409, [0x0124]), (status, reasons))
