"""The run folder: the one place that names its files (:mod:`rcsa.runfolder.names`), writes
them (:func:`write_run_folder`) and reads them back (:func:`open_run_folder`).

``rcsa run`` / ``rcsa measure`` (through :func:`rcsa.pipeline.write_scan_outputs`),
``rcsa batch`` (per case), ``rcsa screen`` and ``rcsa segment`` write through it;
``rcsa screen``, the DICOM SEG / SR export and the batch feature table read through it.
Adding a file to the run folder: see ``docs/architecture.md``, "Adding an output".

>>> from rcsa.runfolder import open_run_folder
>>> run = open_run_folder("out/")                       # doctest: +SKIP
>>> run.level_map["L3"].slice_index, run.wide.shape     # doctest: +SKIP
"""

from rcsa.runfolder import names
from rcsa.runfolder.read import RunFolder, is_run_folder, open_run_folder
from rcsa.runfolder.write import (
    Overlay,
    RunContent,
    RunRecord,
    check_output_dir,
    run_json,
    write_run_folder,
)

__all__ = [
    "Overlay",
    "RunContent",
    "RunFolder",
    "RunRecord",
    "check_output_dir",
    "is_run_folder",
    "names",
    "open_run_folder",
    "run_json",
    "write_run_folder",
]
