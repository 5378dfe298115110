"""DICOM series for the PACS tests, written from the real sample data.

* :func:`write_abdomen_series`: the abdomen-pelvis sample (NIfTI, 122 x 101 x 112 voxels at
  3 mm) as a proper single-frame CT series (UIDs, IPP/IOP, pixel spacing, rescale), so that
  ``rcsa run`` finds real lumbar and pelvic levels and the SEG has real masks. With
  ``flip_columns`` the same anatomy is stored with the column axis reversed (row direction
  -x), which rcsa's loader undoes; a SEG must then store its frames flipped back.
* :func:`cement_spine`: a run folder's ``spine.json`` with the cases the sample lacks (a
  vertebra not measurable for cement, one measured but not graded, a warning).
* :func:`write_thoracolumbar_with_uids`: the real thoracolumbar series (JPEG 2000, anonymised
  without UIDs) with Study / Series / SOP Instance UIDs filled in, as a PACS would hold it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from rcsa.io import load

REPO = Path(__file__).resolve().parents[1]
ABDOMEN_NIFTI = REPO / "sample_data" / "ct_abdomen_pelvis" / "ct.nii.gz"
THORACOLUMBAR = REPO / "sample_data" / "ct_thoracolumbar_dicom" / "dicom"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"

ABDOMEN_PATIENT_ID = "RCSA-TEST-ABD"
ABDOMEN_STUDY_DATE = "20240315"
ABDOMEN_BODY_PART = "ABDOMEN"


def write_abdomen_series(folder: Path, *, flip_columns: bool = False,
                         study_uid: str | None = None, series_uid: str | None = None,
                         sop_uids: list[str] | None = None) -> list[Path]:
    ct = load(ABDOMEN_NIFTI)
    vox = np.asarray(ct.voxels)
    nk, nj, ni = vox.shape
    g = ct.geometry
    d = np.asarray(g.direction, float)
    sx, sy, sz = (float(v) for v in g.spacing_mm)
    row_dir, col_dir = d[:, 0].copy(), d[:, 1].copy()
    if flip_columns:
        row_dir = -row_dir
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_uid = generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(nk):
        first_col = ni - 1 if flip_columns else 0
        ipp = np.asarray(g.index_to_world([float(first_col), 0.0, float(k)]), float)
        pixels = vox[k][:, ::-1] if flip_columns else vox[k]
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        sop = sop_uids[k] if sop_uids else generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE_STORAGE, sop
        ds.PatientName, ds.PatientID = "Test^Abdomen", ABDOMEN_PATIENT_ID
        ds.PatientSex, ds.PatientBirthDate = "O", ""
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.StudyDate, ds.StudyTime, ds.SeriesDate = ABDOMEN_STUDY_DATE, "101500", ABDOMEN_STUDY_DATE
        ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "1", "RCSATEST1", ""
        ds.StudyDescription = "rcsa test abdomen pelvis"
        ds.Modality, ds.BodyPartExamined = "CT", ABDOMEN_BODY_PART
        ds.SeriesNumber, ds.SeriesDescription = 3, "abdomen 3.0 mm (from sample NIfTI)"
        ds.InstanceNumber = k + 1
        ds.Manufacturer = "rcsa test"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [float(v) for v in (*row_dir, *col_dir)]
        ds.ImagePositionPatient = [float(v) for v in ipp]
        ds.SliceLocation = float(ipp[2])
        ds.PixelSpacing = [sy, sx]
        ds.SliceThickness = sz
        ds.KVP = 120
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = nj, ni
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
        ds.PixelData = np.ascontiguousarray(pixels.astype(np.int16)).tobytes()
        path = folder / f"CT{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_thoracolumbar_with_uids(folder: Path) -> list[Path]:
    """Copies of the real series with UIDs (SOP from the file meta, study / series new)."""
    folder.mkdir(parents=True, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    out = []
    for src in sorted(p for p in THORACOLUMBAR.iterdir() if p.is_file()):
        ds = pydicom.dcmread(src)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        dst = folder / src.name
        ds.save_as(dst, enforce_file_format=True)
        out.append(dst)
    return out


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def cement_spine(run: Path) -> dict[str, Any]:
    """The sample's spine.json with L2 made not measurable (cement), L3 measured but not
    graded, no vertebra fractured and a warning: the cases the sample lacks."""
    doc = json.loads((run / "spine.json").read_text())
    l2 = doc["vertebrae"]["L2"]
    reason = "cement (previous augmentation) or metal: 850 mm^3 > 1500 HU (max 3020 HU)"
    for k in list(l2):
        if k not in ("status", "reason", "mid_slice", "dense_material_mm3"):
            l2[k] = None
    l2.update(status="not_measurable", reason=reason, grade_reason=f"not graded: {reason}",
              dense_material_mm3=850.0)
    l3 = doc["vertebrae"]["L3"]
    l3.update(genant_grade=None, morphology=None, grade_reason="not graded: no neighbour")
    l1 = doc["vertebrae"]["L1"]
    l1.update(genant_grade=0, morphology="normal")
    doc.update(fractured_vertebrae_n=0, fractured_vertebrae=[],
               not_graded=["T12", "L2", "L3"], warnings=["L2: " + reason])
    return doc
