"""Default configuration.

Key names follow the MBF/TransReID seed so that every seed YAML and every command line of the
paper's README merges unchanged. Keys that the seed does not have are marked "(new)".
Nothing below the config layer reads this tree: ``build_*`` functions translate it into
constructor arguments.
"""
from __future__ import annotations

from yacs.config import CfgNode as CN


def _default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # pragma: no cover - torch is a hard dependency
        return "cpu"


_C = CN()

# ----------------------------------------------------------------------------- MODEL
_C.MODEL = CN()
_C.MODEL.DEVICE = _default_device()  # "cuda" when a GPU is present, else "cpu"
_C.MODEL.DEVICE_ID = "0"  # GPU index (the seed passes it as "('2')")
# (new) torch threads on the CPU; 0: the CPUs this process may run on (affinity and container quota),
# shared by the processes torchrun starts on one machine. Set 1 on a machine busy with other work.
_C.MODEL.CPU_THREADS = 0
_C.MODEL.NAME = "transformer"
_C.MODEL.LAST_STRIDE = 1
_C.MODEL.PRETRAIN_PATH = ""
# 'imagenet': timm/jx ViT or DeiT weights into the backbone; 'self': a whole MBF checkpoint
# (ours or the reference's); 'none': random initialisation. 'finetune' is accepted as 'self'.
_C.MODEL.PRETRAIN_CHOICE = "imagenet"
_C.MODEL.NECK = "bnneck"
_C.MODEL.IF_WITH_CENTER = "no"
_C.MODEL.ID_LOSS_TYPE = "softmax"
_C.MODEL.ID_LOSS_WEIGHT = 1.0
_C.MODEL.TRIPLET_LOSS_WEIGHT = 1.0
_C.MODEL.METRIC_LOSS_TYPE = "triplet"
_C.MODEL.DIST_TRAIN = False
_C.MODEL.NO_MARGIN = False
_C.MODEL.IF_LABELSMOOTH = "on"
_C.MODEL.SEG_EPSILON = 0.1  # (new) label smoothing of the segmentation loss
_C.MODEL.SEG_CLASS_WEIGHTS = [0.5, 1.0, 0.8, 0.8, 1.0]  # (new) its class weights: bg, head, upper, lower, shoes
_C.MODEL.COS_LAYER = False
# (new) the criterion: loss terms by name (mbf.losses.LOSS_TERMS; terms whose inputs a model does
# not produce are left out) and their weights, all 1.0 in the reference
_C.MODEL.LOSS_TERMS = ["reid_holistic", "seg_holistic", "reid_occluded", "reid_decoder", "seg_occluded", "mse", "sepa"]
_C.MODEL.LOSS_WEIGHTS = CN(new_allowed=True)
for _term in _C.MODEL.LOSS_TERMS:
    setattr(_C.MODEL.LOSS_WEIGHTS, _term.upper(), 1.0)

# Transformer
_C.MODEL.DROP_PATH = 0.1
_C.MODEL.DROP_OUT = 0.0
_C.MODEL.ATT_DROP_RATE = 0.0
_C.MODEL.TRANSFORMER_TYPE = "None"
_C.MODEL.STRIDE_SIZE = [16, 16]
_C.MODEL.VIT_EMBED_DIM = 0  # (new) 0: width from TRANSFORMER_TYPE
_C.MODEL.VIT_DEPTH = 0  # (new) 0: depth from TRANSFORMER_TYPE
_C.MODEL.VIT_NUM_HEADS = 0  # (new) 0: heads from TRANSFORMER_TYPE
_C.MODEL.SALIENT_BLOCK = -2  # (new) block that selects salient patches; negative counts from the end

# JPM (kept for seed compatibility; MBF does not use the jigsaw branch)
_C.MODEL.JPM = False
_C.MODEL.SHIFT_NUM = 5
_C.MODEL.SHUFFLE_GROUP = 2
_C.MODEL.DEVIDE_LENGTH = 4
_C.MODEL.RE_ARRANGE = True

# Side information embedding
_C.MODEL.SIE_COE = 3.0
_C.MODEL.SIE_CAMERA = False
_C.MODEL.SIE_VIEW = False

# Salient-patch keep ratio and background-augmentation probability
_C.MODEL.EFFECTIVE_RADIO = 0.7
_C.MODEL.BETA = 0.5

# Foreground recovery decoder
_C.MODEL.NUM_HEAD = 8
_C.MODEL.DECODER_DROP_RATE = 0.1
_C.MODEL.DROP_FIRST = False
_C.MODEL.NUM_DECODER_LAYER = 2
_C.MODEL.QUERY_NUM = 4
_C.MODEL.DECODER_FFN_DIM = 2048  # (new) feed-forward width of each decoder layer
_C.MODEL.RECOVERY = True  # (new) use the recovery branch (occluded training + 9*D descriptor)

# ----------------------------------------------------------------------------- INPUT
_C.INPUT = CN()
_C.INPUT.SIZE_TRAIN = [384, 128]
_C.INPUT.SIZE_TEST = [384, 128]
_C.INPUT.PROB = 0.5  # horizontal flip probability
_C.INPUT.RE_PROB = 0.5  # random erasing probability
# (new) rectangle draws per image; 1 is the reference (a rejected draw means no erasing,
# so it erases ~0.8-0.9 x RE_PROB), more draws erase with probability ~RE_PROB
_C.INPUT.RE_MAX_ATTEMPTS = 1
_C.INPUT.PIXEL_MEAN = [0.485, 0.456, 0.406]
_C.INPUT.PIXEL_STD = [0.229, 0.224, 0.225]
_C.INPUT.PADDING = 10
# (new) colour jitter of training images: 'auto' turns it on for occ_reid as the reference does
_C.INPUT.COLOR_JITTER = "auto"
# (new) its strength: brightness, contrast, saturation, hue (the reference's Occluded-REID values)
_C.INPUT.COLOR_JITTER_STRENGTH = [0.3, 0.3, 0.2, 0.2]

# ----------------------------------------------------------------------------- DATASETS
_C.DATASETS = CN()
_C.DATASETS.NAMES = "market1501"
_C.DATASETS.ROOT_DIR = "datasets"  # the seed: "../data"; the README and every config here: datasets/
# seed of the embedded synthetic dataset generated on first use (DATASETS.NAMES synthetic_occ); `mbf synth --seed` is the same
_C.DATASETS.SYNTHETIC_SEED = 0
# (new) datasets evaluated by test.py and at the end of training, e.g. ['occ_reid', 'partial_reid'];
# empty: the training dataset (DATASETS.NAMES). results.json's top-level metrics are the first one's
_C.DATASETS.TEST_NAMES = []
_C.DATASETS.MSMT17_USE_VAL = True  # (new) msmt17 trains on list_train + list_val (TransReID); False: list_train only
_C.DATASETS.CUSTOM_DIR = "custom"  # (new) folder under ROOT_DIR holding the CSV lists of DATASETS.NAMES 'custom'

# ----------------------------------------------------------------------------- DATALOADER
_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 8  # capped at the CPUs this process may use (one log line says so)
_C.DATALOADER.SAMPLER = "softmax"
_C.DATALOADER.NUM_INSTANCE = 16

# ----------------------------------------------------------------------------- SOLVER
_C.SOLVER = CN()
_C.SOLVER.OPTIMIZER_NAME = "Adam"
_C.SOLVER.MAX_EPOCHS = 100
_C.SOLVER.BASE_LR = 3e-4
_C.SOLVER.LARGE_FC_LR = False
_C.SOLVER.BIAS_LR_FACTOR = 1
_C.SOLVER.SEED = 1234
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.MARGIN = 0.3
_C.SOLVER.CENTER_LR = 0.5
_C.SOLVER.CENTER_LOSS_WEIGHT = 0.0005
_C.SOLVER.WEIGHT_DECAY = 0.0005
_C.SOLVER.WEIGHT_DECAY_BIAS = 0.0005
_C.SOLVER.GAMMA = 0.1
_C.SOLVER.STEPS = (40, 70)
_C.SOLVER.WARMUP_FACTOR = 0.01
_C.SOLVER.WARMUP_EPOCHS = 5
_C.SOLVER.WARMUP_METHOD = "linear"
_C.SOLVER.COSINE_MARGIN = 0.5
_C.SOLVER.COSINE_SCALE = 30
_C.SOLVER.CHECKPOINT_PERIOD = 10
_C.SOLVER.LOG_PERIOD = 100
_C.SOLVER.EVAL_PERIOD = 10
_C.SOLVER.IMS_PER_BATCH = 64  # global batch; divided over processes in distributed runs
_C.SOLVER.MIN_LR_FACTOR = 0.002  # (new) cosine floor as a fraction of BASE_LR
_C.SOLVER.AMP = True  # (new) mixed precision: on CUDA always, on the CPU only with AMP_DTYPE bfloat16
# (new) 'float16' (CUDA, with gradient scaling; the CPU then trains in float32) or 'bfloat16'
# (CUDA, or CPU autocast when asked for explicitly: the AMP code paths on machines without a GPU)
_C.SOLVER.AMP_DTYPE = "float16"
_C.SOLVER.RESUME = False  # (new) continue from OUTPUT_DIR/last.pth
_C.SOLVER.GRAD_CLIP = 0.0  # (new) clip the gradients' global L2 norm to this before each update (0: off, as the reference)
# (new) decay of an exponential moving average of the weights, saved as <MODEL.NAME>_ema_<epoch>.pth and
# evaluated after training beside the raw weights (0: off, as the reference; e.g. 0.999)
_C.SOLVER.EMA = 0.0

# ----------------------------------------------------------------------------- TEST
_C.TEST = CN()
_C.TEST.IMS_PER_BATCH = 128
_C.TEST.RE_RANKING = False
# (new) k-reciprocal re-ranking parameters; the reference's evaluator uses k1=50, k2=15, lambda=0.3
_C.TEST.RE_RANKING_K1 = 50
_C.TEST.RE_RANKING_K2 = 15
_C.TEST.RE_RANKING_LAMBDA = 0.3
_C.TEST.WEIGHT = ""
_C.TEST.NECK_FEAT = "after"
_C.TEST.FEAT_NORM = "yes"
_C.TEST.DIST_MAT = "dist_mat.npy"
_C.TEST.EVAL = False
# (new) autocast inference; off (float32, as the reference evaluates) until a GPU measurement
# shows mAP within 0.1 point of float32. On the CPU it needs AMP_DTYPE bfloat16.
_C.TEST.AMP = False
_C.TEST.AMP_DTYPE = "bfloat16"  # (new) 'bfloat16' or 'float16' (CUDA only)
_C.TEST.DIST_CHUNK = 4096  # (new) queries per block of the distance matrix
# (new) images per forward pass of the Embedder and `mbf extract`: each batch of IMS_PER_BATCH images is fed
# to the network in chunks of this size (0: the whole batch at once), because a large batch's activations
# outgrow the CPU's caches (benchmarks/embed_precision.py, docs/BENCHMARKS.md: on one thread 8 chunks of 32 beat
# one batch of 256 by 1.14x; with two threads on a busy machine chunks cost, and 0 is faster there)
_C.TEST.FORWARD_CHUNK = 32
_C.TEST.VISUALIZE = False  # (new) write retrieval.png and part_masks.png

# ----------------------------------------------------------------------------- misc
_C.OUTPUT_DIR = ""

# ----------------------------------------------------------------------------- HUMAN_PARSING
_C.HUMAN_PARSING = CN()
_C.HUMAN_PARSING.NAME = "seg_hrnet"
_C.HUMAN_PARSING.PRETRAINED = ""
_C.HUMAN_PARSING.EXTRA = CN(new_allowed=True)
_C.HUMAN_PARSING.MODEL_FILE = ""
_C.HUMAN_PARSING.IMAGE_SIZE = [2048, 1024]  # width, height
_C.HUMAN_PARSING.NUM_CLASSES = 10
# (new) the normalisation the parser was trained with; images are converted to it before parsing.
# Empty: the training images' own (INPUT.PIXEL_MEAN / PIXEL_STD), as the reference, whose inputs were 0.5 / 0.5
_C.HUMAN_PARSING.PIXEL_MEAN = []
_C.HUMAN_PARSING.PIXEL_STD = []
# (new) where part labels come from: 'hrnet' (online parser), 'cache' (labels stored by
# `mbf parse`), 'files' (label PNGs mirroring the image names, e.g. the synthetic ground truth)
_C.HUMAN_PARSING.SOURCE = "hrnet"
_C.HUMAN_PARSING.CACHE_DIR = ""  # (new) '' -> OUTPUT_DIR/parse_cache; relative to the working directory
# (new) folder of label PNGs for SOURCE 'files'; a relative path is relative to DATASETS.ROOT_DIR
_C.HUMAN_PARSING.MASK_DIR = ""
_C.HUMAN_PARSING.BATCH_SIZE = 32  # (new) images per parser call of `mbf parse`
