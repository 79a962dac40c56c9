"""Config defaults, the seed configs and merging, with the errors a user can cause."""
from pathlib import Path

import pytest

from mbf.config import get_cfg, load_config
from mbf.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SEED_DIRS = ("OCC_Duke", "OCC_reid", "Market", "DukeMTMC")
SEED_CONFIGS = sorted(REPO / "configs" / d / f for d in SEED_DIRS for f in ("mbf.yml", "mbf_stride.yml"))


def test_get_cfg_returns_independent_copies():
    a, b = get_cfg(), get_cfg()
    a.MODEL.BETA = 0.123
    assert b.MODEL.BETA != 0.123
    assert get_cfg().MODEL.BETA != 0.123


def test_new_keys_have_documented_defaults():
    cfg = get_cfg()
    assert (cfg.MODEL.VIT_EMBED_DIM, cfg.MODEL.VIT_DEPTH, cfg.MODEL.VIT_NUM_HEADS) == (0, 0, 0)
    assert cfg.MODEL.SALIENT_BLOCK == -2
    assert cfg.MODEL.DEVICE in ("cuda", "cpu")
    assert cfg.HUMAN_PARSING.SOURCE == "hrnet"
    assert cfg.HUMAN_PARSING.EXTRA.is_new_allowed()


def test_all_eight_seed_configs_are_present():
    names = {f"{p.parent.name}/{p.name}" for p in SEED_CONFIGS}
    expected = {f"{d}/{f}" for d in SEED_DIRS for f in ("mbf.yml", "mbf_stride.yml")}
    assert expected <= names


@pytest.mark.parametrize("path", SEED_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_seed_config_merges_with_the_seed_readme_override(path):
    cfg = load_config(path, ["MODEL.DEVICE_ID", "('2')"])
    assert cfg.MODEL.DEVICE_ID == "2"
    assert cfg.MODEL.TRANSFORMER_TYPE == "vit_base_patch16_224_MBF"
    assert cfg.MODEL.STRIDE_SIZE == ([16, 16] if path.name == "mbf.yml" else [11, 11])
    assert cfg.INPUT.SIZE_TRAIN == [256, 128]
    assert cfg.DATASETS.ROOT_DIR == "datasets"
    assert cfg.MODEL.PRETRAIN_PATH == "weights/jx_vit_base_p16_224-80ecf9dd.pth"
    assert cfg.HUMAN_PARSING.MODEL_FILE == "weights/Human-Parsing-Network_best.pth"
    assert cfg.HUMAN_PARSING.EXTRA.STAGE1.NUM_RANCHES == 1  # the seed's spelling survives
    assert cfg.HUMAN_PARSING.EXTRA.STAGE4.NUM_CHANNELS == [48, 96, 192, 384]
    assert cfg.is_frozen()


def test_seed_values_per_dataset():
    occ_reid = load_config(REPO / "configs/OCC_reid/mbf.yml")
    assert (occ_reid.DATASETS.NAMES, occ_reid.MODEL.BETA, occ_reid.SOLVER.MAX_EPOCHS) == ("occ_reid", 0.2, 30)
    occ_duke = load_config(REPO / "configs/OCC_Duke/mbf.yml")
    assert (occ_duke.DATASETS.NAMES, occ_duke.MODEL.BETA, occ_duke.SOLVER.MAX_EPOCHS) == ("occ_duke", 0.8, 180)
    assert (occ_duke.SOLVER.BASE_LR, occ_duke.SOLVER.BIAS_LR_FACTOR, occ_duke.SOLVER.WEIGHT_DECAY) == (0.004, 2, 1e-4)


def test_override_values_are_parsed_like_the_seed():
    cfg = load_config(None, ["SOLVER.BASE_LR", "0.01", "INPUT.SIZE_TRAIN", "[128, 64]", "MODEL.SIE_CAMERA", "True"])
    assert cfg.SOLVER.BASE_LR == 0.01 and cfg.INPUT.SIZE_TRAIN == [128, 64] and cfg.MODEL.SIE_CAMERA is True


def test_unknown_key_on_the_command_line_suggests_close_matches():
    with pytest.raises(ConfigError, match=r"MODEL\.BETTA.*did you mean MODEL\.BETA"):
        load_config(None, ["MODEL.BETTA", "0.3"])


def test_unknown_key_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("SOLVER:\n  BASE_LRR: 0.1\n")
    with pytest.raises(ConfigError, match=r"SOLVER\.BASE_LRR.*bad\.yml.*SOLVER\.BASE_LR"):
        load_config(path)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="config file not found: nowhere.yml"):
        load_config("nowhere.yml")


def test_invalid_yaml_and_wrong_types(tmp_path):
    path = tmp_path / "broken.yml"
    path.write_text("MODEL: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="SOLVER.BASE_LR|Type mismatch"):
        load_config(None, ["SOLVER.BASE_LR", "'fast'"])
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        load_config(None, ["SOLVER.BASE_LR"])


def test_new_keys_allowed_under_human_parsing_extra(tmp_path):
    path = tmp_path / "extra.yml"
    path.write_text("HUMAN_PARSING:\n  EXTRA:\n    SOMETHING_NEW: 3\n")
    assert load_config(path).HUMAN_PARSING.EXTRA.SOMETHING_NEW == 3


def test_no_two_configs_share_an_output_dir():
    """Two configs writing one folder would overwrite each other's checkpoints and results."""
    folders: dict[str, str] = {}
    for path in sorted((REPO / "configs").rglob("*.yml")):
        folder = str(Path(load_config(path).OUTPUT_DIR).resolve())
        name = str(path.relative_to(REPO))
        assert folder not in folders, f"{name} and {folders[folder]} both write {folder}"
        folders[folder] = name
    assert len(folders) >= 10


def test_a_key_without_effect_warns_once_naming_it(mbf_log):
    load_config(REPO / "configs" / "OCC_Duke" / "mbf.yml")  # the seed files load without a warning
    assert "has no effect" not in mbf_log.text
    load_config(REPO / "configs" / "OCC_Duke" / "mbf.yml", ["MODEL.LAST_STRIDE", "2", "SOLVER.STEPS", "(30, 60)"])
    assert mbf_log.text.count("MODEL.LAST_STRIDE is 2 but has no effect here") == 1
    assert mbf_log.text.count("SOLVER.STEPS") == 1


@pytest.mark.parametrize("opts, match", [
    (["MODEL.IF_WITH_CENTER", "yes"], "MODEL.IF_WITH_CENTER 'yes': the reference then adds a center loss"),
    (["MODEL.COS_LAYER", "True"], "MODEL.COS_LAYER True"),
    (["MODEL.NECK", "no"], "drops the BNNecks"),
    (["MODEL.NAME", "transreid", "MODEL.JPM", "True"], "jigsaw branch"),
])
def test_a_value_that_makes_the_reference_build_another_model_is_an_error(opts, match):
    with pytest.raises(ConfigError, match=match):
        load_config(REPO / "configs" / "OCC_Duke" / "mbf.yml", opts)


@pytest.mark.parametrize("given, spelled", [("True", "yes"), ("False", "no"), ("yes", "yes"), ("no", "no")])
def test_a_boolean_for_a_seed_switch_is_read_in_its_spelling(tmp_path, given, spelled):
    """TEST.FEAT_NORM is 'yes' / 'no' in the seed: True on the command line or in YAML means 'yes'."""
    assert load_config(None, ["TEST.FEAT_NORM", given]).TEST.FEAT_NORM == spelled
    yml = tmp_path / "c.yml"
    yml.write_text(f"TEST:\n  FEAT_NORM: {given}\nMODEL:\n  IF_LABELSMOOTH: {given}\n")
    cfg = load_config(yml)
    assert cfg.TEST.FEAT_NORM == spelled and cfg.MODEL.IF_LABELSMOOTH == {"yes": "on", "no": "off"}[spelled]
