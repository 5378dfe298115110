"""The anatomy table: the one place that declares rcsa's structures, and the class map.

Every structure rcsa segments and measures is one :class:`Structure` row of :data:`ANATOMY`:
its name, its label id(s) and sides, its default and allowed measurement levels, its coded
concept (DICOM SEG / SR), its plausibility envelopes (with their literature sources), its
display name, and the per-structure facts the label preparation and the post-processing rules
use. Everything else is *derived* from the table, where it is used:

=============================================  ============================================
derived product                                where
=============================================  ============================================
class map (:data:`RCSA_CLASSES`)               here (:meth:`AnatomyTable.class_map`)
muscles of the measurement table               ``rcsa.measure.table.MUSCLES``
default / allowed levels per muscle            ``rcsa.config`` (``[levels.muscles]`` /
                                               ``[levels.available]`` of the defaults)
plausibility envelopes                         ``rcsa.measure.plausibility``
SEG / SR anatomy codes                         ``rcsa.pacs.codes.STRUCTURES``
report row labels and order                    ``rcsa.report.content.STRUCTURE_LABELS``
labelled nomogram columns                      ``rcsa.nomogram.fit.KNOWN_COLUMNS``
TotalSegmentator copy rule                     ``rcsa.segment.prepare``
level plausibility, distance to the body,      ``rcsa.segment.postprocess``
midline fallback
muscles expected at a level                    ``rcsa.segment.infer.EXPECTED_AT_LEVEL``
=============================================  ============================================

Adding a structure is one row here, plus retraining the model (whose ``metadata.json``
carries the class map it was trained with); see ``docs/architecture.md``, "Adding a
structure". Row order is the order of the measurement table and of the report; label ids
are explicit (the class map is ordered by id, 0 = background).

Left / right are the **patient's** sides. In rcsa's canonical LPS frame (see
:mod:`rcsa.io.volume`) the patient's left is towards larger column index ``i``, i.e. on the
right-hand side of a radiologically displayed axial image.

The shipped model's ``metadata.json`` carries the class map (``classes``); code that
interprets a model's output reads it from there (:func:`class_map_from_metadata`), so a future
model with a different map is self-describing.

This module imports nothing from rcsa: it sits at the bottom of the layers (see
``docs/architecture.md``, "Layers"), so that :mod:`rcsa.config`, :mod:`rcsa.measure`,
:mod:`rcsa.nomogram` and :mod:`rcsa.pacs` read it without importing :mod:`rcsa.segment`,
which re-exports the class map from :mod:`rcsa.segment.classes`. Level names are plain
strings here; :mod:`rcsa.config` checks them against :data:`rcsa.levels.LEVEL_NAMES`
(and ``tests/test_anatomy.py`` does for the shipped table).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

SIDES: tuple[str, str] = ("left", "right")
#: Structure kinds: a ``muscle`` is measured per side and level (CSA, HU, fat %, rCSA); a
#: ``bone`` (the vertebral body) is measured as the rCSA normaliser.
KINDS = ("muscle", "bone")
#: How :mod:`rcsa.segment.prepare` derives a structure from TotalSegmentator labels:
#: ``copy`` = TotalSegmentator's ``<totalsegmentator>_left`` / ``_right`` label as is (any
#: number of rows); the other rules are algorithms written for the structures that use them
#: today (psoas; multifidus + erector spinae; vertebral body) and make only those:
#: ``iliopsoas`` = the psoas part of ``iliopsoas_*`` (rule); ``autochthon`` = rule-derived
#: split of ``autochthon_*`` (medial part multifidus, lateral part erector spinae);
#: ``vertebra_body_part`` = a vertebra label AND body part 1 of a body / posterior-element
#: mask (unknown for a subject without one); ``none`` = not derivable (trained from other
#: labels).
PREPARE_RULES = ("copy", "iliopsoas", "autochthon", "vertebra_body_part", "none")

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class AnatomyTableError(ValueError):
    """The anatomy table is inconsistent (a programming error: the table is code)."""


@dataclass(frozen=True)
class Concept:
    """A coded concept (DICOM SEG Segmented Property Type, SR finding site) and where its
    code and meaning were checked (``docs/pacs.md``; ``tests/test_pacs_codes.py`` checks the
    "PS3.16 CID n" sources against pydicom's PS3.16 tables)."""

    value: str
    scheme: str
    meaning: str
    source: str


@dataclass(frozen=True)
class Envelope:
    """A plausibility envelope (docs/measure.md, "Plausibility flags"): values outside it get
    a QC flag; NOT a normal range. ``levels`` None = every level; ``sides`` the long-table
    sides it applies to (``""`` for an unsided structure)."""

    quantity: str
    unit: str
    typical: str  # the literature figure it was set from
    sources: tuple[str, ...]  # keys of the table's references
    low: float | None = None
    high: float | None = None
    levels: tuple[str, ...] | None = None
    sides: tuple[str, ...] = SIDES


@dataclass(frozen=True)
class Structure:
    """One row of the anatomy table."""

    name: str  # e.g. "psoas"; class names are "<name>_left" / "<name>_right" when sided
    kind: Literal["muscle", "bone"]
    label_ids: tuple[int, ...]  # one per side (left, right), or one for an unsided structure
    display: str  # report label, e.g. "Erector spinae"
    concept: Concept
    sides: tuple[str, ...] = SIDES  # SIDES or () (unsided)
    description: str = ""  # the class description written to the model metadata
    #: measurement levels (names of rcsa.levels.LEVEL_NAMES): the default and the others it
    #: may also be measured at (muscles only; the default must be one of ``levels``)
    default_level: str | None = None
    levels: tuple[str, ...] = ()
    #: envelopes of this structure only (those of every muscle: AnatomyTable.muscle_envelopes)
    envelopes: tuple[Envelope, ...] = ()
    #: the both-sides rCSA at the default level is a documented nomogram predictor (its
    #: column gets the label "<display> rCSA" in fitted model specs)
    nomogram_predictor: bool = False
    #: label preparation from TotalSegmentator (PREPARE_RULES) and, for ``copy``, the
    #: TotalSegmentator structure name (without _left / _right)
    prepare_rule: str = "none"
    totalsegmentator: str | None = None
    #: ids of those labels in TotalSegmentator's "total" task (label map -> one per side),
    #: for label volumes without a JSON sidecar
    totalsegmentator_ids: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    #: post-processing facts (rcsa.segment.postprocess / infer)
    impossible_at_levels: tuple[str, ...] = ()  # cannot appear on these levels' slices
    expected_at_levels: tuple[str, ...] = ()  # anatomy puts it on every slice of these
    below_iliac_crest: bool = False  # arises below the iliac crest (pelvic muscle)
    max_mm_from_vertebral_body: float | None = None  # farthest a component may lie
    paraspinal: bool = False  # in the grooves beside the spinous processes
    #: the arg-max outline is grown by hysteresis on the class probability
    #: (rcsa.segment.postprocess.grow_from_core): a muscle the network under-calls on unseen
    #: bodies because one training subject alone labels it
    grown_from_core: bool = False
    #: QC overlay RGB per label id (same hue both sides, lighter right); None = grey
    colours: tuple[tuple[int, int, int], ...] | None = None

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class names, in the order of :attr:`label_ids`."""
        if not self.sides:
            return (self.name,)
        return tuple(f"{self.name}_{s}" for s in self.sides)

    @property
    def is_muscle(self) -> bool:
        return self.kind == "muscle"


@dataclass(frozen=True)
class AnatomyTable:
    """The rows, the envelopes that apply to every muscle, and the references the envelopes
    cite. Validated on construction (:class:`AnatomyTableError`)."""

    structures: tuple[Structure, ...]
    #: envelopes applying to every measured structure other than bone (structure ``*`` of
    #: rcsa.measure.plausibility: also extra labels of a label map, e.g. a TAG file's muscle)
    muscle_envelopes: tuple[Envelope, ...] = ()
    references: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(self)

    def structure(self, name: str) -> Structure:
        for s in self.structures:
            if s.name == name:
                return s
        raise KeyError(f"no structure named {name!r}")

    def muscles(self) -> tuple[str, ...]:
        """Muscle names in table order (the measurement table's order)."""
        return tuple(s.name for s in self.structures if s.is_muscle)

    def class_map(self) -> ClassMap:
        """Background (id 0) and every class of every row, by id."""
        classes = [SegClass(0, "background", None, None)]
        for s in self.structures:
            sides: Sequence[str | None] = s.sides or (None,)
            for cid, name, side in zip(s.label_ids, s.class_names, sides, strict=True):
                classes.append(SegClass(cid, name, s.name if s.is_muscle else None, side,
                                        s.description))
        return ClassMap(tuple(sorted(classes, key=lambda c: c.id)))

    def default_levels(self) -> dict[str, str]:
        """Muscle -> default level, in table order."""
        return {s.name: s.default_level for s in self.structures
                if s.is_muscle and s.default_level is not None}

    def available_levels(self) -> dict[str, tuple[str, ...]]:
        """Muscle -> levels it may be measured at, in table order."""
        return {s.name: s.levels for s in self.structures if s.is_muscle}

    def display_names(self) -> dict[str, str]:
        """Structure -> display name, in table (report) order."""
        return {s.name: s.display for s in self.structures}

    def nomogram_columns(self) -> dict[str, tuple[str, str | None]]:
        """Wide-table column -> (label, unit) of the structures that are nomogram predictors
        (both-sides rCSA at the default level; unit of the default normaliser)."""
        return {f"{s.default_level}_{s.name}_both_rcsa": (f"{s.display} rCSA", "ratio")
                for s in self.structures if s.nomogram_predictor}

    def impossible_at_level(self) -> dict[str, tuple[str, ...]]:
        """Level -> muscles that cannot appear on its slice."""
        return _by_level(self.structures, lambda s: s.impossible_at_levels)

    def expected_at_level(self) -> dict[str, tuple[str, ...]]:
        """Level -> muscles anatomy puts on every slice of it (both sides)."""
        return _by_level(self.structures, lambda s: s.expected_at_levels)

    def below_iliac_crest(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.structures if s.below_iliac_crest)

    def paraspinal(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.structures if s.paraspinal)

    def grown_from_core(self) -> tuple[str, ...]:
        """Class names (both sides) whose outline post-processing grows by hysteresis."""
        return tuple(n for s in self.structures if s.grown_from_core for n in s.class_names)

    def prepared_by(self, rule: str) -> tuple[Structure, ...]:
        """Rows whose TotalSegmentator preparation rule is ``rule`` (PREPARE_RULES)."""
        return tuple(s for s in self.structures if s.prepare_rule == rule)

    def max_mm_from_vertebral_body(self) -> dict[str, float]:
        return {s.name: s.max_mm_from_vertebral_body for s in self.structures
                if s.max_mm_from_vertebral_body is not None}

    def colours(self) -> dict[int, tuple[int, int, int]]:
        """Label id -> QC overlay RGB, for the rows that declare colours."""
        return {cid: rgb for s in self.structures if s.colours is not None
                for cid, rgb in zip(s.label_ids, s.colours, strict=True)}

    def with_rows(self, *rows: Structure) -> AnatomyTable:
        """A copy with ``rows`` appended (validated)."""
        return AnatomyTable((*self.structures, *rows), self.muscle_envelopes, self.references)


def _by_level(rows: Sequence[Structure], levels_of: Any) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for s in rows:
        for lv in levels_of(s):
            out[lv] = (*out.get(lv, ()), s.name)
    return out


def _check_envelope(e: Envelope, where: str, refs: Mapping[str, str]) -> None:
    unknown = [r for r in e.sources if r not in refs]
    if unknown or not e.sources:
        raise AnatomyTableError(f"{where}: unknown or missing sources {unknown}")
    if e.low is None and e.high is None:
        raise AnatomyTableError(f"{where}: needs low or high")
    if e.low is not None and e.high is not None and not e.low < e.high:
        raise AnatomyTableError(f"{where}: low must be below high ({e.low} >= {e.high})")
    if not e.sides:
        raise AnatomyTableError(f"{where}: applies to no side")


def _validate(t: AnatomyTable) -> None:
    names: set[str] = set()
    ids: list[int] = []
    codes: set[tuple[str, str]] = set()
    for i, s in enumerate(t.structures):
        where = f"anatomy row {i} ({s.name!r})"
        if not _NAME.match(s.name) or s.name == "background":
            raise AnatomyTableError(f"{where}: a name is lower-case letters, digits and _")
        for n in dict.fromkeys((s.name, *s.class_names)):
            if n in names:
                raise AnatomyTableError(f"{where}: name {n!r} is not unique")
            names.add(n)
        if s.kind not in KINDS:
            raise AnatomyTableError(f"{where}: kind {s.kind!r} is not one of {KINDS}")
        if s.sides not in (SIDES, ()):
            raise AnatomyTableError(
                f"{where}: a sided structure has both sides {SIDES}, got {s.sides}")
        if len(s.label_ids) != max(1, len(s.sides)):
            raise AnatomyTableError(
                f"{where}: {len(s.label_ids)} label ids for sides {s.sides or '(unsided)'}")
        if any(not 0 < cid < 255 for cid in s.label_ids):
            raise AnatomyTableError(f"{where}: label ids are 1..254 (0 is background)")
        ids += s.label_ids
        key = (s.concept.scheme, s.concept.value)
        if key in codes:
            raise AnatomyTableError(f"{where}: code {key} is used twice")
        codes.add(key)
        if s.is_muscle:
            if s.default_level is None or s.default_level not in s.levels:
                raise AnatomyTableError(
                    f"{where}: default level {s.default_level!r} is not in its levels "
                    f"{s.levels}")
            if not s.sides:
                raise AnatomyTableError(f"{where}: a muscle is measured per side")
        elif s.default_level is not None or s.levels or s.nomogram_predictor:
            raise AnatomyTableError(f"{where}: only muscles have levels and predictors")
        if s.prepare_rule not in PREPARE_RULES:
            raise AnatomyTableError(f"{where}: prepare rule {s.prepare_rule!r} is not one of "
                                    f"{PREPARE_RULES}")
        if (s.prepare_rule == "copy") != (s.totalsegmentator is not None):
            raise AnatomyTableError(f"{where}: a TotalSegmentator name goes with rule copy")
        for label_map, ts_ids in s.totalsegmentator_ids.items():
            if s.prepare_rule != "copy" or len(ts_ids) != len(s.label_ids):
                raise AnatomyTableError(
                    f"{where}: TotalSegmentator ids ({label_map}) need rule copy and one id "
                    "per label id")
        if s.colours is not None and len(s.colours) != len(s.label_ids):
            raise AnatomyTableError(f"{where}: one colour per label id")
        for j, e in enumerate(s.envelopes):
            _check_envelope(e, f"{where} envelope {j}", t.references)
    if len(set(ids)) != len(ids):
        raise AnatomyTableError(f"label ids are not unique: {sorted(ids)}")
    if sorted(ids) != list(range(1, len(ids) + 1)):
        raise AnatomyTableError(f"label ids must be 1..{len(ids)} (0 = background), got "
                                f"{sorted(ids)}")
    for j, e in enumerate(t.muscle_envelopes):
        _check_envelope(e, f"muscle envelope {j}", t.references)


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
_TS = "TotalSegmentator SEG mapping"
_LUMBAR = ("L3", "L4", "L5")
_ABOVE_PELVIS = ("T11", "T12", "L1", "L2", "L3")

#: The shipped anatomy table (row order = measurement and report order).
ANATOMY = AnatomyTable(
    structures=(
        Structure(
            "multifidus", "muscle", (1, 2), "Multifidus",
            # PS3.16 CID 3031 codes the multifidus as MDC 7:508 "Musculi multifidii"; no
            # SNOMED CT code for it is in PS3.16 or in a published mapping (the former SCT
            # 5709001 has none).
            Concept("7:508", "MDC", "Musculi multifidii", "PS3.16 CID 3031"),
            description="lumbar multifidus" + _RULE,
            default_level="L3", levels=_LUMBAR,
            envelopes=(Envelope(
                "csa_mm2", "mm2",
                "multifidus per side 4.7 +- 1.4 cm2 (L3) to 9.0 +- 1.5 cm2 (L4 lower "
                "endplate) on CT; 9.6 +- 2.1 cm2 at L4-L5 on MRI",
                ("danneels2000", "fortin2016"), low=100.0, high=2500.0, levels=_LUMBAR),),
            prepare_rule="autochthon",
            expected_at_levels=("T11", "T12", "L1", "L2", "L3", "L4", "L5"),
            max_mm_from_vertebral_body=70.0, paraspinal=True,
            colours=((230, 25, 75), (250, 130, 160)),
        ),
        Structure(
            "erector_spinae", "muscle", (3, 4), "Erector spinae",
            Concept("44947003", "SCT", "Erector spinae muscle", "PS3.16 CID 6116, CID 7151"),
            description="longissimus + iliocostalis" + _RULE,
            default_level="L3", levels=_LUMBAR,
            envelopes=(Envelope(
                "csa_mm2", "mm2",
                "erector spinae per side 20.0 +- 4.4 cm2 at L3-L4 and 16.3 +- 4.1 cm2 at "
                "L4-L5 (MRI); it thins towards L5 where it becomes aponeurotic",
                ("fortin2016",), low=200.0, high=4500.0, levels=_LUMBAR),),
            prepare_rule="autochthon",
            expected_at_levels=("T11", "T12", "L1", "L2", "L3", "L4", "L5"),
            max_mm_from_vertebral_body=120.0, paraspinal=True,
            colours=((60, 180, 75), (170, 255, 195)),
        ),
        Structure(
            "psoas", "muscle", (5, 6), "Psoas",
            # rcsa's psoas is the psoas major at lumbar levels. SCT 276167002 "Psoas muscle"
            # (major and minor) is the SNOMED CT cross-reference of UBERON:0008450 "psoas
            # muscle"; PS3.16 has no psoas code. Not SCT 64038003 (used for "Psoas major
            # muscle" in some public mappings): PS3.16 codes 64038003 as "intercostal lymph
            # node" (CID 7600; SRT T-C4370).
            Concept("276167002", "SCT", "Psoas muscle",
                    "UBERON:0008450 SNOMED CT cross-reference"),
            description="psoas major at lumbar levels",
            default_level="L3", levels=_LUMBAR,
            envelopes=(Envelope(
                "csa_mm2", "mm2",
                "total psoas index at L3 5.4-5.9 cm2/m2 (SD 1.4-1.7) in healthy young adults, "
                "i.e. about 7-9 cm2 per side; L4 total psoas 2.5th percentile 11.1 cm2 "
                "(women) / 22.0 cm2 (men)",
                ("lawlor2022", "demarco2022"), low=150.0, high=4000.0, levels=_LUMBAR),),
            prepare_rule="iliopsoas",
            # psoas major arises from T12-L4 and runs past L5
            expected_at_levels=("L1", "L2", "L3", "L4", "L5"),
            max_mm_from_vertebral_body=40.0,
            # A alone labels it (B's reference has no psoas): on unseen bodies the network
            # finds its core and under-calls the rest (docs/segment.md, "Psoas")
            grown_from_core=True,
            colours=((0, 130, 200), (120, 200, 255)),
        ),
        Structure(
            "gluteus_maximus", "muscle", (7, 8), "Gluteus maximus",
            Concept("181674001", "SCT", "Gluteus maximus muscle", _TS),
            default_level="femoral_head_top", levels=("femoral_head_top",),
            envelopes=(Envelope(
                "csa_mm2", "mm2",
                "gluteus maximus about 48 % of the 7349 mm2 of muscle per side at the upper "
                "margin of the pubic symphysis (about 3500 mm2) in healthy adults; its "
                "largest CSA lies just above the femoral head",
                ("koda1991", "homma2019"), low=600.0, high=9000.0,
                levels=("femoral_head_top",)),),
            nomogram_predictor=True,
            prepare_rule="copy", totalsegmentator="gluteus_maximus",
            totalsegmentator_ids={"ts_v1": (94, 95), "ts_v2": (80, 81)},
            # arises from the ilium and sacrum, below the iliac crest
            impossible_at_levels=_ABOVE_PELVIS, below_iliac_crest=True,
            expected_at_levels=("sij_lower", "femoral_head_top"),
            colours=((245, 130, 48), (255, 215, 180)),
        ),
        Structure(
            "gluteus_medius", "muscle", (9, 10), "Gluteus medius",
            Concept("78333006", "SCT", "Gluteus medius muscle", _TS),
            default_level="sij_lower", levels=("sij_lower",),
            envelopes=(Envelope(
                "csa_mm2", "mm2",
                "gluteus medius CSA is largest near the lowest slice of the sacroiliac "
                "joints; median gluteus medius index about 16-17 cm2/m2 in older "
                "hip-fracture patients",
                ("homma2019", "inoue2024"), low=300.0, high=6000.0, levels=("sij_lower",)),),
            nomogram_predictor=True,
            prepare_rule="copy", totalsegmentator="gluteus_medius",
            totalsegmentator_ids={"ts_v1": (96, 97), "ts_v2": (82, 83)},
            # arises from the outer ilium just below the crest
            impossible_at_levels=_ABOVE_PELVIS, below_iliac_crest=True,
            expected_at_levels=("sij_lower", "femoral_head_top"),
            colours=((145, 30, 180), (220, 190, 255)),
        ),
        Structure(
            "vertebral_body", "bone", (11,), "Vertebral body",
            Concept("3572006", "SCT", "Vertebral body", _TS),
            sides=(),
            description="vertebral body (no posterior elements)",
            envelopes=(Envelope(
                "csa_mm2", "mm2",
                "lumbar (L3) vertebral body cross-sectional area about 11-13 cm2 in women and "
                "14-18 cm2 in men, increasing with age",
                ("mosekilde1990",), low=600.0, high=3000.0,
                levels=("T12", "L1", "L2", "L3", "L4", "L5"), sides=("",)),),
            prepare_rule="vertebra_body_part",
            colours=((255, 225, 25),),
        ),
    ),
    muscle_envelopes=(
        # Attenuation: skeletal muscle is about 35-50 HU on CT (psoas 42 +- 8.4 HU,
        # paravertebral 34.5 +- 10.8 HU at L3 in portal-venous CT; psoas 48 +- 5.5 HU
        # unenhanced). Below -50 HU the mask is mostly fat (or air); above 110 HU it holds
        # bone, calcium or dense contrast.
        Envelope(
            "mean_hu", "HU",
            "psoas 42 +- 8.4 HU and paravertebral muscle 34.5 +- 10.8 HU (portal-venous CT); "
            "psoas 48 +- 5.5 HU (unenhanced)",
            ("rollins2020", "lawlor2022"), low=-50.0, high=110.0),
        # More fat than muscle inside the mask: Goutallier grade 4 (adapted to the lumbar
        # spine) or a mask that leaks into subcutaneous / intermuscular fat.
        Envelope(
            "fat_pct", "%",
            "Goutallier grade 4 = more fat than muscle; healthy gluteus medius fat fraction "
            "about 8 % (MRI)",
            ("goutallier1994", "marcon2016"), high=50.0),
        # Left-right asymmetry of the same muscle: healthy asymmetry is under about 10 %, and
        # ipsilateral multifidus wasting in acute low back pain is of the order of 30 %;
        # beyond 50 % a one-sided segmentation failure or a field-of-view cut is more likely
        # than anatomy.
        Envelope(
            "asymmetry_pct", "%",
            "healthy side-to-side CSA difference under 10 %; multifidus asymmetry about 30 % "
            "ipsilateral to acute low back pain",
            ("hides1994",), low=-50.0, high=50.0, sides=("both",)),
    ),
    references={
        "lawlor2022": "Lawlor MA, Oliveto JM, Geske JA, Khandalavala BN. Computerized "
        "tomography derived psoas muscle indices in a healthy young population in the United "
        "States. J Frailty Sarcopenia Falls. 2022;7(1):38-46. doi:10.22540/JFSF-07-038",
        "demarco2022": "De Marco D, et al. Muscle area and density assessed by abdominal "
        "computed tomography in healthy adults: effect of normal aging and derivation of "
        "reference values. J Nutr Health Aging. 2022;26(2):243-246. "
        "doi:10.1007/s12603-022-1746-3",
        "danneels2000": "Danneels LA, Vanderstraeten GG, Cambier DC, Witvrouw EE, De Cuyper "
        "HJ. CT imaging of trunk muscles in chronic low back pain patients and healthy control "
        "subjects. Eur Spine J. 2000;9(4):266-272",
        "fortin2016": "Fortin M, Lazary A, Varga PP, McCall I, Battie MC. Paraspinal muscle "
        "asymmetry and fat infiltration in patients with symptomatic disc herniation. Eur "
        "Spine J. 2016;25(5):1452-1459",
        "koda1991": "Koda M, Inokuchi S, Ito J, Suzuki M, Kumakura H. Cross-sectional "
        "observation of muscles at Erdheim 12 level by CT image. J Showa Med Assoc. "
        "1991;51(4):435-441",
        "homma2019": "Homma D, Minato I, Imai N, et al. Investigation on the measurement sites "
        "of the cross-sectional areas of the gluteus maximus and gluteus medius. Surg Radiol "
        "Anat. 2019;41(1):3-10",
        "inoue2024": "Reduced cross-sectional area of the gluteus medius muscle is associated "
        "with decreased activities of daily living in older adult patients with hip "
        "fractures. J Aging Phys Act. 2024;32(1):1-7. doi:10.1123/japa.2022-0307 (PMID "
        "37295783)",
        "rollins2020": "Rollins KE, Gopinath A, Awwad A, Macdonald IA, Lobo DN. Computed "
        "tomography-based psoas skeletal muscle area and radiodensity are poor sentinels for "
        "whole L3 skeletal muscle values. Clin Nutr. 2020;39(7):2227-2232",
        "goutallier1994": "Goutallier D, Postel JM, Bernageau J, Lavau L, Voisin MC. Fatty "
        "muscle degeneration in cuff ruptures: pre- and postoperative evaluation by CT scan. "
        "Clin Orthop Relat Res. 1994;(304):78-83",
        "marcon2016": "Marcon M, Berger N, Manoliu A, et al. Normative values for volume and "
        "fat content of the hip abductor muscles and their dependence on side, age and gender "
        "in a healthy population. Skeletal Radiol. 2016;45(4):465-474",
        "hides1994": "Hides JA, Stokes MJ, Saide M, Jull GA, Cooper DH. Evidence of lumbar "
        "multifidus muscle wasting ipsilateral to symptoms in patients with acute/subacute "
        "low back pain. Spine. 1994;19(2):165-172",
        "mosekilde1990": "Mosekilde L, Mosekilde L. Sex differences in age-related changes in "
        "vertebral body size, density and biomechanical competence in normal individuals. "
        "Bone. 1990;11(2):67-73",
    },
)

RCSA_CLASSES = ANATOMY.class_map()

#: Ids by name, for code that builds labels (the model metadata is the reference at runtime).
BACKGROUND = 0
MULTIFIDUS_L, MULTIFIDUS_R = ANATOMY.structure("multifidus").label_ids
ERECTOR_L, ERECTOR_R = ANATOMY.structure("erector_spinae").label_ids
PSOAS_L, PSOAS_R = ANATOMY.structure("psoas").label_ids
GMAX_L, GMAX_R = ANATOMY.structure("gluteus_maximus").label_ids
GMED_L, GMED_R = ANATOMY.structure("gluteus_medius").label_ids
(VERTEBRAL_BODY,) = ANATOMY.structure("vertebral_body").label_ids


def class_map_from_metadata(metadata: Mapping[str, Any]) -> ClassMap:
    """The class map stored in a model's ``metadata.json``."""
    return ClassMap.from_json(metadata["classes"])
