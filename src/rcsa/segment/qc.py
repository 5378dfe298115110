"""QC overlay PNGs: :func:`rcsa.runfolder.qc.overlay_png`, re-exported where the segmentation
code (``rcsa prepare-training``) has always found it."""

from rcsa.runfolder.qc import _colour, overlay_png

__all__ = ["_colour", "overlay_png"]
