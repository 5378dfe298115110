"""The rcsa class map: the one place that defines segmentation class ids and names.

Left / right are the **patient's** sides. In rcsa's canonical LPS frame (see
:mod:`rcsa.io.volume`) the patient's left is towards larger column index ``i``, i.e. on the
right-hand side of a radiologically displayed axial image.

The shipped model's ``metadata.json`` carries this map (``classes``); code that interprets a
model's output reads it from there (:func:`class_map_from_metadata`), so a future model with a
different map is self-describing.

This module imports nothing from rcsa: it sits at the bottom of the layers (see
``docs/architecture.md``, "Layers"), so that :mod:`rcsa.measure` and :mod:`rcsa.pacs` read
label maps without importing :mod:`rcsa.segment`, which re-exports everything here from
:mod:`rcsa.segment.classes`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SegClass:
    """One output class of the segmentation model."""

    id: int
    name: str
    muscle: str | None  # e.g. "psoas"; None for background and bone
    side: str | None  # "left" | "right" | None (patient's side)
    description: str = ""

    @property
    def is_muscle(self) -> bool:
        return self.muscle is not None


@dataclass(frozen=True)
class ClassMap:
    """An ordered, id-contiguous list of classes (``classes[i].id == i``)."""

    classes: tuple[SegClass, ...]

    def __post_init__(self) -> None:
        for i, c in enumerate(self.classes):
            if c.id != i:
                raise ValueError(f"class ids must be 0..n-1 in order, got {c.id} at {i}")
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError("class names must be unique")
        for c in self.classes:
            if c.side is not None and self.mirror_of(c.id) == c.id:
                raise ValueError(f"sided class {c.name} has no mirror class")

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    def id_of(self, name: str) -> int:
        for c in self.classes:
            if c.name == name:
                return c.id
        raise KeyError(f"no class named {name!r}")

    def mirror_of(self, class_id: int) -> int:
        """The id of the same structure on the other side (itself for unsided classes)."""
        c = self.classes[class_id]
        if c.side is None:
            return class_id
        other = "right" if c.side == "left" else "left"
        for d in self.classes:
            if d.muscle == c.muscle and d.side == other:
                return d.id
        return class_id

    def lr_permutation(self) -> list[int]:
        """``perm[i]`` = id of class ``i`` after a left-right mirror of the image."""
        return [self.mirror_of(c.id) for c in self.classes]

    def muscle_ids(self) -> list[int]:
        return [c.id for c in self.classes if c.is_muscle]

    def ids_of_muscle(self, muscle: str) -> list[int]:
        return [c.id for c in self.classes if c.muscle == muscle]

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {
                "id": c.id,
                "name": c.name,
                "muscle": c.muscle,
                "side": c.side,
                "description": c.description,
            }
            for c in self.classes
        ]

    def labels_dict(self) -> dict[str, str]:
        """``{"<id>": "<name>"}`` (the TotalSegmentator-style sidecar JSON)."""
        return {str(c.id): c.name for c in self.classes}

    @classmethod
    def from_json(cls, items: Sequence[Mapping[str, Any]]) -> ClassMap:
        return cls(
            tuple(
                SegClass(
                    id=int(d["id"]),
                    name=str(d["name"]),
                    muscle=d.get("muscle"),
                    side=d.get("side"),
                    description=str(d.get("description", "")),
                )
                for d in items
            )
        )


_RULE = " (rule-derived split of TotalSegmentator 'autochthon', see docs/segment.md)"

RCSA_CLASSES = ClassMap(
    (
        SegClass(0, "background", None, None),
        SegClass(1, "multifidus_left", "multifidus", "left", "lumbar multifidus" + _RULE),
        SegClass(2, "multifidus_right", "multifidus", "right", "lumbar multifidus" + _RULE),
        SegClass(
            3, "erector_spinae_left", "erector_spinae", "left",
            "longissimus + iliocostalis" + _RULE,
        ),
        SegClass(
            4, "erector_spinae_right", "erector_spinae", "right",
            "longissimus + iliocostalis" + _RULE,
        ),
        SegClass(5, "psoas_left", "psoas", "left", "psoas major at lumbar levels"),
        SegClass(6, "psoas_right", "psoas", "right", "psoas major at lumbar levels"),
        SegClass(7, "gluteus_maximus_left", "gluteus_maximus", "left"),
        SegClass(8, "gluteus_maximus_right", "gluteus_maximus", "right"),
        SegClass(9, "gluteus_medius_left", "gluteus_medius", "left"),
        SegClass(10, "gluteus_medius_right", "gluteus_medius", "right"),
        SegClass(11, "vertebral_body", None, None, "vertebral body (no posterior elements)"),
    )
)

#: Ids by name, for code that builds labels (the model metadata is the reference at runtime).
BACKGROUND = 0
MULTIFIDUS_L, MULTIFIDUS_R = 1, 2
ERECTOR_L, ERECTOR_R = 3, 4
PSOAS_L, PSOAS_R = 5, 6
GMAX_L, GMAX_R = 7, 8
GMED_L, GMED_R = 9, 10
VERTEBRAL_BODY = 11


def class_map_from_metadata(metadata: Mapping[str, Any]) -> ClassMap:
    """The class map stored in a model's ``metadata.json``."""
    return ClassMap.from_json(metadata["classes"])
