"""A small synthetic occluded re-ID dataset that needs no download.

``generate(out_dir, seed)`` draws simple pedestrians with numpy (ellipses, tapered segments
and polygons evaluated on a pixel grid) and writes them in the Market-1501 layout::

    out_dir/bounding_box_train/0007_c2s1_000123_00.jpg   training identities
    out_dir/query/...                                     occluded queries (test identities)
    out_dir/bounding_box_test/...                         mostly holistic gallery + distractors
    out_dir/masks/<split folder>/<image stem>.png         ground-truth part labels
    out_dir/annotations.csv                               per image: view, occlusion, visibility
    out_dir/synthetic.json                                manifest (seed, version, options, counts)

Identities differ region by region (head: hair or a hat; upper body: top colour and a coarse
layout; bag; lower body; shoes), so that the upper half alone tells any two apart; the
cameras differ in background, lighting, blur, noise, scale and position. Queries are occluded
the way Occluded-Duke queries are: by objects (cars, poles, boxes, bushes, barriers), by
another pedestrian in front, or by the frame cutting the body off; objects carry clothing
colours, so they mislead a feature that does not tell person from occluder.

Part labels follow the parser's merged classes (see docs/METHOD.md, section 3): 0 background,
1 head (face, hair, hat, neck), 2 upper body (torso, arms, bags), 3 lower body (trousers,
shorts, skirts), 4 shoes; bare legs are background, as the parser's leg->background merge
makes them; every pixel of an occluder (objects and other people) is 0.

The output is a pure function of the seed and the options: every image has its own random
generator seeded from (seed, image index), and images are written by PIL with fixed
settings and no metadata, so the same seed gives the same bytes (for a given numpy/Pillow).

Generated data never deletes what it did not write: a dataset whose split or mask folders
differ from the files its generator wrote is refused, naming the files, instead of being
generated again; ``mbf synth --force`` (``overwrite=True``) regenerates on purpose with the
manifest's seed and options (except those given) and refuses while any other file is there.
A generation holds the folder's lock (``.mbf-lock``) and records its seed and options in
``.synthetic_incomplete`` until it finishes, so an interrupted one can be finished.

Modules: ``options`` (layout constants, :class:`SynthOptions`), ``canvas`` (drawing
primitives), ``appearance`` (identities, region by region), ``people`` (pose, body
rendering), ``scenes`` (cameras), ``occluders`` (objects, frame cut-offs), ``render`` (one
image), ``plan`` (which images and files a dataset has), ``inventory`` (manifest, marker, which
files on disk are the generator's, verify/status), ``writer`` (generation). Everything is
importable from this package.
"""
from .appearance import (COLOUR_JITTER, REGIONS, UPPER_REGIONS, Appearance, IdentityPool, random_appearance,
                         region_codes, similar_appearance)
from .canvas import Canvas
from .inventory import Survey, dataset_status, read_manifest, regenerate_command, survey_dataset, verify
from .options import (ANNOTATIONS_NAME, BACKGROUND, CLI_FLAGS, DATASET_DIR_NAME, GALLERY_DIR, GENERATOR_VERSION,
                      HEAD, LOWER, MANIFEST_NAME, MASK_DIR, OCCLUDER_FILLS, OCCLUDER_KINDS, QUERY_DIR, SHOES,
                      SPLIT_DIRS, TRAIN_DIR, UPPER, SynthOptions, SynthSummary)
from .people import Pose, draw_person
from .plan import _plan
from .render import ImageSpec, Rendered, render_image
from .scenes import Camera, make_cameras
from .writer import ensure_dataset, generate, log, make_options, up_to_date

__all__ = [
    "ANNOTATIONS_NAME", "BACKGROUND", "CLI_FLAGS", "REGIONS", "UPPER_REGIONS", "IdentityPool", "region_codes", "COLOUR_JITTER", "DATASET_DIR_NAME", "GALLERY_DIR", "GENERATOR_VERSION", "HEAD",
    "LOWER", "MANIFEST_NAME", "MASK_DIR", "OCCLUDER_FILLS", "OCCLUDER_KINDS", "QUERY_DIR", "SHOES", "SPLIT_DIRS",
    "TRAIN_DIR", "UPPER", "Appearance", "Camera", "Canvas", "ImageSpec", "Pose", "Rendered", "SynthOptions",
    "SynthSummary", "Survey", "dataset_status", "draw_person", "ensure_dataset", "generate", "log", "make_cameras",
    "make_options", "random_appearance", "read_manifest", "regenerate_command", "render_image",
    "similar_appearance", "survey_dataset", "up_to_date", "verify",
]
